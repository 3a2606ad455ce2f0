"""The cycle's writes to the run store: kept in memory, written together, committed.

Cycles are kept in memory and written together, one block per dataset and rank, at most
every ``commit_seconds`` (and at the end): small parallel writes and file syncs cost more
than the cycles of a small model. A commit writes the buffered cycles, the state after the
last of them into the restart slot that the committed count does not point to (unless that
state is in the store already: the analysis ensemble of a cycle whose members are stored),
then the committed count, last. A run killed at any point, even in the middle of a write,
restarts from its last committed cycle and ends exactly like an uninterrupted run; it loses
at most ``commit_seconds`` of work.

The methods here belong to :class:`fdassim.io.Store` (a mixin: they use its file, ranks and
row blocks).
"""

from __future__ import annotations

import time

import numpy as np

from . import faults
from . import store_layout as layout
from .observations import store as obs_store

__all__ = ["Commits", "BUFFER_BYTES"]

BUFFER_BYTES = 64 * 2 ** 20  # per rank: cycles kept in memory before they are written


class _Counted:
    """A dataset getter that counts the bytes of the values assigned through it."""

    def __init__(self, dataset):
        self._dataset, self.nbytes = dataset, 0

    def __call__(self, name: str):
        return _CountedDataset(self._dataset(name), self)


class _CountedDataset:
    def __init__(self, d, counter: _Counted):
        self._d, self._counter = d, counter

    def __setitem__(self, key, value) -> None:
        self._d[key] = value
        self._counter.nbytes += np.asarray(value).nbytes

    def __getattr__(self, name):
        return getattr(self._d, name)


def _set_io(c: dict) -> None:
    c["timing"] = c["timing"][:2] + [time.perf_counter() - c["io_start"] if c["io_start"] is not None else np.nan]


class Commits:
    """The writing half of :class:`fdassim.io.Store`."""

    def write_init_time(self, seconds: float) -> None:
        if self.comm.rank == 0:
            self._h5[layout.INIT][()] = seconds

    def flag_divergence(self, k: int) -> None:
        """Record that the filter was seen to diverge at cycle ``k`` (written with the next commit)."""
        if self._divergence is None:
            self._divergence = int(k)

    def _rows(self, k: int, kinds) -> dict:
        """``{field rows: {dataset: (row, values)}}`` of this rank's part of cycle ``k`` for the
        ``(kind, X)`` pairs in ``kinds`` (the members where stored, their means, spreads)."""
        N, member_row = self.ens.size, self.ensemble_row(k)
        out = {}
        for fr in self._fields:
            if fr.hi == fr.lo:
                continue
            part = {}
            for kind, X in kinds:
                block = X[fr.lo:fr.hi, :N]
                if member_row is not None:
                    part[layout.ensemble(kind, fr.name)] = (member_row, np.array(block))
                part[layout.mean(kind, fr.name)] = (k, block.mean(axis=1))
                if self._spreads and kind != "smoother":
                    part[layout.spread(kind, fr.name)] = (k, block.std(axis=1, ddof=1))
            out[fr] = part
        return out

    def write_cycle(self, k: int, forecast: np.ndarray, analysis: np.ndarray, state: np.ndarray,
                    observed, diagnostics: dict[str, float], timing: list[float],
                    io_start: float | None = None, carried: list[tuple[int, np.ndarray]] = ()) -> None:
        """Add cycle ``k`` to the store; it is committed with the next :meth:`flush`.

        A flush happens here when ``commit_seconds`` have passed since the last one, the
        buffer holds more than :data:`BUFFER_BYTES` on rank 0, or ``k`` is the last cycle
        (rank 0 decides, so every rank flushes together).

        Parameters
        ----------
        forecast, analysis
            ``(nb, N)`` this rank's rows of the forecast and analysis members.
        state
            ``(nb, n_total)`` this rank's rows of the state after the cycle (members and truth),
            for a restart: the analysis members and the truth.
        observed
            The cycle's observation record (same on every rank; see
            :func:`fdassim.observations.store.write`).
        diagnostics, timing
            Scalars of this cycle (same on every rank): timing holds the seconds spent in
            forecast and analysis; the I/O time is measured here from ``io_start``
            (a ``time.perf_counter()`` value) to the end of the write.
        carried
            ``(member, local values)`` of the carried fields of this rank's members
            (:meth:`Ensemble.carried_values <fdassim.ensemble.Ensemble.carried_values>`).
        """
        if self._pending and k != self._pending[-1]["k"] + 1:
            raise ValueError(f"cycle {k} written after cycle {self._pending[-1]['k']}")
        N = self.ens.size
        c = {"k": k, "obs": observed, "timing": list(timing)[:2], "io_start": io_start,
             "diag": [diagnostics.get(name, np.nan) for name in layout.DIAGNOSTICS], "state": state,
             "carried": carried, "rows": self._rows(k, (("forecast", forecast), ("analysis", analysis)))}
        if self.ens.has_truth:
            for fr, part in c["rows"].items():
                part[layout.truth(fr.name)] = (k, np.array(state[fr.lo:fr.hi, N]))
        if self._pending:  # only the latest state is needed for a restart
            self._pending[-1]["state"] = self._pending[-1]["carried"] = None
        self._pending.append(c)
        c["bytes"] = sum(a.nbytes for part in c["rows"].values() for _, a in part.values())  # this rank's
        self._pending_bytes += c["bytes"]
        due = None
        if self.comm.rank == 0:
            due = (k + 1 >= self.n_cycles or self._pending_bytes >= BUFFER_BYTES
                   or time.perf_counter() - self._last_commit >= self.commit_seconds)
        if self.comm.size > 1:
            due = self.comm.bcast(due, root=0)
        if due:
            self.flush()
        else:
            c["state"] = np.array(state)  # the caller may reuse its arrays
            c["carried"] = [(i, np.array(values)) for i, values in carried]
            _set_io(c)

    def flush(self) -> None:
        """Write the buffered cycles and commit them (collective; see the module docstring)."""
        if not self._pending:
            return
        h5 = self._dataset  # cached dataset objects: a name lookup costs more than a small write
        cycles = self._pending
        ka, kb = cycles[0]["k"], cycles[-1]["k"] + 1
        for fr in self._fields:
            if fr.hi == fr.lo:
                continue
            g = slice(fr.g0, fr.g0 + fr.hi - fr.lo)
            blocks: dict[str, list] = {}
            for c in cycles:
                for name, (row, values) in c["rows"][fr].items():
                    blocks.setdefault(name, []).append((row, values))
            for name, rows in blocks.items():  # consecutive rows: one block per dataset
                h5(name)[(slice(rows[0][0], rows[-1][0] + 1), g)] = np.stack([v for _, v in rows])
        for k in range(ka, kb):
            faults.point("write", k)
        state = cycles[-1]["state"]
        nb = state.shape[0]
        in_store = self.ensemble_row(kb - 1) is not None  # the analysis members are the restart state
        slot = self._slot
        written = np.array([c["bytes"] for c in cycles], dtype=np.int64)  # this rank's, per cycle
        if nb and not in_store:
            h5(layout.slot(slot))[self._row0:self._row0 + nb, :] = state
            written[-1] += state.nbytes
        if cycles[-1]["carried"]:
            c0 = self.ens.carried.offset
            for i, values in cycles[-1]["carried"]:
                h5(layout.carried(slot))[i, c0:c0 + values.size] = values
                written[-1] += values.nbytes
        if self.comm.rank == 0:
            for j, c in enumerate(cycles):
                counted = _Counted(h5)
                obs_store.write(counted, c["k"], c["obs"])
                written[j] += counted.nbytes + 8 * (len(layout.DIAGNOSTICS) + len(layout.PHASES) + 1)
            diag = np.array([c["diag"] for c in cycles])
            for j, name in enumerate(layout.DIAGNOSTICS):
                h5(layout.diagnostic(name))[ka:kb] = diag[:, j]
            for c in cycles:
                if len(c["timing"]) < 3:
                    _set_io(c)
            h5(layout.TIMING)[ka:kb, :] = np.array([c["timing"] for c in cycles])
        if self.comm.size > 1:  # every rank's bytes (one reduction per commit, not per cycle)
            from mpi4py import MPI

            total = np.empty_like(written) if self.comm.rank == 0 else None
            self.comm.Reduce(written, total, op=MPI.SUM, root=0)
            written = total
        uses_slot = not in_store or self.ens.carried is not None
        if self.comm.rank == 0:
            h5(layout.BYTES)[ka:kb] = written
            if self._divergence is not None:
                h5(layout.DIVERGENCE)[()] = self._divergence
            if uses_slot:
                h5(layout.RESTART_CYCLE)[slot] = kb
        # the commit point: only once every rank's data is in the file
        self._h5.flush()
        if self.comm.rank == 0:
            h5(layout.COMPLETED)[()] = kb
        self._h5.flush()
        self._committed = kb
        if uses_slot:
            self._held[slot] = kb
            self._slot = 1 - slot
        self._pending, self._pending_bytes = [], 0
        self._last_commit = time.perf_counter()

    def write_smoother(self, k: int, X: np.ndarray, diagnostics: dict[str, float]) -> None:
        """Write the smoother estimate of observation time ``k`` (this rank's rows ``(nb, N)``).

        Not a commit point: the cycle that writes it commits it (a smoother run does not restart).
        """
        h5 = self._dataset
        for fr, part in self._rows(k, (("smoother", X),)).items():
            g = slice(fr.g0, fr.g0 + fr.hi - fr.lo)
            for name, (row, values) in part.items():
                h5(name)[(row, g)] = values
        if self.comm.rank == 0:
            for name in layout.SMOOTHER_DIAGNOSTICS:
                h5(layout.diagnostic(name))[k] = diagnostics.get(name, np.nan)

    def write_window(self, c: int, costs: dict[str, float]) -> None:
        """Write the costs of smoother window ``c`` (same on every rank)."""
        if self.comm.rank == 0:
            for name in layout.WINDOW_COSTS:
                self._dataset(layout.window(name))[c] = costs[name]
