"""Checks that must give every rank the same verdict.

A check that touches the file system (does a directory exist, is there room, is a store
readable) may see different things on different ranks, and a check that fails on one rank
alone leaves the others waiting in the next collective call. :func:`on_rank0` runs such a
check on rank 0 and broadcasts its result or its error, so every rank returns the same value
or raises the same :class:`~fdassim.errors.FdassimError`, and the user reads one message.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from .errors import FdassimError

__all__ = ["on_rank0"]

T = TypeVar("T")


def on_rank0(comm, check: Callable[[], T]) -> T:
    """``check()`` on rank 0 of ``comm``; its result, or its error, on every rank.

    Only :class:`~fdassim.errors.FdassimError` is shared (re-raised with its type and
    message on every rank); any other exception is a bug and propagates on rank 0.
    """
    if comm is None or comm.size == 1:
        return check()
    outcome, error = None, None
    if comm.rank == 0:
        try:
            outcome = ("ok", check())
        except FdassimError as exc:
            error = exc
            outcome = ("error", (type(exc), str(exc)))
    kind, value = comm.bcast(outcome, root=0)
    if kind == "ok":
        return value
    if error is not None:
        raise error
    cls, message = value
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    raise exc
