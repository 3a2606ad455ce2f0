"""The assimilation cycle: initialize -> (forecast -> analysis -> store) per cycle.

One loop for every kind of state (arrays, Firedrake Functions), serial or parallel::

    forecast   each member where it lives                        Ensemble.forecast
    observe    Y[:, i] = H(x_i), allgathered in member order     Ensemble.observe
    transpose  members -> ensemble-complete rows                 Ensemble.to_rows
    analysis   inflation, scheme.prepare (obs space), apply(rows)
    transpose  rows -> members                                   Ensemble.from_rows
    store      rows of forecast, analysis, state; diagnostics    Store.write_cycle

The analysis depends on nothing but the gathered ``Y``, the rows, the seed and the cycle, so
its result does not depend on how members are dealt over ranks. A run killed at any point
continues from its last completed cycle (``restart=True``) with the same result.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .analysis.base import AnalysisContext, Scheme
from .analysis.product import Product
from .divergence import divergence
from .ensemble import Ensemble
from .errors import DivergenceWarning
from .io import TIMING, Store
from .observations import Observations
from .rows_product import apply_update

__all__ = ["assimilate", "CycleResult", "rmse_spread"]


@dataclass
class CycleResult:
    """Per-cycle diagnostics of a run (the same on every rank).

    ``rmse_*`` is the root-mean-square error of the ensemble mean against the truth (NaN
    without a truth); ``spread_*`` the root-mean ensemble variance, over the whole state.
    """

    rmse_forecast: np.ndarray
    rmse_analysis: np.ndarray
    spread_forecast: np.ndarray
    spread_analysis: np.ndarray
    timing: dict[str, float] = field(default_factory=dict)
    first_cycle: int = 0
    diverged_at: int | None = None  # the cycle a divergence was first seen (fdassim.divergence)

    def summary(self, burn_in: int = 0) -> dict[str, float]:
        """Time averages after ``burn_in`` cycles."""
        s = slice(burn_in, None)
        values = {name: getattr(self, name)[s] for name in
                  ("rmse_forecast", "rmse_analysis", "spread_forecast", "spread_analysis")}
        # no truth: RMSEs are all NaN, and so is their mean (without numpy's warning)
        return {name: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for name, v in values.items()}


def rmse_spread(ens: Ensemble, X: np.ndarray, truth: np.ndarray | None) -> tuple[float, float]:
    """(rmse, spread) over the whole state from this rank's rows, reduced over all ranks (collective)."""
    mean = X.mean(axis=1)
    var = X.var(axis=1, ddof=1)
    err = ((mean - truth) ** 2).sum() if truth is not None else 0.0
    tot_err, tot_var = ens.sum_rows(np.array([err, var.sum()]))
    n = ens.layout.n_global
    return (np.sqrt(tot_err / n) if truth is not None else np.nan), np.sqrt(tot_var / n)


def assimilate(ensemble: Ensemble, scheme: Scheme, observations: Observations, times, *, seed: int,
               inflation=None, store: Store | None = None, restart: bool = False,
               progress: bool = True, product: Product = Product.TILED) -> CycleResult:
    """Run the assimilation cycle over the analysis ``times``.

    Parameters
    ----------
    ensemble
        The distributed ensemble (its model, members and, for a twin experiment, the truth).
    scheme
        Any analysis scheme of :mod:`fdassim.analysis`.
    observations
        What is observed at each analysis time.
    times
        ``t_0, t_1, ..., t_K``: the initial time and the ``K`` analysis times.
    seed
        The user's seed; every random draw depends on (seed, cycle, member) only.
    inflation
        An :class:`fdassim.inflation.Inflation`, or ``None``.
    store
        Where to write each cycle (``None``: keep only the diagnostics).
    restart
        Continue from the store's last completed cycle instead of initializing.
    progress
        Show a progress bar (rank 0 only).
    product
        How a transform scheme's :math:`X^a = X^f W` is formed on the rows
        (:func:`fdassim.rows_product.apply_update`): ``TILED`` (default) or ``ORDERED``,
        bitwise split-invariant, or ``PETSC``.

    Returns
    -------
    CycleResult

    The model's ``start`` hooks are called on every rank before the first forecast and its
    ``close`` hooks when the run ends, also when it ends with an error
    (:mod:`fdassim.models.base`).
    """
    times = np.asarray(times, dtype=float)
    K = times.size - 1
    out = CycleResult(*(np.full(K, np.nan) for _ in range(4)))
    k0 = store.completed() if (restart and store is not None) else 0
    try:
        _cycles(ensemble, scheme, observations, times, seed, inflation, store, k0, progress, out, product)
    except BaseException:
        ensemble.close(quiet=True)  # on every rank; the error that stopped the run is the one raised
        raise
    ensemble.close()
    return out


def _cycles(ensemble, scheme, observations, times, seed, inflation, store, k0, progress, out, product):
    """The loop of :func:`assimilate` (between the model's start and close)."""
    K, N = times.size - 1, ensemble.size
    rank0 = ensemble.world.rank == 0
    tic = time.perf_counter()
    ensemble.start(k0)
    if k0 == 0:
        ensemble.initialize(seed)
    else:  # a restart: the state after the last completed cycle, and the diagnostics so far
        ensemble.from_rows(store.read_state(k0 - 1), all_members=True)
        if ensemble.carried is not None:
            ensemble.set_carried(store.read_carried(k0 - 1))
        for name, values in store.read_diagnostics(k0).items():
            getattr(out, name)[:k0] = values
    out.first_cycle = k0
    out.timing["init"] = time.perf_counter() - tic
    if store is not None and k0 == 0:
        store.write_init_time(out.timing["init"])
    spent = dict.fromkeys(TIMING, 0.0)
    rows = ensemble.rows
    from tqdm import tqdm

    for k in tqdm(range(k0, K), desc="cycles", disable=not (progress and rank0), initial=k0, total=K):
        t = [time.perf_counter()]
        ensemble.forecast(times[k], times[k + 1], k)
        t.append(time.perf_counter())

        Y_all = ensemble.observe(observations.operator)
        state = ensemble.to_rows()
        Xf, Y = state[:, :N].copy(), Y_all[:, :N]
        truth = state[:, N] if ensemble.has_truth else None
        y = observations.observed(k, seed, Y_all[:, N] if ensemble.has_truth else None)
        ctx = AnalysisContext(seed=seed, cycle=k, obs_coords=observations.coords, periodic=ensemble.periodic)
        X, Y = (inflation.prior(Xf, rows), inflation.prior_obs(Y)) if inflation else (Xf, Y)
        Xa = apply_update(scheme.prepare(Y, y, observations.R, ctx), X, rows, product, ensemble.world)
        if inflation:
            Xa = inflation.posterior(Xa, X, rows, ctx)
        ensemble.from_rows(Xa)
        state[:, :N] = Xa
        t.append(time.perf_counter())

        out.rmse_forecast[k], out.spread_forecast[k] = rmse_spread(ensemble, Xf, truth)
        out.rmse_analysis[k], out.spread_analysis[k] = rmse_spread(ensemble, Xa, truth)
        if out.diverged_at is None:
            why = divergence(out.rmse_analysis, out.spread_analysis, k)
            if why:  # warn once, and say so in the store
                out.diverged_at = k
                if store is not None:
                    store.flag_divergence(k)
                if rank0:
                    warnings.warn(why, DivergenceWarning, stacklevel=2)
        if store is not None:
            diag = {name: getattr(out, name)[k] for name in
                    ("rmse_forecast", "rmse_analysis", "spread_forecast", "spread_analysis")}
            store.write_cycle(k, Xf, Xa, state, y, diag, [t[1] - t[0], t[2] - t[1]], io_start=t[2],
                              carried=ensemble.carried_values())
        t.append(time.perf_counter())
        for name, a, b in zip(TIMING, t[:-1], t[1:]):
            spent[name] += b - a
    out.timing.update(spent)
