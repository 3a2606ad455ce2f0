"""The run store: one HDF5 file per run, written in parallel, locked, safe to kill at any point.

Layout of the file (``K`` cycles, ``N`` members, field ``f`` with ``n_f`` values)::

    /                          attrs: format_version, config (the YAML as given), resolved
                               (every setting with its default, and the objects built), settings
                               (the settings that decide the result, JSON, for restarts), versions
                               (JSON), n_members, n_cycles, ranks_per_member, fields, parameters,
                               created
    /status                    ()        running | failed: <why> | completed
    /times                     (K + 1,)  t_0 and the analysis times
    /completed                 ()        number of completed cycles (the commit point)
    /divergence                ()        first cycle at which the filter was seen to diverge (-1: never)
    /ensemble/forecast/<f>     (K, n_f, N)  forecast members at each analysis time
    /ensemble/analysis/<f>     (K, n_f, N)  analysis members
    /mean/forecast/<f>         (K, n_f)
    /mean/analysis/<f>         (K, n_f)
    /spread/{forecast,analysis}/<f>  (K, n_f)  ensemble standard deviations, when the members
                                             are not stored (output.store_ensembles: false)
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
    /restart/slot0, slot1      (n, N + truth)  the state after the last committed cycles
    /restart/carried0, carried1  (N + truth, n_c)  the carried fields then (models with any)
    /restart/cycle             (2,)          the number of cycles each slot's state follows

A smoother run (:func:`fdassim.smooth`, ``C`` windows) also has::

    /ensemble/smoother/<f>     (K, n_f, N)  final smoother members at each observation time
    /mean/smoother/<f>         (K, n_f)
    /diagnostics/<name>        (K,)          rmse_smoother, spread_smoother
    /windows/<name>            (C,)          simulations, propagations, iterations per window

where the analysis is the filter's, and attrs ``smoother`` (the method, as given) and ``lag``,
``shift``.

Ensembles are stored cycle by cycle, ``(K, n_f, N)``: each cycle's block is contiguous. Every
dataset indexed by cycle carries the attribute ``cycle_axis = 0`` (what :mod:`fdassim.grow`
extends when a run is continued with more cycles).

Every dataset is created, and its space allocated, when the file is made (under a temporary
name, then renamed), so a cycle only writes raw data into existing space and never changes
the file's structure. Cycles are kept in memory and written together, one block per dataset
and rank, at most every ``commit_seconds`` (and at the end): small parallel writes and file
syncs cost more than the cycles of a small model. A commit writes the buffered cycles, the
state after the last of them into the restart slot that the committed count does not point
to, then the committed count ``/completed``, last. A run killed at any point, even in the
middle of a write, restarts from its last committed cycle and ends exactly like an
uninterrupted run; it loses at most ``commit_seconds`` of work.

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

from . import faults
from .checks import gib
from .collective import on_rank0
from .errors import ConfigError, StoreError, StoreNotFound
from .lock import StoreLock
from .observations import store as obs_store

__all__ = ["Store", "FORMAT_VERSION", "versions", "read_status"]

FORMAT_VERSION = 2  # 2: observations per quantity (fdassim.observations.store)
DIAGNOSTICS = ("rmse_forecast", "rmse_analysis", "spread_forecast", "spread_analysis")
#: per observation time and per window, of a smoother run
SMOOTHER_DIAGNOSTICS = ("rmse_smoother", "spread_smoother")
WINDOW_COSTS = ("simulations", "propagations", "iterations")
TIMING = ("forecast", "analysis", "io")
STATUS_BYTES = 2048  # room for the reason of a failure
BUFFER_BYTES = 64 * 2 ** 20  # per rank: cycles kept in memory before they are written


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


def read_status(h5) -> str:
    """The status of an open store (``running``, ``failed: ...``, ``completed``; ``unknown`` if absent)."""
    if "status" not in h5:
        return "unknown"
    return bytes(h5["status"][()]).rstrip(b"\0").decode(errors="replace")


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


@dataclass(frozen=True)
class _Spec:
    """A dataset of the store: its name, shape, type and whether axis 0 counts cycles."""

    name: str
    shape: tuple
    dtype: str = "f8"
    cycles: bool = False
    fill: float | None = None  # a fill value other than the dtype's usual one

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def _layout(ensemble, K: int, plan, store_ensembles: bool, smoother=None) -> list[_Spec]:
    """Every dataset of a store for ``ensemble`` over ``K`` cycles observing ``plan`` (an
    :class:`~fdassim.observations.ObsPlan`; and of a ``smoother`` run)."""
    N, L = ensemble.size, ensemble.layout
    specs = [_Spec("status", (), f"S{STATUS_BYTES}"), _Spec("times", (K + 1,), cycles=True),
             _Spec("completed", (), "i8"), _Spec("divergence", (), "i8")]
    for f in L.fields:
        nf = L.global_size(f.name)
        for kind in ("forecast", "analysis"):
            if store_ensembles:
                specs.append(_Spec(f"ensemble/{kind}/{f.name}", (K, nf, N), cycles=True))
            specs.append(_Spec(f"mean/{kind}/{f.name}", (K, nf), cycles=True))
            if not store_ensembles:  # the members are not kept: their spread is
                specs.append(_Spec(f"spread/{kind}/{f.name}", (K, nf), cycles=True))
        if ensemble.has_truth:
            specs.append(_Spec(f"truth/{f.name}", (K, nf), cycles=True))
        if L.coords is not None:
            specs.append(_Spec(f"coordinates/{f.name}", (nf, L.coords.shape[1])))
    specs += [_Spec(*spec) for spec in obs_store.specs(plan)]
    specs += [_Spec(f"diagnostics/{name}", (K,), cycles=True) for name in DIAGNOSTICS]
    specs += [_Spec("timing/cycle", (K, len(TIMING)), cycles=True), _Spec("timing/init", ()),
              _Spec("timing/bytes", (K,), "i8", cycles=True)]
    if smoother is not None:
        for f in L.fields:
            nf = L.global_size(f.name)
            if store_ensembles:
                specs.append(_Spec(f"ensemble/smoother/{f.name}", (K, nf, N), cycles=True))
            specs.append(_Spec(f"mean/smoother/{f.name}", (K, nf), cycles=True))
        specs += [_Spec(f"diagnostics/{name}", (K,), cycles=True) for name in SMOOTHER_DIAGNOSTICS]
        specs += [_Spec(f"windows/{name}", (smoother.schedule.count(K),)) for name in WINDOW_COSTS]
    specs += [_Spec(f"restart/slot{s}", (L.n_global, ensemble.n_total)) for s in (0, 1)]
    if ensemble.carried is not None:  # member-major: each member's values contiguous
        specs += [_Spec(f"restart/carried{s}", (ensemble.n_total, ensemble.carried.n_global)) for s in (0, 1)]
    specs.append(_Spec("restart/cycle", (2,), "i8"))
    return specs


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


def _check_space(path: str, nbytes: int) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise StoreError(f"output.path: the store needs {gib(nbytes)} and {folder!r} has {gib(free)} free; "
                         "free some space, choose another output.path, or set output.store_ensembles: false "
                         "(keeps means, truth and diagnostics, not every member)")


def remove_leftovers(path: str) -> None:
    """Remove the temporary files killed runs left beside ``path`` (call with the lock held)."""
    for pattern in (".tmp-*", ".grow-*"):
        for old in glob.glob(glob.escape(path) + pattern):
            os.remove(old)


class Store:
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
        self._store_ens = bool(h5.attrs["store_ensembles"]) if h5 is not None else False
        self._pending: list[dict] = []  # cycles written by write_cycle, not yet in the file
        self._pending_bytes = 0
        self._last_commit = time.perf_counter()
        self._divergence: int | None = None
        # What rank 0 writes is known on every rank from here on, never read back while the
        # file is open: MPI-IO does not promise one rank sees another's writes without more
        # synchronisation, and a decision taken on a stale read would split the collectives.
        self._committed = 0  # the committed cycles
        self._held: list[int] | None = None  # the cycles each restart slot's state follows
        if h5 is not None:
            self._committed = int(h5["completed"][()])
            if "divergence" in h5 and int(h5["divergence"][()]) >= 0:
                self._divergence = int(h5["divergence"][()])  # the first cycle seen stays
            if "restart/cycle" in h5:
                self._held = [int(v) for v in h5["restart/cycle"][...]]
        # the restart slot the next commit writes: the one not holding the committed state
        self._slot = 1 if self._held is not None and self._held[0] == self._committed else 0

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
               smoother=None) -> "Store":
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
            specs = _layout(ensemble, K, plan, store_ensembles, smoother)

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
                cls._write_new(tmp, ensemble, times, specs, plan, comm, dict(
                    format_version=FORMAT_VERSION, config=config_text, resolved=resolved, settings=settings,
                    versions=stack, n_members=ensemble.size, n_cycles=K,
                    ranks_per_member=ensemble.comm.size, has_truth=ensemble.has_truth,
                    fields=json.dumps([f.name for f in ensemble.layout.fields]),
                    parameters=json.dumps([f.name for f in ensemble.layout.fields if f.parameter]),
                    created=created, store_ensembles=store_ensembles,
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
    def _write_new(cls, tmp: str, ensemble, times, specs: list[_Spec], plan, comm, attrs: dict) -> None:
        L = ensemble.layout
        with _open(tmp, "w", comm) as h5:
            h5.attrs.update(attrs)
            for s in specs:
                if s.name == "times":
                    d = h5.create_dataset("times", data=np.asarray(times, dtype=float), track_times=False)
                elif s.fill is not None:
                    d = h5.create_dataset(s.name, s.shape, dtype=s.dtype, fillvalue=s.fill, track_times=False)
                elif s.dtype.startswith("S"):
                    d = h5.create_dataset(s.name, data=np.bytes_(b"running"), dtype=s.dtype, track_times=False)
                elif s.dtype == "i8":
                    fill = -1 if s.name in ("divergence", "restart/cycle") else 0
                    d = h5.create_dataset(s.name, s.shape, dtype="i8", fillvalue=fill, track_times=False)
                else:
                    d = h5.create_dataset(s.name, s.shape, dtype="f8", fillvalue=np.nan, track_times=False)
                if s.cycles:
                    d.attrs["cycle_axis"] = 0
            h5["timing/cycle"].attrs["columns"] = json.dumps(list(TIMING))
            obs_store.fill(h5, plan, np.asarray(times, dtype=float)[1:], comm.rank == 0)
            if L.coords is not None:
                store = cls(tmp, comm, ensemble, len(times) - 1)
                rows = ensemble.rows
                for fr in store._fields:
                    if fr.hi > fr.lo:
                        h5[f"coordinates/{fr.name}"][fr.g0:fr.g0 + fr.hi - fr.lo, :] = rows.coords[fr.lo:fr.hi]

    @classmethod
    def open(cls, path: str, ensemble, lock: StoreLock | None = None, commit_seconds: float = 1.0) -> "Store":
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
        comm = ensemble.world
        own = lock is None
        if not os.path.exists(path):  # every rank sees the same file system here, or the run is moot
            raise StoreNotFound(f"cannot restart: no store at {path!r} (run without --restart first)")
        lock = StoreLock(path).acquire_collective(comm) if own else lock
        try:
            header = cls.read_header(path, comm)
            a, n_slot = header["attrs"], header["slot_shape"]
            L = ensemble.layout
            expect = {"format_version": FORMAT_VERSION, "n_members": ensemble.size,
                      "has_truth": ensemble.has_truth, "fields": json.dumps([f.name for f in L.fields]),
                      "ranks_per_member": ensemble.comm.size}
            for key, want in expect.items():
                if key not in a and key == "ranks_per_member":
                    continue  # stores made before it was recorded
                got = a.get(key)
                got = got.item() if hasattr(got, "item") else got  # numpy scalar -> Python
                if (bool(got) if isinstance(want, bool) else got) != want:
                    hint = (" (the mesh would be split differently: set ensemble.ranks_per_member)"
                            if key == "ranks_per_member" else "")
                    raise ConfigError(f"cannot restart from {path!r}: its {key} is {got!r}, this run has {want!r}{hint}")
            n_carried = header["carried_shape"]
            if n_slot != (L.n_global, ensemble.n_total) or n_carried != (
                    None if ensemble.carried is None else (ensemble.n_total, ensemble.carried.n_global)):
                raise ConfigError(f"cannot restart from {path!r}: it holds states of shape {n_slot} (carried "
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
        ``attrs`` (its root attributes), ``slot_shape``, ``status`` and ``completed``.

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
                    return {"attrs": attrs, "slot_shape": h5["restart/slot0"].shape, "status": read_status(h5),
                            "carried_shape": h5["restart/carried0"].shape if "restart/carried0" in h5 else None,
                            "completed": int(h5["completed"][()]), "n_cycles": int(attrs["n_cycles"])}
            except (OSError, KeyError) as exc:
                raise StoreError(f"cannot restart from {path!r}: it is not a readable run store ({exc}); "
                                 "start the run again with --overwrite") from None

        return on_rank0(comm, read)

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
            raw = text.encode()[:STATUS_BYTES]
            self._h5["status"][()] = np.bytes_(raw)
        self._h5.flush()

    def status(self) -> str:
        """The recorded status, as rank 0 reads it (the same on every rank)."""
        return on_rank0(self.comm, lambda: read_status(self._h5))

    # -- the cycle's writes --------------------------------------------------------------------
    def completed(self) -> int:
        """Number of committed cycles (the same on every rank)."""
        return self._committed

    def write_init_time(self, seconds: float) -> None:
        if self.comm.rank == 0:
            self._h5["timing/init"][()] = seconds

    def flag_divergence(self, k: int) -> None:
        """Record that the filter was seen to diverge at cycle ``k`` (written with the next commit)."""
        if self._divergence is None:
            self._divergence = int(k)

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
            for a restart.
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
             "diag": [diagnostics.get(name, np.nan) for name in DIAGNOSTICS], "rows": {}, "state": state,
             "carried": carried}
        for fr in self._fields:
            if fr.hi == fr.lo:
                continue
            part = {}
            for kind, X in (("forecast", forecast), ("analysis", analysis)):
                block = X[fr.lo:fr.hi, :N]
                if self._store_ens:
                    part[f"ensemble/{kind}/{fr.name}"] = np.array(block)
                part[f"mean/{kind}/{fr.name}"] = block.mean(axis=1)
                if not self._store_ens:
                    part[f"spread/{kind}/{fr.name}"] = block.std(axis=1, ddof=1)
            if self.ens.has_truth:
                part[f"truth/{fr.name}"] = np.array(state[fr.lo:fr.hi, N])
            c["rows"][fr] = part
        if self._pending:  # only the latest state is needed for a restart
            self._pending[-1]["state"] = self._pending[-1]["carried"] = None
        self._pending.append(c)
        c["bytes"] = sum(a.nbytes for part in c["rows"].values() for a in part.values())  # this rank's
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
            self._set_io(c)

    @staticmethod
    def _set_io(c: dict) -> None:
        c["timing"] = c["timing"][:2] + [time.perf_counter() - c["io_start"] if c["io_start"] is not None
                                         else np.nan]

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
            for name in cycles[0]["rows"][fr]:
                block = np.stack([c["rows"][fr][name] for c in cycles])
                h5(name)[(slice(ka, kb), g)] = block
        for k in range(ka, kb):
            faults.point("write", k)
        state = cycles[-1]["state"]
        nb = state.shape[0]
        slot = self._slot
        written = np.array([c["bytes"] for c in cycles], dtype=np.int64)  # this rank's, per cycle
        if nb:
            h5(f"restart/slot{slot}")[self._row0:self._row0 + nb, :] = state
            written[-1] += state.nbytes
        if cycles[-1]["carried"]:
            c0 = self.ens.carried.offset
            for i, values in cycles[-1]["carried"]:
                h5(f"restart/carried{slot}")[i, c0:c0 + values.size] = values
                written[-1] += values.nbytes
        if self.comm.rank == 0:
            for j, c in enumerate(cycles):
                counted = _Counted(h5)
                obs_store.write(counted, c["k"], c["obs"])
                written[j] += counted.nbytes + 8 * (len(DIAGNOSTICS) + len(TIMING) + 1)
            diag = np.array([c["diag"] for c in cycles])
            for j, name in enumerate(DIAGNOSTICS):
                h5(f"diagnostics/{name}")[ka:kb] = diag[:, j]
            for c in cycles:
                if len(c["timing"]) < 3:
                    self._set_io(c)
            h5("timing/cycle")[ka:kb, :] = np.array([c["timing"] for c in cycles])
        if self.comm.size > 1:  # every rank's bytes (one reduction per commit, not per cycle)
            from mpi4py import MPI

            total = np.empty_like(written) if self.comm.rank == 0 else None
            self.comm.Reduce(written, total, op=MPI.SUM, root=0)
            written = total
        if self.comm.rank == 0 and "timing/bytes" in self._h5:  # (stores made before it was kept)
            h5("timing/bytes")[ka:kb] = written
            if self._divergence is not None:
                h5("divergence")[()] = self._divergence
            h5("restart/cycle")[slot] = kb
        # the commit point: only once every rank's data is in the file
        self._h5.flush()
        if self.comm.rank == 0:
            h5("completed")[()] = kb
        self._h5.flush()
        self._committed = kb
        if self._held is not None:
            self._held[slot] = kb
        self._slot = 1 - slot
        self._pending, self._pending_bytes = [], 0
        self._last_commit = time.perf_counter()

    def write_smoother(self, k: int, X: np.ndarray, diagnostics: dict[str, float]) -> None:
        """Write the smoother estimate of observation time ``k`` (this rank's rows ``(nb, N)``).

        Not a commit point: the cycle that writes it commits it (a smoother run does not restart).
        """
        h5 = self._dataset
        for fr in self._fields:
            if fr.hi > fr.lo:
                g = slice(fr.g0, fr.g0 + fr.hi - fr.lo)
                part = X[fr.lo:fr.hi]
                if self._store_ens:
                    h5(f"ensemble/smoother/{fr.name}")[k, g, :] = part
                h5(f"mean/smoother/{fr.name}")[k, g] = part.mean(axis=1)
        if self.comm.rank == 0:
            for name in SMOOTHER_DIAGNOSTICS:
                h5(f"diagnostics/{name}")[k] = diagnostics.get(name, np.nan)

    def write_window(self, c: int, costs: dict[str, float]) -> None:
        """Write the costs of smoother window ``c`` (same on every rank)."""
        if self.comm.rank == 0:
            for name in WINDOW_COSTS:
                self._dataset(f"windows/{name}")[c] = costs[name]

    def read_diagnostics(self, k: int) -> dict[str, np.ndarray]:
        """The per-cycle diagnostics of the first ``k`` cycles (same on every rank)."""
        out = {name: self._h5[f"diagnostics/{name}"][:k] for name in DIAGNOSTICS}
        out.update(obs_store.read_counts(self._h5, k))
        return out

    def check_observations(self, plan) -> None:
        """Raise if the store was made for other observed quantities than ``plan``'s."""
        obs_store.check(self._h5, plan, self.path)

    def _slot_after(self, k: int) -> int:
        """The restart slot holding the state after cycle ``k`` (the last committed one)."""
        if self._held is None:
            return k % 2  # stores made before /restart/cycle alternated slots by cycle
        if k + 1 not in self._held:
            raise StoreError(f"{self.path!r} holds no restart state after cycle {k} (it holds {self._held})")
        return self._held.index(k + 1)

    def read_state(self, k: int) -> np.ndarray:
        """This rank's rows of the state after cycle ``k`` (``(nb, n_total)``).

        Only the state after the last committed cycle is kept (``k = completed() - 1``).
        """
        nb = self.ens.row_slice.stop - self.ens.row_slice.start
        return self._h5[f"restart/slot{self._slot_after(k)}"][self._row0:self._row0 + nb, :]

    def read_carried(self, k: int) -> dict[int, np.ndarray]:
        """This rank's carried values of its members after cycle ``k`` (``{member: values}``)."""
        C = self.ens.carried
        d = self._h5[f"restart/carried{self._slot_after(k)}"]
        return {i: d[i, C.offset:C.offset + C.n_local] for i in self.ens.local}
