"""The run store: one HDF5 file per run, written in parallel, safe to kill at any point.

Layout of the file (``K`` cycles, ``N`` members, field ``f`` with ``n_f`` values)::

    /                          attrs: format_version, config (the YAML as given), resolved
                               (every setting with its default, and the objects built), versions (JSON),
                               n_members, n_cycles, fields, parameters, created
    /times                     (K + 1,)  t_0 and the analysis times
    /completed                 ()        number of completed cycles (the commit point)
    /ensemble/forecast/<f>     (K, n_f, N)  forecast members at each analysis time
    /ensemble/analysis/<f>     (K, n_f, N)  analysis members
    /mean/forecast/<f>         (K, n_f)
    /mean/analysis/<f>         (K, n_f)
    /truth/<f>                 (K, n_f)     twin experiments only
    /coordinates/<f>           (n_f, d)     positions of the field's values (when known)
    /observations/y            (K, m)
    /diagnostics/<name>        (K,)          rmse_forecast, rmse_analysis, spread_forecast, ...
    /timing/cycle              (K, 3)        seconds in forecast, analysis, io
    /timing/init               ()            seconds in initialization
    /restart/slot0, slot1      (n, N + truth)  the state after the last completed cycles
    /restart/carried0, carried1  (N + truth, n_c)  the carried fields then (models with any)

A smoother run (:func:`fdassim.smooth`, ``C`` windows) also has::

    /ensemble/smoother/<f>     (K, n_f, N)  final smoother members at each observation time
    /mean/smoother/<f>         (K, n_f)
    /diagnostics/<name>        (K,)          rmse_smoother, spread_smoother
    /windows/<name>            (C,)          simulations, propagations, iterations per window

where the analysis is the filter's, and attrs ``smoother`` (the method, as given) and ``lag``,
``shift``.

Ensembles are stored cycle by cycle, ``(K, n_f, N)``: each cycle's block is contiguous.

Every dataset is created, and its space allocated, when the file is made (under a temporary
name, then renamed), so a cycle only writes raw data into existing space and never changes
the file's structure. The cycle's commit point is the scalar ``/completed``, written last;
the restart state alternates between two slots, so the one ``/completed`` points to is never
the one being written. A run killed at any point, even in the middle of a write, restarts
from its last completed cycle.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from . import faults
from .errors import ConfigError

__all__ = ["Store", "FORMAT_VERSION", "versions"]

FORMAT_VERSION = 1
DIAGNOSTICS = ("rmse_forecast", "rmse_analysis", "spread_forecast", "spread_analysis")
#: per observation time and per window, of a smoother run
SMOOTHER_DIAGNOSTICS = ("rmse_smoother", "spread_smoother")
WINDOW_COSTS = ("simulations", "propagations", "iterations")
TIMING = ("forecast", "analysis", "io")


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


@dataclass(frozen=True)
class _FieldRows:
    """Where a rank's row block meets one field: local rows ``lo:hi`` of the block go to
    global indices ``g0:g0 + (hi - lo)`` of the field."""

    name: str
    lo: int
    hi: int
    g0: int


class Store:
    """The HDF5 store of one run (see the module docstring for its layout).

    Use :meth:`create` for a new run and :meth:`open` to restart or read one. Every method
    is collective over ``comm`` (all ranks call it).
    """

    def __init__(self, path: str, comm, ensemble, n_cycles: int, h5=None):
        self.path = path
        self._h5 = h5  # open for writing while the run goes on (see close)
        self.comm = comm
        self.ens = ensemble
        self.n_cycles = n_cycles
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

    def _dataset(self, name: str):
        d = self._datasets.get(name)
        if d is None:
            d = self._datasets[name] = self._h5[name]
        return d

    # -- creating and opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: str, ensemble, times: np.ndarray, m: int, config_text: str = "",
               store_ensembles: bool = True, overwrite: bool = False, resolved: str = "",
               smoother=None) -> "Store":
        """Make a new store for a run of ``len(times) - 1`` cycles with ``m`` observations.

        ``smoother`` (a :class:`~fdassim.smoothers.base.Smoother`) makes the store of a
        smoother run, with the smoother's datasets.

        The file is written under a temporary name and renamed when complete, so a run
        killed here leaves no half-made store.

        Raises
        ------
        ConfigError
            If ``path`` exists and ``overwrite`` is false (a finished run is never lost to a
            re-run by mistake).
        """
        comm = ensemble.world
        if not overwrite and os.path.exists(path):
            raise ConfigError(f"{path!r} exists: continue that run with --restart, start it again with "
                              "--overwrite, or choose another output.path")
        K = len(times) - 1
        N, L = ensemble.size, ensemble.layout
        tmp = comm.bcast(f"{path}.tmp-{os.getpid()}" if comm.rank == 0 else None)
        with _open(tmp, "w", comm) as h5:
            h5.attrs.update(format_version=FORMAT_VERSION, config=config_text, resolved=resolved,
                            versions=json.dumps(versions()),
                            n_members=N, n_cycles=K, has_truth=ensemble.has_truth,
                            fields=json.dumps([f.name for f in L.fields]),
                            parameters=json.dumps([f.name for f in L.fields if f.parameter]),
                            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
                            store_ensembles=store_ensembles)
            kw = dict(dtype="f8", fillvalue=np.nan, track_times=False)
            h5.create_dataset("times", data=np.asarray(times, dtype=float), track_times=False)
            h5.create_dataset("completed", data=0, dtype="i8", track_times=False)
            for f in L.fields:
                nf = L.global_size(f.name)
                for kind in ("forecast", "analysis"):
                    if store_ensembles:
                        h5.create_dataset(f"ensemble/{kind}/{f.name}", (K, nf, N), **kw)
                    h5.create_dataset(f"mean/{kind}/{f.name}", (K, nf), **kw)
                if ensemble.has_truth:
                    h5.create_dataset(f"truth/{f.name}", (K, nf), **kw)
            h5.create_dataset("observations/y", (K, m), **kw)
            for name in DIAGNOSTICS:
                h5.create_dataset(f"diagnostics/{name}", (K,), **kw)
            h5.create_dataset("timing/cycle", (K, len(TIMING)), **kw)
            h5["timing/cycle"].attrs["columns"] = json.dumps(list(TIMING))
            h5.create_dataset("timing/init", data=np.nan, track_times=False)
            if smoother is not None:
                _create_smoother(h5, smoother, K, L, N, store_ensembles, kw)
            for slot in (0, 1):
                h5.create_dataset(f"restart/slot{slot}", (L.n_global, ensemble.n_total), **kw)
                if ensemble.carried is not None:  # member-major: each member's values contiguous
                    h5.create_dataset(f"restart/carried{slot}", (ensemble.n_total, ensemble.carried.n_global), **kw)
            store = cls(tmp, comm, ensemble, K)
            if L.coords is not None:
                rows = ensemble.rows
                for f in L.fields:
                    d = h5.create_dataset(f"coordinates/{f.name}", (L.global_size(f.name), L.coords.shape[1]), **kw)
                    fr = next(r for r in store._fields if r.name == f.name)
                    if fr.hi > fr.lo:
                        d[fr.g0:fr.g0 + fr.hi - fr.lo, :] = rows.coords[fr.lo:fr.hi]
        comm.Barrier()
        if comm.rank == 0:
            os.replace(tmp, path)
        comm.Barrier()
        return cls(path, comm, ensemble, K, _open(path, "r+", comm))

    @classmethod
    def open(cls, path: str, ensemble) -> "Store":
        """Open an existing store to restart a run; check it matches ``ensemble``.

        Raises
        ------
        ConfigError
            If the file is missing, of another format version, or made for another ensemble
            size, truth setting, fields or state size (naming both values).
        """
        comm = ensemble.world
        if not os.path.exists(path):
            raise ConfigError(f"cannot restart: no store at {path!r} (run without --restart first)")
        with _open(path, "r", comm) as h5:
            a = dict(h5.attrs)
            K = int(a["n_cycles"])
            n_slot = h5["restart/slot0"].shape
            n_carried = h5["restart/carried0"].shape if "restart/carried0" in h5 else None
        L = ensemble.layout
        expect = {"format_version": FORMAT_VERSION, "n_members": ensemble.size, "has_truth": ensemble.has_truth,
                  "fields": json.dumps([f.name for f in L.fields])}
        for key, want in expect.items():
            got = a.get(key)
            got = got.item() if hasattr(got, "item") else got  # numpy scalar -> Python
            if (bool(got) if isinstance(want, bool) else got) != want:
                raise ConfigError(f"cannot restart from {path!r}: its {key} is {got!r}, this run has {want!r}")
        if n_slot != (L.n_global, ensemble.n_total) or n_carried != (
                None if ensemble.carried is None else (ensemble.n_total, ensemble.carried.n_global)):
            raise ConfigError(f"cannot restart from {path!r}: it holds states of shape {n_slot} (carried "
                              f"{n_carried}), this run has {(L.n_global, ensemble.n_total)} (same mesh and "
                              "ranks per member needed)")
        return cls(path, comm, ensemble, K, _open(path, "r+", comm))

    def close(self) -> None:
        """Close the file (collective). The store stays readable with :func:`h5py.File`."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the cycle's writes --------------------------------------------------------------------
    def completed(self) -> int:
        """Number of completed cycles."""
        return int(self._h5["completed"][()])

    def write_init_time(self, seconds: float) -> None:
        if self.comm.rank == 0:
            self._h5["timing/init"][()] = seconds
        self._h5.flush()

    def write_cycle(self, k: int, forecast: np.ndarray, analysis: np.ndarray, state: np.ndarray,
                    y: np.ndarray, diagnostics: dict[str, float], timing: list[float],
                    io_start: float | None = None, carried: list[tuple[int, np.ndarray]] = ()) -> None:
        """Write cycle ``k`` and commit it.

        Parameters
        ----------
        forecast, analysis
            ``(nb, N)`` this rank's rows of the forecast and analysis members.
        state
            ``(nb, n_total)`` this rank's rows of the state after the cycle (members and truth),
            for a restart.
        y
            ``(m,)`` the observations (same on every rank).
        diagnostics, timing
            Scalars of this cycle (same on every rank): timing holds the seconds spent in
            forecast and analysis; the I/O time is measured here from ``io_start``
            (a ``time.perf_counter()`` value) to just before the commit.
        carried
            ``(member, local values)`` of the carried fields of this rank's members
            (:meth:`Ensemble.carried_values <fdassim.ensemble.Ensemble.carried_values>`).
        """
        N = self.ens.size
        h5 = self._dataset  # cached dataset objects: a name lookup costs more than a small write
        store_ens = self._store_ens
        for fr in self._fields:
            if fr.hi == fr.lo:
                continue
            g = slice(fr.g0, fr.g0 + fr.hi - fr.lo)
            for kind, X in (("forecast", forecast), ("analysis", analysis)):
                part = X[fr.lo:fr.hi, :N]
                if store_ens:
                    h5(f"ensemble/{kind}/{fr.name}")[k, g, :] = part
                h5(f"mean/{kind}/{fr.name}")[k, g] = part.mean(axis=1)
            if self.ens.has_truth:
                h5(f"truth/{fr.name}")[k, g] = state[fr.lo:fr.hi, N]
        faults.point("write", k)
        nb = state.shape[0]
        if nb:
            h5(f"restart/slot{k % 2}")[self._row0:self._row0 + nb, :] = state
        if carried:
            c0 = self.ens.carried.offset
            for i, values in carried:
                h5(f"restart/carried{k % 2}")[i, c0:c0 + values.size] = values
        if self.comm.rank == 0:
            h5("observations/y")[k, :] = y
            for name in DIAGNOSTICS:
                h5(f"diagnostics/{name}")[k] = diagnostics.get(name, np.nan)
            io = time.perf_counter() - io_start if io_start is not None else np.nan
            h5("timing/cycle")[k, :] = list(timing)[:2] + [io]
        # the commit point: only once every rank's data is in the file
        self._h5.flush()
        if self.comm.rank == 0:
            h5("completed")[()] = k + 1
        self._h5.flush()

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
        return {name: self._h5[f"diagnostics/{name}"][:k] for name in DIAGNOSTICS}

    def read_carried(self, k: int) -> dict[int, np.ndarray]:
        """This rank's carried values of its members after cycle ``k`` (``{member: values}``)."""
        C = self.ens.carried
        d = self._h5[f"restart/carried{k % 2}"]
        return {i: d[i, C.offset:C.offset + C.n_local] for i in self.ens.local}

    def read_state(self, k: int) -> np.ndarray:
        """This rank's rows of the state after cycle ``k`` (``(nb, n_total)``)."""
        nb = self.ens.row_slice.stop - self.ens.row_slice.start
        return self._h5[f"restart/slot{k % 2}"][self._row0:self._row0 + nb, :]


def _create_smoother(h5, smoother, K: int, L, N: int, store_ensembles: bool, kw: dict) -> None:
    """The datasets of a smoother run (see the module docstring)."""
    h5.attrs.update(smoother=repr(smoother), lag=smoother.lag, shift=smoother.shift)
    for f in L.fields:
        nf = L.global_size(f.name)
        if store_ensembles:
            h5.create_dataset(f"ensemble/smoother/{f.name}", (K, nf, N), **kw)
        h5.create_dataset(f"mean/smoother/{f.name}", (K, nf), **kw)
    for name in SMOOTHER_DIAGNOSTICS:
        h5.create_dataset(f"diagnostics/{name}", (K,), **kw)
    for name in WINDOW_COSTS:
        h5.create_dataset(f"windows/{name}", (smoother.schedule.count(K),), **kw)
