"""The ``issm-bridge`` command line.

``issm-bridge check``   find MATLAB or GNU Octave and run a command through it
"""

from __future__ import annotations

import argparse
import sys

from .engine import EngineError, find_engine

__all__ = ["main"]


def _check(args: argparse.Namespace) -> int:
    engine = find_engine(prefer=args.engine)
    if engine is None:
        print("neither MATLAB nor GNU Octave is on PATH; install one (Debian: apt-get install octave)",
              file=sys.stderr)
        return 1
    try:
        out = engine.run("disp(6*7)", timeout=args.timeout)
    except EngineError as exc:
        print(exc, file=sys.stderr)
        return 1
    ok = out.strip().endswith("42")
    print(f"{engine.kind} at {engine.path}: {'works' if ok else 'unexpected output: ' + out.strip()}")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="issm-bridge", description="Drive ISSM through MATLAB or GNU Octave.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="find MATLAB or GNU Octave and check that it runs")
    p.add_argument("--engine", choices=["matlab", "octave"], default="matlab", help="which to prefer")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")
    p.set_defaults(func=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``issm-bridge`` command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
