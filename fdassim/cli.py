"""The ``fdassim`` command line.

``fdassim doctor``                 versions of the stack and what is missing, with the fix
``fdassim run params.yaml``       run an experiment (serially or under ``mpiexec``)
``fdassim run params.yaml --restart``   continue a killed run from its last completed cycle
``fdassim report run.h5``         RMSE/spread table and figures of a stored run
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import run_checks

    return 0 if run_checks() else 1


def _run(args: argparse.Namespace) -> int:
    from .config import load
    from .errors import FdassimError
    from .run import run

    try:
        settings = load(args.params)
        with open(args.params) as fh:
            text = fh.read()
        run(settings, config_text=text, restart=args.restart, overwrite=args.overwrite)
    except FdassimError as exc:
        _error(exc)
        return 2
    return 0


def _report(args: argparse.Namespace) -> int:
    from .errors import FdassimError
    from .report import report

    try:
        print(report(args.store, burn_in=args.burn_in, figures=not args.no_figures))
    except FdassimError as exc:
        _error(exc)
        return 2
    return 0


def _error(exc: Exception) -> None:
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        print(f"fdassim: error: {exc}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fdassim", description="Ensemble data assimilation on Firedrake.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="print versions of the stack and what is missing")
    p.set_defaults(func=_doctor)
    p = sub.add_parser("run", help="run the experiment described by a params.yaml")
    p.add_argument("params", help="the settings file (see fdassim.config for its keys)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--restart", action="store_true", help="continue from the last completed cycle in the store")
    mode.add_argument("--overwrite", action="store_true", help="replace an existing store at output.path")
    p.set_defaults(func=_run)
    p = sub.add_parser("report", help="RMSE/spread table and figures of a stored run")
    p.add_argument("store", help="the run's HDF5 store")
    p.add_argument("--burn-in", type=int, default=None, help="cycles left out of the averages")
    p.add_argument("--no-figures", action="store_true", help="print the table only")
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fdassim`` command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
