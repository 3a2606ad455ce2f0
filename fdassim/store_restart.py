"""Reopening a run store to continue it: the checks, and the state after the last committed cycle.

The state after cycle ``k`` (every member and the truth) is read from the analysis members
of ``k`` when they are stored (``output.ensembles_every`` makes ``k`` a stored cycle), and
otherwise from the restart slot the last commit wrote (:mod:`fdassim.store_commit`).

The methods here belong to :class:`fdassim.io.Store` (a mixin).
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import store_layout as layout
from .collective import on_rank0
from .errors import ConfigError, StoreError, StoreNotFound
from .lock import StoreLock
from .observations import store as obs_store

__all__ = ["Restarts", "read_status"]


def read_status(h5) -> str:
    """The status of an open store (``running``, ``failed: ...``, ``completed``; ``unknown`` if absent)."""
    if layout.STATUS not in h5:
        return "unknown"
    return bytes(h5[layout.STATUS][()]).rstrip(b"\0").decode(errors="replace")


class Restarts:
    """The reopening and reading half of :class:`fdassim.io.Store`."""

    @classmethod
    def open(cls, path: str, ensemble, lock: StoreLock | None = None, commit_seconds: float = 1.0):
        """Open an existing store to restart a run; check it matches ``ensemble``.

        Raises
        ------
        StoreNotFound
            If there is no file at ``path``.
        ConfigError
            If the store is of another format version, or made for another ensemble size,
            truth setting, fields, state size or split of the mesh (naming both values).
        StoreError
            If another run holds it, or it is not a readable run store.
        """
        from .io import FORMAT_VERSION, _open

        comm = ensemble.world
        own = lock is None
        if not os.path.exists(path):  # every rank sees the same file system here, or the run is moot
            raise StoreNotFound(f"cannot restart: no store at {path!r} (run without --restart first)")
        lock = StoreLock(path).acquire_collective(comm) if own else lock
        try:
            header = cls.read_header(path, comm)
            a, n_state = header["attrs"], header["state_shape"]
            L = ensemble.layout
            expect = {"format_version": FORMAT_VERSION, "n_members": ensemble.size,
                      "has_truth": ensemble.has_truth, "fields": json.dumps([f.name for f in L.fields]),
                      "ranks_per_member": ensemble.comm.size}
            for key, want in expect.items():
                got = a.get(key)
                got = got.item() if hasattr(got, "item") else got  # numpy scalar -> Python
                if (bool(got) if isinstance(want, bool) else got) != want:
                    hint = (" (the mesh would be split differently: set ensemble.ranks_per_member)"
                            if key == "ranks_per_member" else "")
                    raise ConfigError(f"cannot restart from {path!r}: its {key} is {got!r}, this run has {want!r}{hint}")
            n_carried = header["carried_shape"]
            if n_state != (L.n_global, ensemble.n_total) or n_carried != (
                    None if ensemble.carried is None else (ensemble.n_total, ensemble.carried.n_global)):
                raise ConfigError(f"cannot restart from {path!r}: it holds states of shape {n_state} (carried "
                                  f"{n_carried}), this run has {(L.n_global, ensemble.n_total)} (same mesh and "
                                  "ranks per member needed)")
            store = cls(path, comm, ensemble, int(a["n_cycles"]), _open(path, "r+", comm), lock, own, commit_seconds)
            store.set_status("running")
            return store
        except BaseException:
            if own:
                lock.release()
            raise

    @staticmethod
    def read_header(path: str, comm=None) -> dict:
        """What a restart needs to know of the store at ``path`` before opening it for writing:
        ``attrs`` (its root attributes), ``state_shape`` (rows, members and truth), ``status``,
        ``completed`` and ``n_cycles``.

        Raises
        ------
        StoreError
            If it is not a readable run store (truncated, zeroed, not HDF5), on every rank.
        """
        def read():
            import h5py

            try:
                with h5py.File(path, "r", locking=False) as h5:
                    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in h5.attrs.items()}
                    fields = json.loads(attrs["fields"])
                    n_total = int(attrs["n_members"]) + bool(attrs["has_truth"])
                    state = (h5[layout.slot(0)].shape if layout.slot(0) in h5 else
                             (sum(h5[layout.mean("analysis", f)].shape[1] for f in fields), n_total))
                    return {"attrs": attrs, "state_shape": tuple(state), "status": read_status(h5),
                            "carried_shape": h5[layout.carried(0)].shape if layout.carried(0) in h5 else None,
                            "completed": int(h5[layout.COMPLETED][()]), "n_cycles": int(attrs["n_cycles"])}
            except (OSError, KeyError) as exc:
                raise StoreError(f"cannot restart from {path!r}: it is not a readable run store ({exc}); "
                                 "start the run again with --overwrite") from None

        return on_rank0(comm, read)

    def read_diagnostics(self, k: int) -> dict[str, np.ndarray]:
        """The per-cycle diagnostics of the first ``k`` cycles (same on every rank)."""
        out = {name: self._h5[layout.diagnostic(name)][:k] for name in layout.DIAGNOSTICS}
        out.update(obs_store.read_counts(self._h5, k))
        return out

    def check_observations(self, plan) -> None:
        """Raise if the store was made for other observed quantities than ``plan``'s."""
        obs_store.check(self._h5, plan, self.path)

    def _slot_after(self, k: int) -> int:
        """The restart slot holding the state after cycle ``k`` (the last committed one)."""
        if k + 1 not in self._held:
            raise StoreError(f"{self.path!r} holds no restart state after cycle {k} (it holds {self._held})")
        return self._held.index(k + 1)

    def read_state(self, k: int) -> np.ndarray:
        """This rank's rows of the state after cycle ``k`` (``(nb, n_total)``).

        Only the state after the last committed cycle is kept (``k = completed() - 1``).
        """
        nb = self.ens.row_slice.stop - self.ens.row_slice.start
        row = self.ensemble_row(k)
        if row is None:
            return self._h5[layout.slot(self._slot_after(k))][self._row0:self._row0 + nb, :]
        out = np.empty((nb, self.ens.n_total))
        N = self.ens.size
        for fr in self._fields:  # the analysis members, and the truth
            if fr.hi > fr.lo:
                g = slice(fr.g0, fr.g0 + fr.hi - fr.lo)
                out[fr.lo:fr.hi, :N] = self._h5[layout.ensemble("analysis", fr.name)][row, g, :]
                if self.ens.has_truth:
                    out[fr.lo:fr.hi, N] = self._h5[layout.truth(fr.name)][k, g]
        return out

    def read_carried(self, k: int) -> dict[int, np.ndarray]:
        """This rank's carried values of its members after cycle ``k`` (``{member: values}``)."""
        C = self.ens.carried
        d = self._h5[layout.carried(self._slot_after(k))]
        return {i: d[i, C.offset:C.offset + C.n_local] for i in self.ens.local}
