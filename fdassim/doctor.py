"""``fdassim doctor``: what the stack has, and the fix for what it lacks.

Each check is a small function returning a :class:`Check`; :func:`run_checks` prints them
and reports whether every required piece is present.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import shutil
from dataclasses import dataclass
from typing import Callable, TextIO

__all__ = ["Check", "CHECKS", "run_checks"]

STACK_FIX = "run `make install` in the fdassim checkout (see README: Set-up)"


@dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str
    required: bool = True
    fix: str = ""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "installed (version unknown)"


def _module(name: str, dist: str | None = None, fix: str = STACK_FIX, required: bool = True) -> Check:
    try:
        importlib.import_module(name)
    except Exception as exc:  # an import can fail in many ways; report each the same
        return Check(name, False, f"cannot import: {exc}", required, fix)
    return Check(name, True, _version(dist or name), required)


def check_firedrake() -> Check:
    return _module("firedrake")


def check_petsc() -> Check:
    try:
        from petsc4py import PETSc
    except Exception as exc:
        return Check("PETSc", False, f"cannot import petsc4py: {exc}", True, STACK_FIX)
    v = ".".join(map(str, PETSc.Sys.getVersion()))
    return Check("PETSc", True, f"{v} (petsc4py {_version('petsc4py')})")


def check_petsc_package(pkg: str) -> Check:
    try:
        from petsc4py import PETSc

        ok = bool(PETSc.Sys.hasExternalPackage(pkg))
    except Exception as exc:
        return Check(f"PETSc with {pkg}", False, f"cannot ask PETSc: {exc}", True, STACK_FIX)
    return Check(f"PETSc with {pkg}", ok, "yes" if ok else "no", True,
                 "" if ok else f"PETSc was built without {pkg}: rebuild it with `make install` "
                 "(scripts/install.sh configures it) or configure yours with --with-" + pkg)


def check_mpi() -> Check:
    try:
        from mpi4py import MPI
    except Exception as exc:
        return Check("mpi4py", False, f"cannot import: {exc}", True, STACK_FIX)
    lib = MPI.Get_library_version().splitlines()[0].strip()
    return Check("mpi4py", True, f"{_version('mpi4py')}; MPI library: {lib}")


def check_h5py() -> Check:
    try:
        import h5py
    except Exception as exc:
        return Check("h5py", False, f"cannot import: {exc}", True, STACK_FIX)
    mpi = bool(h5py.get_config().mpi)
    return Check("h5py", mpi, f"{h5py.__version__}, MPI {'yes' if mpi else 'no'}", True,
                 "" if mpi else "h5py lacks MPI: reinstall it with HDF5_MPI=ON CC=mpicc "
                 "pip install --no-binary h5py --no-build-isolation h5py (make install does)")


def check_icepack() -> Check:
    fix = ("install Icepack from its source, not the registry's unrelated `icepack`: "
           "`make install` (ICEPACK_SOURCE may name an archive, a directory or a pip URL)")
    try:
        importlib.import_module("icepack.models")
    except Exception as exc:
        return Check("icepack", False, f"cannot import icepack.models: {exc}", True, fix)
    return Check("icepack", True, _version("icepack"))


def check_matlab() -> Check:
    found = [(n, shutil.which(n)) for n in ("matlab", "octave")]
    found = [f"{n} ({p})" for n, p in found if p]
    return Check("MATLAB or GNU Octave", bool(found), ", ".join(found) or "neither found", False,
                 "" if found else "the ISSM bridge needs MATLAB or GNU Octave on PATH")


CHECKS: list[Callable[[], Check]] = [
    lambda: _module("numpy"),
    lambda: _module("scipy"),
    lambda: _module("yaml", "pyyaml"),
    lambda: _module("gstools"),
    check_firedrake,  # first: Firedrake initialises PETSc itself
    check_mpi,
    check_petsc,
    lambda: check_petsc_package("mumps"),
    lambda: check_petsc_package("hdf5"),
    check_h5py,
    check_icepack,
    check_matlab,
]


def run_checks(out: TextIO | None = None) -> bool:
    """Run every check, print a line for each, and return whether all required ones passed."""
    import sys

    out = out or sys.stdout
    all_ok = True
    for make in CHECKS:
        c = make()
        mark = "ok " if c.ok else ("MISSING" if c.required else "absent (optional)")
        print(f"{c.name:22s} {mark:8s} {c.detail}", file=out)
        if not c.ok and c.fix:
            print(f"{'':22s} fix: {c.fix}", file=out)
        all_ok &= c.ok or not c.required
    print("all required pieces present" if all_ok else "some required pieces are missing (see fix lines)", file=out)
    return all_ok
