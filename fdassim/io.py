"""The run store: one HDF5 file per run, written in parallel, locked, safe to kill at any point.

The file is NetCDF-4 readable (dimension scales; :mod:`fdassim.store_layout` names every
dataset and dimension): ``xarray.open_datatree(path, engine="h5netcdf")``. Its datasets
(``K`` cycles, ``N`` members, field ``f`` with ``n_f`` values, ``E`` cycles whose members
are stored)::

    /                          attrs: format_version, config (the YAML as given), resolved
                               (every setting with its default, and the objects built), settings
                               (the settings that decide the result, JSON, for restarts), versions
                               (JSON), n_members, n_cycles, ranks_per_member, fields, parameters,
                               created, store_ensembles, ensembles_every
    /status                    ()        running | failed: <why> | completed
    /times                     (K + 1,)  t_0 and the analysis times (/time: the analysis times)
    /completed                 ()        number of completed cycles (the commit point)
    /divergence                ()        first cycle at which the filter was seen to diverge (-1: never)
    /ensemble/forecast/<f>     (E, n_f, N)  forecast members at the analysis times of the stored
                                            cycles (output.ensembles_every; E = K: every cycle)
    /ensemble/analysis/<f>     (E, n_f, N)  analysis members
    /mean/forecast/<f>         (K, n_f)
    /mean/analysis/<f>         (K, n_f)
    /spread/{forecast,analysis}/<f>  (K, n_f)  ensemble standard deviations, when the members
                                             are not stored at every cycle
    /truth/<f>                 (K, n_f)     twin experiments only
    /coordinates/<f>           (n_f, d)     positions of the field's values (when known)
    /observations/<q>/...      per observed quantity q: values (T_q, m_q) at its T_q times, and
                               more (see fdassim.observations.store: a varying number per cycle)
    /diagnostics/<name>        (K,)          rmse_forecast, rmse_analysis, spread_forecast, ...,
                                             n_obs (observations assimilated; 0: no analysis)
    /timing/cycle              (K, 3)        seconds in forecast, analysis, io
    /timing/init               ()            seconds in initialization
    /timing/bytes              (K,)          bytes of data each cycle wrote, all ranks (the restart
                                             state counted in the cycle whose commit wrote it)
    /restart/slot0, slot1      (n, N + truth)  the state after the last committed cycles, when the
                                             members are not stored at every cycle
    /restart/carried0, carried1  (N + truth, n_c)  the carried fields then (models with any)
    /restart/cycle             (2,)          the number of cycles each slot's state follows

A smoother run (:func:`fdassim.smooth`, ``C`` windows) also has::

    /ensemble/smoother/<f>     (E, n_f, N)  final smoother members at each observation time
    /mean/smoother/<f>         (K, n_f)
    /diagnostics/<name>        (K,)          rmse_smoother, spread_smoother
    /windows/<name>            (C,)          simulations, propagations, iterations per window

where the analysis is the filter's, and attrs ``smoother`` (the method, as given) and ``lag``,
``shift``.

Ensembles are stored cycle by cycle, ``(E, n_f, N)``: each cycle's block is contiguous. Every
dataset indexed by cycle carries the attribute ``cycle_axis = 0`` (what :mod:`fdassim.grow`
extends when a run is continued with more cycles).

Every dataset is created, and its space allocated, when the file is made (under a temporary
name, then renamed), so a cycle only writes raw data into existing space and never changes
the file's structure; the dimension scales are attached then, by rank 0 alone, before the
file is opened in parallel. The cycles' writes and the commit protocol: :mod:`fdassim.store_commit`;
restarts: :mod:`fdassim.store_restart`.

A store is locked (:mod:`fdassim.lock`) while it is open for writing: a second writer is
refused, naming the first.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np

from . import store_layout as layout
from .checks import gib
from .collective import on_rank0
from .errors import ConfigError, StoreError
from .lock import StoreLock
from .observations import store as obs_store
from .store_commit import BUFFER_BYTES, Commits
from .store_restart import Restarts, read_status

__all__ = ["Store", "FORMAT_VERSION", "versions", "read_status", "BUFFER_BYTES"]

FORMAT_VERSION = 3  # 2: observations per quantity (fdassim.observations.store); 3: NetCDF-4 dimensions
DIAGNOSTICS = layout.DIAGNOSTICS
TIMING = layout.PHASES


def versions() -> dict[str, str]:
    """Versions of the pieces a run depends on (for the store's provenance)."""
    import importlib.metadata as md

    out = {}
    for name in ("fdassim", "firedrake", "petsc4py", "mpi4py", "numpy", "scipy", "h5py", "icepack"):
        try:  # one lookup per name: reading every installed distribution's metadata took 1.4 s
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _open(path: str, mode: str, comm):
    import h5py

    if comm is not None and comm.size > 1:
        return h5py.File(path, mode, driver="mpio", comm=comm)
    return h5py.File(path, mode)


def check_output_path(path: str) -> None:
    """Refuse an output path that cannot be a store file; make its missing directories.

    Raises
    ------
    StoreError
        If ``path`` is a directory, or a parent of it is a file, or its directory cannot be
        made (naming the path and the fix).
    """
    if os.path.isdir(path):
        raise StoreError(f"output.path: {path!r} is a directory; give a file name such as "
                         f"{os.path.join(path, 'run.h5')!r}")
    folder = os.path.dirname(os.path.abspath(path))
    parent = folder
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise StoreError(f"output.path: {parent!r} is a file, so {path!r} cannot be made under it; "
                         "choose another output.path")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"output.path: cannot make the directory {folder!r}: {exc.strerror}; "
                         "choose an output.path in a directory you can write") from None


@dataclass(frozen=True)
class _FieldRows:
    """Where a rank's row block meets one field: local rows ``lo:hi`` of the block go to
    global indices ``g0:g0 + (hi - lo)`` of the field."""

    name: str
    lo: int
    hi: int
    g0: int


def _shape(ensemble, K: int, every: int, smoother=None) -> layout.Shape:
    """The :class:`~fdassim.store_layout.Shape` of a store for ``ensemble`` over ``K`` cycles."""
    L = ensemble.layout
    return layout.Shape(fields=tuple((f.name, L.global_size(f.name)) for f in L.fields), n_cycles=K,
                        n_members=ensemble.size, has_truth=ensemble.has_truth,
                        space_dim=None if L.coords is None else int(L.coords.shape[1]), every=every,
                        n_carried=None if ensemble.carried is None else ensemble.carried.n_global,
                        windows=None if smoother is None else smoother.schedule.count(K))


def _check_space(path: str, nbytes: int) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise StoreError(f"output.path: the store needs {gib(nbytes)} and {folder!r} has {gib(free)} free; "
                         "free some space, choose another output.path, or store fewer members: output.ensembles_every: k "
                         "(members every k cycles) or output.store_ensembles: false (means and spreads only)")


def remove_leftovers(path: str) -> None:
    """Remove the temporary files killed runs left beside ``path`` (call with the lock held)."""
    for pattern in (".tmp-*", ".grow-*"):
        for old in glob.glob(glob.escape(path) + pattern):
            os.remove(old)


class Store(Commits, Restarts):
    """The HDF5 store of one run (see the module docstring for its layout).

    Use :meth:`create` for a new run and :meth:`open` to restart or read one. Every method
    is collective over ``comm`` (all ranks call it). Closing the store writes the cycles
    still buffered and its status: ``completed`` when every cycle is in, ``failed: <why>``
    when it is closed by an exception (``with Store.create(...) as store:``).
    """

    def __init__(self, path: str, comm, ensemble, n_cycles: int, h5=None, lock: StoreLock | None = None,
                 own_lock: bool = False, commit_seconds: float = 1.0):
        self.path = path
        self._h5 = h5  # open for writing while the run goes on (see close)
        self.comm = comm
        self.ens = ensemble
        self.n_cycles = n_cycles
        self.commit_seconds = float(commit_seconds)
        self._lock, self._own_lock = lock, own_lock
        L = ensemble.layout
        rs = ensemble.row_slice
        self._fields = []
        for f in L.fields:
            s = L.slice(f.name)
            lo, hi = max(rs.start, s.start), min(rs.stop, s.stop)
            if hi > lo:
                g0 = L.global_offset(f.name) + (lo - s.start)
                self._fields.append(_FieldRows(f.name, lo - rs.start, hi - rs.start, g0))
            else:
                self._fields.append(_FieldRows(f.name, 0, 0, 0))
        self._row0 = L.offset + rs.start  # global row of this block in the restart slots
        self._datasets: dict = {}
        self._rows_of: dict[int, int] = {}  # {cycle: its row in the stored ensembles}
        self._spreads = False  # the members' spreads are stored (the members not at every cycle)
        self._pending: list[dict] = []  # cycles written by write_cycle, not yet in the file
        self._pending_bytes = 0
        self._last_commit = time.perf_counter()
        self._divergence: int | None = None
        # What rank 0 writes is known on every rank from here on, never read back while the
        # file is open: MPI-IO does not promise one rank sees another's writes without more
        # synchronisation, and a decision taken on a stale read would split the collectives.
        self._committed = 0  # the committed cycles
        self._held = [-1, -1]  # the cycles each restart slot's state follows
        if h5 is not None:
            self._committed = int(h5[layout.COMPLETED][()])
            if int(h5[layout.DIVERGENCE][()]) >= 0:
                self._divergence = int(h5[layout.DIVERGENCE][()])  # the first cycle seen stays
            self._held = [int(v) for v in h5[layout.RESTART_CYCLE][...]]
            every = int(h5.attrs["ensembles_every"])
            kept = (h5[layout.ENSEMBLE_CYCLE][...] if layout.ENSEMBLE_CYCLE in h5 else
                    np.arange(n_cycles) if every == 1 else ())
            self._rows_of = {int(k): row for row, k in enumerate(kept)}
            self._spreads = every != 1
        # the restart slot the next commit writes: the one not holding the committed state
        self._slot = 1 if self._held[0] == self._committed else 0

    def ensemble_row(self, k: int) -> int | None:
        """The row of the stored ensembles holding cycle ``k`` (``None``: not stored)."""
        return self._rows_of.get(k)

    def _dataset(self, name: str):
        d = self._datasets.get(name)
        if d is None:
            d = self._datasets[name] = self._h5[name]
        return d

    # -- creating and opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: str, ensemble, times: np.ndarray, m, config_text: str = "",
               store_ensembles: bool = True, overwrite: bool = False, resolved: str = "",
               settings: str = "", lock: StoreLock | None = None, commit_seconds: float = 1.0,
               smoother=None, ensembles_every: int = 1) -> "Store":
        """Make a new store for a run of ``len(times) - 1`` cycles.

        ``m`` says what is observed: an :class:`~fdassim.observations.Observations` (or its
        :class:`~fdassim.observations.ObsPlan`), or an int, for ``m`` values named ``y``
        observed at every cycle.

        The file is written under a temporary name and renamed when complete, so a run
        killed here leaves no half-made store. Missing directories of ``path`` are made.

        Parameters
        ----------
        settings
            The settings that decide the result (JSON), checked by a restart.
        smoother
            A :class:`~fdassim.smoothers.base.Smoother`: the store of a smoother run, with the
            smoother's datasets.
        lock
            The store's lock, already held (``fdassim run`` takes it before its checks);
            ``None``: take it here and release it when the store is closed.
        commit_seconds
            Seconds between commits (0: every cycle); see the module docstring.
        store_ensembles, ensembles_every
            Store the members (at cycles ``0, k, 2k, ...`` and the last, ``k = ensembles_every``;
            :func:`fdassim.store_layout.kept_cycles`), or only their means and spreads.

        Raises
        ------
        ConfigError
            If ``path`` exists and ``overwrite`` is false (a finished run is never lost to a
            re-run by mistake).
        StoreError
            If another run holds the store, ``path`` is a directory or cannot be written, or
            the disk has no room for it.
        """
        comm = ensemble.world
        K = len(times) - 1
        on_rank0(comm, lambda: check_output_path(path))
        own = lock is None
        lock = StoreLock(path).acquire_collective(comm) if own else lock
        try:
            plan = obs_store.plan_of(m, ensemble, times)
            shape = _shape(ensemble, K, int(ensembles_every) if store_ensembles else 0, smoother)
            specs = layout.variables(shape, obs_store.specs(plan))

            def check():
                if not overwrite and os.path.exists(path):
                    raise ConfigError(f"{path!r} exists: continue that run with --restart, start it again with "
                                      "--overwrite, or choose another output.path")
                remove_leftovers(path)
                _check_space(path, sum(s.nbytes for s in specs))
                return f"{path}.tmp-{os.getpid()}"

            tmp = on_rank0(comm, check)
            # attributes must be the same on every rank of a parallel file: rank 0's
            created, stack = comm.bcast((time.strftime("%Y-%m-%dT%H:%M:%S"), json.dumps(versions()))
                                        if comm.rank == 0 else None, root=0)
            try:
                cls._write_new(tmp, ensemble, times, specs, plan, comm, shape.kept, dict(
                    format_version=FORMAT_VERSION, config=config_text, resolved=resolved, settings=settings,
                    versions=stack, n_members=ensemble.size, n_cycles=K,
                    ranks_per_member=ensemble.comm.size, has_truth=ensemble.has_truth,
                    fields=json.dumps([f.name for f in ensemble.layout.fields]),
                    parameters=json.dumps([f.name for f in ensemble.layout.fields if f.parameter]),
                    created=created, store_ensembles=store_ensembles, ensembles_every=shape.every,
                    **({} if smoother is None else dict(smoother=repr(smoother), lag=smoother.lag,
                                                         shift=smoother.shift))))
            except BaseException:
                if comm.rank == 0 and os.path.exists(tmp):
                    os.remove(tmp)
                raise
            comm.Barrier()
            if comm.rank == 0:
                os.replace(tmp, path)
            comm.Barrier()
            return cls(path, comm, ensemble, K, _open(path, "r+", comm), lock, own, commit_seconds)
        except BaseException:
            if own:
                lock.release()
            raise

    @classmethod
    def _write_new(cls, tmp: str, ensemble, times, specs: list[layout.Var], plan, comm, kept, attrs: dict) -> None:
        """Make the file ``tmp`` with every dataset of ``specs``, then (rank 0 alone, the file
        closed) its dimension scales and coordinates."""
        L = ensemble.layout
        with _open(tmp, "w", comm) as h5:
            h5.attrs.update(attrs)
            for s in specs:
                layout.create(h5, s)
            h5[layout.TIMING].attrs["columns"] = json.dumps(list(TIMING))
            if comm.rank == 0:
                h5[layout.TIMES][...] = np.asarray(times, dtype=float)
            obs_store.fill(h5, plan, np.asarray(times, dtype=float)[1:], comm.rank == 0)
            if L.coords is not None:
                for f in L.fields:
                    h5[layout.positions(f.name)].attrs["positions_of"] = f.name
                store = cls(tmp, comm, ensemble, len(times) - 1)
                rows = ensemble.rows
                for fr in store._fields:
                    if fr.hi > fr.lo:
                        h5[layout.positions(fr.name)][fr.g0:fr.g0 + fr.hi - fr.lo, :] = rows.coords[fr.lo:fr.hi]
        if comm.rank == 0:
            import h5py

            with h5py.File(tmp, "r+") as h5:
                layout.label(h5, kept)
        comm.Barrier()

    def close(self) -> None:
        """Write what is buffered and close the file (collective). Marks the run ``completed``
        when every cycle is in. The store stays readable with :func:`h5py.File`."""
        self._finish(None)

    def _finish(self, reason: str | None) -> None:
        if self._h5 is None:
            return
        try:
            if reason is None:
                self.flush()
                if self.completed() == self.n_cycles:
                    self.set_status("completed")
            else:
                try:  # keep what was computed before the failure, and say why the run stopped
                    self.flush()
                    self.set_status(f"failed: {reason}")
                except Exception:  # the original error matters more; the status stays "running"
                    pass
        finally:
            try:
                self._h5.close()
            finally:
                self._h5 = None
                if self._own_lock and self._lock is not None:
                    self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._finish(f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__)

    # -- status ------------------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        """Record the run's status (rank 0 writes; raw data, safe to kill)."""
        if self.comm.rank == 0:
            raw = text.encode()[:layout.STATUS_BYTES]
            self._h5[layout.STATUS][()] = np.bytes_(raw)
        self._h5.flush()

    def status(self) -> str:
        """The recorded status, as rank 0 reads it (the same on every rank)."""
        return on_rank0(self.comm, lambda: read_status(self._h5))

    def completed(self) -> int:
        """Number of committed cycles (the same on every rank)."""
        return self._committed
