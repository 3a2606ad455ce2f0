"""Run an experiment described by :class:`~fdassim.config.Settings` (what ``fdassim run`` does).

The plumbing between the settings and the cycle: build the model, the ensemble and the
observations, open the store, call :func:`fdassim.cycle.assimilate`, print the summary and
the timing breakdown on rank 0.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .analysis.base import ObsError
from .config import Settings
from .errors import ConfigError
from .fields import write_fields
from .observations import Identity, Observations, Subset

__all__ = ["run", "make_observations"]


def make_observations(settings: Settings, ensemble) -> Observations:
    """The observation operator, error and values described by ``settings.observations``."""
    o = settings.observations
    model = ensemble.model
    names = [f.name for f in model.fields]
    if o.field not in names:
        raise ConfigError(f"observations.field: {o.field!r} is not a field of the model; choose one of {names}")
    template = ensemble.template
    value = template[o.field]
    geometry = getattr(model, "geometry", None)
    coords = None if geometry is None else geometry.positions.get(o.field)
    if hasattr(value, "function_space"):
        if o.points is None:
            raise ConfigError(f"observations: field {o.field!r} is a Firedrake Function: give `points` to observe")
        from .pointobs import PointValues

        H = PointValues(o.field, np.asarray(o.points, dtype=float))
        obs_coords = H.points
    else:
        if o.points is not None:
            raise ConfigError(f"observations.points: field {o.field!r} is an array: use `every` or `indices`")
        n = np.asarray(value).size
        if o.indices is not None:
            bad = [i for i in o.indices if not 0 <= i < n]
            if bad:
                raise ConfigError(f"observations.indices: {bad} outside 0..{n - 1}")
            idx = np.asarray(o.indices)
        else:
            idx = np.arange(0, n, o.every or 1)
        H = Identity(o.field) if idx.size == n else Subset(tuple(idx.tolist()), o.field)
        obs_coords = None if coords is None else np.asarray(coords, dtype=float).reshape(n, -1)[idx]
    values = None
    if o.file is not None:
        values = _read_values(o.file)
        if values.shape[0] < settings.run.cycles:
            raise ConfigError(f"observations.file: {o.file!r} holds {values.shape[0]} cycles, "
                              f"run.cycles is {settings.run.cycles}")
    return Observations(H, ObsError.from_std(o.std), obs_coords, values)


def _read_values(path: str) -> np.ndarray:
    try:
        if path.endswith(".npz"):
            with np.load(path) as f:
                return np.asarray(f["y"], dtype=float)
        import h5py

        with h5py.File(path, "r") as f:
            return np.asarray(f["y"][...], dtype=float)
    except (KeyError, OSError, ValueError) as exc:
        raise ConfigError(f"observations.file: cannot read observed values `y` (cycles x m) from {path!r}: {exc}") from None


def run(settings: Settings, config_text: str = "", restart: bool = False, overwrite: bool = False, comm=None):
    """Run the experiment; return the :class:`~fdassim.cycle.CycleResult`.

    ``restart`` continues the run stored at ``output.path``; ``overwrite`` replaces it.
    """
    from .cycle import assimilate
    from .smoothers import smooth
    from .ensemble import Ensemble
    from .io import Store

    r, e = settings.run, settings.ensemble
    smoother = settings.make_smoother() if settings.smoother is not None else None
    if smoother is not None and restart:
        raise ConfigError("--restart: a smoother run cannot be continued from its store yet; start it again "
                          "with --overwrite")
    if not r.twin and settings.observations.file is None:
        raise ConfigError("observations.file: required when run.twin is false (there is no truth to observe)")
    model = settings.make_model()
    ensemble = Ensemble(model, e.size, comm=comm, ranks_per_member=e.ranks_per_member, truth=r.twin)
    observations = make_observations(settings, ensemble)
    times = r.t0 + r.interval * np.arange(r.cycles + 1)
    # the number of observations: from the given values, else from the operator on the members
    m = (observations.values.shape[1] if observations.values is not None
         else ensemble.observe(observations.operator).shape[0])
    path = settings.output.path
    rank0 = ensemble.world.rank == 0
    store = None
    if restart:
        try:
            store = Store.open(path, ensemble)
        except ConfigError as exc:
            if "no store" not in str(exc):
                raise
            if rank0:
                print(f"no store at {path!r} yet: starting from the beginning", file=sys.stderr)
            restart = False
    if store is None:
        store = Store.create(path, ensemble, times, m, config_text, settings.output.store_ensembles,
                             overwrite=overwrite, resolved=settings.resolved(), smoother=smoother)
    with store:
        if smoother is None:
            result = assimilate(ensemble, settings.make_scheme(), observations, times, seed=r.seed,
                                inflation=settings.make_inflation(), store=store, restart=restart,
                                progress=r.progress)
        else:
            result = smooth(ensemble, smoother, observations, times, seed=r.seed,
                            inflation=settings.make_inflation(), store=store, progress=r.progress)
    fields_path = os.path.splitext(path)[0] + "-fields.h5"
    saved = write_fields(fields_path, ensemble)
    if rank0:
        s = result.summary(burn_in=min(r.cycles // 10, 100))
        method = settings.filter.scheme if smoother is None else \
            f"{settings.smoother.method} (lag {smoother.lag}, shift {smoother.shift})"
        print(f"fdassim: {method} on {settings.model.name}, N = {e.size}, "
              f"{r.cycles} cycles on {ensemble.world.size} rank(s) ({ensemble.groups} group(s) of "
              f"{ensemble.comm.size}) -> {path}")
        print(f"  time-averaged analysis RMSE {s['rmse_analysis']:.4f}, spread {s['spread_analysis']:.4f}; "
              f"forecast RMSE {s['rmse_forecast']:.4f}, spread {s['spread_forecast']:.4f}")
        if smoother is not None:
            print(f"  smoother RMSE {s['rmse_smoother']:.4f}, spread {s['spread_smoother']:.4f}; per cycle "
                  f"{s['simulations']:.2f} ensemble simulations ({s['propagations']:.1f} forecast intervals)")
        t = result.timing
        total = sum(t.values())
        print("  time: " + ", ".join(f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in t.items()))
        if saved:
            print(f"  final analysis fields ({', '.join(saved)}) -> {fields_path} (Firedrake CheckpointFile)")
    return result
