"""The ``fdassim`` command line.

``fdassim doctor``                       versions of the stack and what is missing, with the fix
``fdassim run params.yaml``             run an experiment (serially or under ``mpiexec``)
``fdassim run params.yaml --restart``   continue a stopped run (with more cycles: extend it)
``fdassim run params.yaml --overwrite`` start again over an existing store
``fdassim report run.h5``               RMSE/spread table and figures of a stored run
``fdassim keys``                        every key of params.yaml, with its default and meaning
``fdassim --version``

Arguments after ``--`` go to PETSc (``fdassim run params.yaml -- -log_view``); PETSc sees
none of fdassim's own.
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
    from .run import run

    settings = load(args.params)
    with open(args.params) as fh:
        text = fh.read()
    run(settings, config_text=text, restart=args.restart, overwrite=args.overwrite)
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import report

    print(report(args.store, burn_in=args.burn_in, figures=not args.no_figures))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from .keys import reference

    print(reference(), end="")
    return 0


def _error(exc: Exception) -> None:
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        print(f"fdassim: error: {exc}", file=sys.stderr)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of cycles, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="fdassim", description="Ensemble data assimilation on Firedrake.",
                                     epilog="Arguments after `--` are passed to PETSc.")
    parser.add_argument("--version", action="version", version=f"fdassim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="print versions of the stack and what is missing")
    p.set_defaults(func=_doctor)
    p = sub.add_parser("run", help="run the experiment described by a params.yaml")
    p.add_argument("params", help="the settings file (`fdassim keys` lists its keys)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--restart", action="store_true",
                      help="continue from the last committed cycle in the store (with more run.cycles: extend it)")
    mode.add_argument("--overwrite", action="store_true", help="replace an existing store at output.path")
    p.set_defaults(func=_run)
    p = sub.add_parser("report", help="RMSE/spread table and figures of a stored run")
    p.add_argument("store", help="the run's HDF5 store")
    p.add_argument("--burn-in", type=_non_negative, default=None,
                   help="cycles left out of the averages (default: a tenth of the run, at most 100)")
    p.add_argument("--no-figures", action="store_true", help="print the table only")
    p.set_defaults(func=_report)
    p = sub.add_parser("keys", help="every key of params.yaml, with its default and meaning (Markdown)")
    p.set_defaults(func=_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fdassim`` command."""
    from .errors import FdassimError

    command = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, petsc = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = build_parser().parse_args(ours)
    if command:
        # Firedrake hands sys.argv to PETSc when it starts it: give PETSc only what follows
        # `--`, or it warns at exit about options it did not use (--overwrite, --restart, ...)
        sys.argv[1:] = petsc
    try:
        return args.func(args)
    except FdassimError as exc:
        _error(exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
