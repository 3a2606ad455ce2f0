"""The observations in the run store: a varying number per cycle, allocated up front.

Each quantity ``q`` (observed at ``T_q`` times, ``m_q`` values each) has its own group, with
named dimensions ``time_q`` (its observation times) and ``obs_q`` (its observations)::

    /observations                    attrs: quantities (JSON list of names, in order)
    /observations/<q>/analysis_cycle (T_q,)      int: the cycle of each row (time = /times[cycle + 1])
    /observations/<q>/time           (T_q,)      the observation times
    /observations/<q>/values         (T_q, m_q)  observed values (NaN until the cycle is done)
    /observations/<q>/predicted_mean (T_q, m_q)  forecast ensemble mean of H_q(x)
    /observations/<q>/rejected       (T_q, m_q)  int8: 1 where quality control rejected it
    /observations/<q>/n_rejected     (T_q,)      int: rejections at each time (-1 until done)
    /observations/<q>/error_variance (m_q,)      the diagonal of R_q
    /observations/<q>/positions      (m_q, d)    where known
    /diagnostics/n_obs               (K,)        int: observations assimilated at each cycle
                                                 (0: no analysis; -1 until done)

Every dataset has its final size when the store is made (the schedules are known then), so
a cycle only writes rows and the store stays kill-safe; the ``dimensions`` attribute of each
dataset names its dimensions. A run continued with more cycles (:mod:`fdassim.grow`) gets
each quantity's new observation times appended (:func:`regrow`): the stored times must be
the first of the new schedule's.
"""

from __future__ import annotations

import json

import numpy as np

from .. import store_layout as layout
from ..errors import ObservationError
from ..store_layout import Var

#: observations assimilated at each cycle
N_OBS = layout.diagnostic("n_obs")
#: per quantity: the cycle of each of its observation times (not ``cycle``: xarray would take
#: it for the store's cycle coordinate)
CYCLE = "analysis_cycle"

__all__ = ["specs", "fill", "write", "read_counts", "single", "plan_of", "check", "regrow"]

#: per quantity: dataset, dtype, fill value and dimensions (``time``: the quantity's times,
#: ``obs``: its observations)
_PER_TIME = (("values", "f8", np.nan, ("time", "obs")), ("predicted_mean", "f8", np.nan, ("time", "obs")),
             ("rejected", "i1", 0, ("time", "obs")), ("n_rejected", "i8", -1, ("time",)))


def specs(plan) -> list[Var]:
    """Every observation dataset of ``plan`` (an :class:`~fdassim.observations.core.ObsPlan`),
    for the store to allocate."""
    out = []
    for name, c, m, p in zip(plan.names, plan.cycles, plan.sizes, plan.positions):
        T, obs, at = len(c), layout.observation, f"time_{name}"
        out += [Var(obs(name, CYCLE), (at,), (T,), "i8", 0), Var(obs(name, "time"), (at,), (T,), "f8", None),
                Var(obs(name, "error_variance"), (f"obs_{name}",), (m,), "f8", None)]
        out += [Var(obs(name, key), _dims(name, dims), (T, m) if len(dims) == 2 else (T,), dtype, fill)
                for key, dtype, fill, dims in _PER_TIME]
        if p is not None:
            out.append(Var(obs(name, "positions"), (f"obs_{name}", layout.SPACE), p.shape, "f8", None))
    out.append(Var(N_OBS, (layout.CYCLE,), (plan.n_cycles,), "i8", -1, cycles=True))
    return out


def _dims(name: str, dims) -> tuple[str, ...]:
    return tuple(f"{x}_{name}" for x in dims)


def fill(h5, plan, analysis_times, writer: bool) -> None:
    """Write what is known when the store is made (the datasets of :func:`specs` exist):
    times, errors, positions, and the attributes (collective; ``writer``: this rank writes data)."""
    h5.require_group(layout.OBSERVATIONS).attrs["quantities"] = json.dumps(plan.names)
    for name, c, p, R in zip(plan.names, plan.cycles, plan.positions, plan.errors):
        g = h5[layout.observation(name)]
        static = {CYCLE: np.asarray(c, dtype="i8"),
                  "time": np.asarray(analysis_times, dtype=float)[np.asarray(c, dtype=int)],
                  "error_variance": R.variances()}
        if p is not None:
            static["positions"] = p
        for key, data in static.items():
            if writer and data.size:
                g[key][...] = data


def regrow(src, dst, analysis_times, plan=None) -> None:
    """Copy the observation groups of store ``src`` into ``dst`` (both ``h5py.File``; ``dst``
    has its new ``n_cycles``) with room for the new times: the stored rows first, then the new
    ones (unwritten). The new times are ``plan``'s (an ObsPlan); without a plan, a quantity
    observed at every cycle is observed at every new cycle too.

    Raises
    ------
    ConfigError
        If a quantity was added or removed or changed its size, its stored times are not the
        first of its new schedule, or (no ``plan``) it was not observed at every cycle.
    """
    from ..errors import ConfigError

    names = json.loads(src[layout.OBSERVATIONS].attrs["quantities"])
    if plan is not None and names != plan.names:
        raise ConfigError(f"cannot extend the run: its store observes {names}, this run {plan.names}; "
                          "start again with --overwrite")
    K_old, K_new = int(src.attrs["n_cycles"]), int(dst.attrs["n_cycles"])
    dst.require_group(layout.OBSERVATIONS).attrs.update(dict(src[layout.OBSERVATIONS].attrs))
    for i, name in enumerate(names):
        g = src[layout.observation(name)]
        old, m = g[CYCLE][...], g["values"].shape[1]
        if plan is None:
            if not np.array_equal(old, np.arange(K_old)):
                raise ConfigError(f"cannot extend the run: observations.{name} has a schedule; give its "
                                  "observation plan")
            new = np.arange(K_new)
        else:
            new = np.asarray(plan.cycles[i])
            if plan.sizes[i] != m or not np.array_equal(old, new[:old.size]):
                raise ConfigError(f"cannot extend the run: observations.{name} was observed at cycles "
                                  f"{old.tolist()} ({m} values), its new schedule starts {new[:old.size].tolist()} "
                                  f"({plan.sizes[i]} values); start again with --overwrite")
        T = old.size
        for key, d in g.items():
            per_time = json.loads(d.attrs["dimensions"])[0] == f"time_{name}"
            if layout.derived(g.name, d):
                continue  # a coordinate made again by layout.label
            target = layout.observation(name, key)
            if key == CYCLE:
                out = dst.create_dataset(target, data=new.astype("i8"), track_times=False)
            elif key == "time":
                out = dst.create_dataset(target, data=np.asarray(analysis_times, dtype=float)[new], track_times=False)
            elif per_time:
                out = dst.create_dataset(target, (new.size,) + d.shape[1:], dtype=d.dtype, fillvalue=d.fillvalue,
                                         track_times=False)
                out[:T] = d[...]
            else:
                out = dst.create_dataset(target, data=d[...], track_times=False)
            out.attrs.update(layout.plain_attrs(d))


def write(dataset, k: int, record) -> None:
    """Write cycle ``k``'s observation record (rank 0 only; ``dataset(name)`` opens a dataset).

    ``record`` is ``(n_obs, parts)`` with ``parts`` a list of ``(name, row, values,
    predicted_mean, rejected)``; or, for a store of one quantity observed at every cycle, the
    ``(m,)`` observed values alone (all assimilated, no predicted mean).
    """
    if isinstance(record, np.ndarray):
        names = json.loads(dataset(layout.OBSERVATIONS).attrs["quantities"])
        if len(names) != 1:
            raise ObservationError(f"observed values alone fit a store of one quantity; this one has {names}")
        record = (record.size, [(names[0], k, record, np.full(record.size, np.nan), np.zeros(record.size, bool))])
    n_obs, parts = record
    for name, j, values, predicted_mean, rejected in parts:
        dataset(layout.observation(name, "values"))[j, :] = values
        dataset(layout.observation(name, "predicted_mean"))[j, :] = predicted_mean
        dataset(layout.observation(name, "rejected"))[j, :] = rejected.astype("i1")
        dataset(layout.observation(name, "n_rejected"))[j] = int(rejected.sum())
    dataset(N_OBS)[k] = n_obs


def read_counts(h5, k: int) -> dict[str, np.ndarray]:
    """The number of observations assimilated in each of the first ``k`` cycles."""
    return {"n_obs": h5[N_OBS][:k]} if N_OBS in h5 else {}


def single(m: int, K: int):
    """The plan of one quantity ``y`` of ``m`` values observed at every cycle (no positions)."""
    from ..analysis.base import ObsError
    from .core import ObsPlan, Quantity

    q = Quantity("y", lambda state: np.zeros(m), ObsError.diagonal(1.0))
    return ObsPlan((q,), (np.arange(K),), (int(m),), (None,), (ObsError.diagonal(np.ones(m)),), K)


def plan_of(observations, ensemble, times):
    """The :class:`~fdassim.observations.core.ObsPlan` of ``observations``: an ``Observations``,
    a plan, or an int ``m`` (:func:`single`)."""
    from .core import Observations, ObsPlan

    if isinstance(observations, ObsPlan):
        return observations
    if isinstance(observations, Observations):
        return observations.plan(ensemble, times)
    if isinstance(observations, (int, np.integer)) and not isinstance(observations, bool) and observations > 0:
        return single(int(observations), len(times) - 1)
    raise ObservationError(f"the store's observations must be an Observations, an ObsPlan or a positive int m, "
                           f"got {observations!r}")


def check(h5, plan, path: str) -> None:
    """Raise :class:`~fdassim.errors.ObservationError` unless the store at ``path`` holds
    ``plan``'s quantities with their sizes."""
    names = json.loads(h5[layout.OBSERVATIONS].attrs["quantities"])
    stored = [(n, h5[layout.observation(n, "values")].shape) for n in names]
    wanted = [(n, (len(c), m)) for n, c, m in zip(plan.names, plan.cycles, plan.sizes)]
    if stored != wanted:
        raise ObservationError(f"{path!r} was made for observations {_describe(stored)}, this run observes "
                               f"{_describe(wanted)}: make the store with Store.create(..., observations)")


def _describe(items) -> str:
    return ", ".join(f"{n} ({T} times x {m})" for n, (T, m) in items)
