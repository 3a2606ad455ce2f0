"""The assimilation cycle: initialize -> (forecast -> analysis -> store) per cycle.

One loop for every kind of state (arrays, Firedrake Functions), serial or parallel::

    forecast   each member where it lives                        Ensemble.forecast
    observe    the quantities observed now (none: no analysis)   ObsPlan.batch
               Y[:, i] = H(x_i), allgathered in member order     Ensemble.observe
    QC         drop outliers (per quantity's threshold)          Batch.rejected
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
from .parameters import Treatments

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
    #: observations assimilated at each cycle (0: nothing observed or all rejected, no analysis)
    n_obs: np.ndarray | None = None

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
               progress: bool = True, product: Product = Product.TILED, initial_perturbations=None,
               model_noise=None, parameters=(), after_analysis=None) -> CycleResult:
    """Run the assimilation cycle over the analysis ``times``.

    Parameters
    ----------
    ensemble
        The distributed ensemble (its model, members and, for a twin experiment, the truth).
    scheme
        Any analysis scheme of :mod:`fdassim.analysis`.
    observations
        What is observed, and when (:class:`~fdassim.observations.Observations`). A cycle
        where nothing is observed (or every observation fails quality control) makes no
        analysis and no inflation: the forecast goes on.
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
    initial_perturbations
        Random fields added to the initial members
        (:class:`~fdassim.perturbations.InitialPerturbations`), or ``None``.
    model_noise
        AR(1) noise added after each forecast (:class:`~fdassim.perturbations.ModelNoise`).
    parameters
        Treatments of parameter fields applied, in order, after each analysis
        (:class:`~fdassim.parameters.Clip`, :class:`~fdassim.parameters.BetaBounds`,
        :class:`~fdassim.parameters.UnderRelaxed`), on the rows of their fields; a
        ``BetaBounds`` may take its bounds from the observations of a quantity.

    after_analysis
        ``after_analysis(ensemble, cycle, observed)``, called on every rank after each analysis
        with ``{quantity: Observed}`` (the kept observations of the cycle): a step that changes
        the members' fields that are not analysed before the next forecast, such as the friction
        inversion of :class:`~fdassim.models.inversion.HybridInversion`; what it changes in the
        carried fields is stored in the restart.

    Returns
    -------
    CycleResult

    The model's ``start`` hooks are called on every rank before the first forecast and its
    ``close`` hooks when the run ends, also when it ends with an error
    (:mod:`fdassim.models.base`). Observations, schedules, perturbed fields and parameter
    treatments are checked before either.
    """
    times = np.asarray(times, dtype=float)
    K = times.size - 1
    if initial_perturbations is not None:
        initial_perturbations.check(ensemble.model, template=ensemble.template)
    if model_noise is not None:
        model_noise.check(ensemble.model)
    plan = observations.plan(ensemble, times)
    if store is not None:
        store.check_observations(plan)
    run = _Run(plan, Treatments(parameters, ensemble, plan.names), initial_perturbations, model_noise,
               after_analysis)
    out = CycleResult(*(np.full(K, np.nan) for _ in range(4)), n_obs=np.zeros(K, dtype=int))
    k0 = store.completed() if (restart and store is not None) else 0
    try:
        _cycles(ensemble, scheme, run, times, seed, inflation, store, k0, progress, out, product)
    except BaseException:
        ensemble.close(quiet=True)  # on every rank; the error that stopped the run is the one raised
        raise
    ensemble.close()
    return out


@dataclass(frozen=True)
class _Run:
    """What a run adds to the analysis: its observation plan, parameter treatments, perturbations."""

    plan: object
    treatments: Treatments
    initial_perturbations: object
    model_noise: object
    after_analysis: object = None


def _cycles(ensemble, scheme, run: _Run, times, seed, inflation, store, k0, progress, out, product):
    """The loop of :func:`assimilate` (between the model's start and close)."""
    K, N = times.size - 1, ensemble.size
    plan, treatments, noise = run.plan, run.treatments, run.model_noise
    rank0 = ensemble.world.rank == 0
    tic = time.perf_counter()
    ensemble.start(k0)
    if k0 == 0:
        ensemble.initialize(seed)
        if run.initial_perturbations is not None:
            run.initial_perturbations.apply(ensemble, seed)
    else:  # a restart: the state after the last completed cycle, and the diagnostics so far
        ensemble.from_rows(store.read_state(k0 - 1), all_members=True)
        if ensemble.carried is not None:
            ensemble.set_carried(store.read_carried(k0 - 1))
        for name, values in store.read_diagnostics(k0).items():
            getattr(out, name)[:k0] = values
        if noise is not None:
            noise.replay(ensemble, seed, k0)
    if treatments.keeps_previous:  # the ensemble the first forecast starts from
        treatments.remember(store.read_state(k0 - 1)[:, :N] if k0 else ensemble.to_rows()[:, :N])
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
        if noise is not None:
            noise.apply(ensemble, seed, k)
        t.append(time.perf_counter())

        batch = plan.batch(k)
        state = ensemble.to_rows()
        Xf = state[:, :N].copy()
        truth = state[:, N] if ensemble.has_truth else None
        Xa, record = Xf, (0, [])
        if batch is not None:
            Y_all = ensemble.observe(batch.operator)
            y = batch.observed(seed, Y_all[:, N] if ensemble.has_truth else None)
            Y = Y_all[:, :N]
            X, Yi = (inflation.prior(Xf, rows), inflation.prior_obs(Y)) if inflation else (Xf, Y)
            rejected = batch.rejected(Yi, y)
            keep = ~rejected
            use = keep & batch.assimilated()  # what the analysis uses; keep: what the steps after it see
            if use.any():
                ctx = AnalysisContext(seed=seed, cycle=k, obs_coords=batch.positions(use),
                                      periodic=ensemble.periodic)
                Xa = apply_update(scheme.prepare(Yi[use], y[use], batch.error(use), ctx), X, rows, product,
                                  ensemble.world)
                if inflation:
                    Xa = inflation.posterior(Xa, X, rows, ctx)
                if treatments:
                    treatments.apply(Xa, Xf, times[k + 1], times[k + 1] - times[k], batch.kept(y, keep))
                ensemble.from_rows(Xa)
                state[:, :N] = Xa
                if run.after_analysis is not None:
                    run.after_analysis(ensemble, k, batch.kept(y, keep))
            record = (int(use.sum()), [(plan.names[qi], j, y[s], Y[s].mean(axis=1), rejected[s])
                                        for (qi, j), s in zip(batch.parts, batch.slices)])
        out.n_obs[k] = record[0]
        treatments.remember(state[:, :N])
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
            store.write_cycle(k, Xf, Xa, state, record, diag, [t[1] - t[0], t[2] - t[1]], io_start=t[2],
                              carried=ensemble.carried_values())
        t.append(time.perf_counter())
        for name, a, b in zip(TIMING, t[:-1], t[1:]):
            spent[name] += b - a
    out.timing.update(spent)
