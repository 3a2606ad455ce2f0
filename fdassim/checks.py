"""Checks made before a run writes anything: the analysis times against the model's steps, the
memory the ensemble needs against what the machine has.

They complement the checks of the settings themselves (:mod:`fdassim.config`): these need the
built model and the size of its state. Each raises :class:`~fdassim.errors.ConfigError` naming
the setting, the figure and the limit.
"""

from __future__ import annotations

import os
import socket

import numpy as np

from .errors import ConfigError

__all__ = ["check_times", "check_memory", "available_memory", "gib", "MEMBER_COPIES"]

#: the fewest copies of a rank's share of the ensemble a cycle holds at once (members, their
#: rows, the forecast kept for the store, the analysis): the memory estimate is a lower bound
MEMBER_COPIES = 4


def check_times(model, times: np.ndarray) -> None:
    """Check that the model can step between consecutive analysis ``times``.

    A model may say so itself with ``check_interval(t0, t1)`` (raising an exception with the
    reason); otherwise a model with a numeric time step ``dt`` needs whole numbers of steps.

    Raises
    ------
    ConfigError
        Naming ``run.interval``, the model's step and a value that works.
    """
    times = [float(t) for t in np.asarray(times, dtype=float)]  # Python floats print plainly
    interval = times[1] - times[0] if len(times) > 1 else float("nan")
    check = getattr(model, "check_interval", None)
    if callable(check):
        for k in range(len(times) - 1):
            try:
                check(times[k], times[k + 1])
            except Exception as exc:  # the model's own words, under the setting's name
                raise ConfigError(f"run.interval: the model cannot step from t = {times[k]!r} to "
                                  f"{times[k + 1]!r} (cycle {k}): {exc}") from None
        return
    dt = getattr(model, "dt", None)
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)) or not dt > 0:
        return
    dt = float(dt)
    steps = np.diff(times) / dt
    whole = np.round(steps)
    bad = np.flatnonzero((whole < 1) | (np.abs(steps - whole) > 1e-9 * np.maximum(1.0, steps)))
    if bad.size:
        k = int(bad[0])
        good = dt * max(1, round(interval / dt))
        raise ConfigError(f"run.interval: {interval!r} is not a whole number of the model's time steps "
                          f"(model.options.dt = {dt!r}; cycle {k}, from t = {times[k]!r} to {times[k + 1]!r}); "
                          f"use a multiple of {dt!r}, such as {good!r}")


def available_memory() -> int | None:
    """Bytes of memory available to new allocations on this host (``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(n_values: int, n_members: int, comm, available: int | None = None) -> None:
    """Refuse an ensemble that cannot fit in the memory of the hosts it runs on.

    Each rank holds about its share of the ``n_values x n_members`` ensemble, several times
    over (:data:`MEMBER_COPIES`, a lower bound); the ranks sharing a host share its memory.
    Collective over ``comm``.

    Raises
    ------
    ConfigError
        On every rank, with the estimate, the memory available and the fix.
    """
    from mpi4py import MPI

    need_rank = MEMBER_COPIES * 8.0 * n_values * n_members / comm.size
    host_comm = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        ranks_here = host_comm.size
        avail = available_memory() if available is None else available
        verdict = None
        if host_comm.rank == 0 and avail is not None and need_rank * ranks_here > avail:
            verdict = (f"ensemble.size: {n_members} states (members and truth) of {n_values} values need at "
                       f"least {gib(need_rank * ranks_here)} of memory on host {socket.gethostname()} "
                       f"({ranks_here} rank(s) there, {MEMBER_COPIES} copies of their share of the "
                       f"ensemble), more than the {gib(avail)} available; use fewer members, or more "
                       "nodes (mpiexec over several hosts)")
    finally:
        host_comm.Free()
    verdicts = [v for v in comm.allgather(verdict) if v]
    if verdicts:
        raise ConfigError(verdicts[0])


def gib(nbytes: float) -> str:
    """``1.5 GiB``."""
    return f"{nbytes / 2 ** 30:.3g} GiB"
