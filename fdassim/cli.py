"""The ``fdassim`` command line.

``fdassim doctor``           versions of the stack and what is missing, with the fix
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import run_checks

    return 0 if run_checks() else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fdassim", description="Ensemble data assimilation on Firedrake.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="print versions of the stack and what is missing")
    p.set_defaults(func=_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fdassim`` command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
