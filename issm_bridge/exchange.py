"""File exchange between Python and MATLAB/Octave: MAT files written atomically.

Format
------
Every file is a MAT-file of level 5 (what ``save -v7`` writes in MATLAB and GNU Octave;
``scipy.io.savemat`` writes it uncompressed, MATLAB and Octave compress it; all three
read both). Every write goes to a temporary name in the same directory, then is renamed,
so a reader never sees half a file.

A *member file* (format 1) holds one member's state at the start or end of a cycle:

=================  =====================================================================
``fdassim_format``  1
``cycle``           the cycle it belongs to (0-based)
``member``          the member (0-based; the truth of a twin experiment is member ``N``)
``t0``, ``t1``      the forecast's start and end times (years)
``token``           in a reply: the request it answers (checked on read)
``fields``          struct: field name -> column vector (one value per vertex)
``paths``           struct: field name -> md path (``geometry.thickness``), in a request
``job``             struct: what to run (setup, solver, ranks, result names, inversion)
=================  =====================================================================

Reading checks the format, the cycle, the member and, for replies, the token: a file of
another cycle, member or request is a :class:`~issm_bridge.errors.StaleFileError`,
never silently read.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from .errors import ExchangeError, StaleFileError

__all__ = ["FORMAT", "write_mat", "read_mat", "MemberFile", "write_member", "read_member", "member_path"]

#: version of the member-file layout
FORMAT = 1


def write_mat(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` (names -> arrays, strings, nested dicts as structs) to ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp.mat")
    try:
        with open(tmp, "wb") as f:
            scipy.io.savemat(f, data, format="5", oned_as="column", do_compression=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_mat(path: str | os.PathLike) -> dict:
    """The variables of a MAT file, structs as dicts and scalars as Python numbers."""
    try:
        data = scipy.io.loadmat(os.fspath(path), simplify_cells=True)
    except FileNotFoundError:
        raise ExchangeError(f"no file {os.fspath(path)!r}") from None
    except (ValueError, OSError, TypeError) as exc:
        raise ExchangeError(f"cannot read {os.fspath(path)!r} as a MAT file: {exc}") from None
    return {k: v for k, v in data.items() if not k.startswith("__")}


@dataclass
class MemberFile:
    """The content of a member file (see the module docstring)."""

    cycle: int
    member: int
    t0: float
    t1: float
    fields: dict[str, np.ndarray]
    token: str = ""


def member_path(root: str | os.PathLike, round_: int, member: int, kind: str) -> Path:
    """``<root>/r00012-m0003-<kind>.mat``: where a member's request or reply of a round lives.

    Files of different rounds never share a name, so a forecast sent again (alone, in a
    new round) cannot meet the files of the one it replaces.
    """
    return Path(root) / f"r{round_:05d}-m{member:04d}-{kind}.mat"


def write_member(path: str | os.PathLike, fields: dict[str, np.ndarray], *, cycle: int, member: int,
                 t0: float, t1: float, paths: dict[str, str] | None = None, job: dict | None = None,
                 token: str = "") -> None:
    """Write a member file atomically (format :data:`FORMAT`)."""
    data = {"fdassim_format": float(FORMAT), "cycle": float(cycle), "member": float(member),
            "t0": float(t0), "t1": float(t1), "token": token,
            "fields": {k: np.ascontiguousarray(v, dtype=float).reshape(-1) for k, v in fields.items()}}
    if paths is not None:
        data["paths"] = dict(paths)
    if job is not None:
        data["job"] = job
    write_mat(path, data)


def read_member(path: str | os.PathLike, *, cycle: int, member: int, token: str | None = None,
                names: tuple[str, ...] | None = None) -> MemberFile:
    """Read a member file, checking that it belongs to ``cycle``, ``member`` (and ``token``).

    Raises
    ------
    StaleFileError
        If the file belongs to another cycle, member or request.
    ExchangeError
        If it is missing, unreadable, of another format, or lacks one of ``names``.
    """
    data = read_mat(path)
    if data.get("fdassim_format") != FORMAT:
        raise ExchangeError(f"{os.fspath(path)!r} is not an issm_bridge member file of format {FORMAT}")
    got = (int(data["cycle"]), int(data["member"]))
    if got != (cycle, member):
        raise StaleFileError(f"{os.fspath(path)!r} belongs to cycle {got[0]}, member {got[1]}, "
                             f"not cycle {cycle}, member {member} (a stale file)")
    if token is not None and data.get("token", "") != token:
        raise StaleFileError(f"{os.fspath(path)!r} answers request {data.get('token')!r}, not {token!r} "
                             f"(a stale file of member {member}, cycle {cycle})")
    raw = data.get("fields")
    fields = {k: np.atleast_1d(np.asarray(v, dtype=float)).reshape(-1) for k, v in (raw or {}).items()}
    missing = [n for n in (names or ()) if n not in fields]
    if missing:
        raise ExchangeError(f"{os.fspath(path)!r} (member {member}, cycle {cycle}) lacks field(s) {missing}")
    return MemberFile(cycle, member, float(data["t0"]), float(data["t1"]), fields, data.get("token", ""))
