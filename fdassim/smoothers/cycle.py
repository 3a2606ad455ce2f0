"""The smoother run: windows of a fixed-lag smoother over the distributed ensemble, recorded.

:func:`smooth` is to smoothers what :func:`fdassim.assimilate` is to filters: it draws the
initial members, checks that the model can be re-run when the method needs it, runs the
windows one after the other (:mod:`fdassim.smoothers.window`) and records, at each
observation time, the forecast, filter (analysis) and final smoother statistics, and per
window the cost (:class:`SmootherResult`), in the run's store if given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..cycle import rmse_spread
from ..errors import ConfigError, InputError
from ..inflation import Inflation
from ..io import Store
from .base import Estimate, Smoother
from .runner import Runner

__all__ = ["smooth", "SmootherResult"]

_STATS = ("rmse_forecast", "rmse_analysis", "rmse_smoother", "spread_forecast", "spread_analysis", "spread_smoother")
_COSTS = ("simulations", "propagations", "iterations")


@dataclass
class SmootherResult:
    """Statistics of a smoother run (the same on every rank).

    Per observation time (``(K,)``, index ``k`` for ``times[k + 1]``): ``rmse_*`` the
    root-mean-square error of the ensemble mean against the truth (NaN without a truth) and
    ``spread_*`` the root-mean ensemble variance, of the forecast, the filter analysis and
    the final smoother estimate (NaN at the last ``L - 1`` or so times, which no window
    smoothed to the end). Per window (``(C,)``): ``simulations`` (ensemble simulations, the
    cost measure of Grudzien & Bocquet 2022), ``propagations`` (ensemble forecasts over one
    observation interval) and ``iterations`` (Gauss-Newton iterations).
    """

    lag: int
    shift: int
    rmse_forecast: np.ndarray
    rmse_analysis: np.ndarray
    rmse_smoother: np.ndarray
    spread_forecast: np.ndarray
    spread_analysis: np.ndarray
    spread_smoother: np.ndarray
    simulations: np.ndarray
    propagations: np.ndarray
    iterations: np.ndarray
    timing: dict[str, float] = field(default_factory=dict)

    @classmethod
    def empty(cls, lag: int, shift: int, K: int, C: int) -> "SmootherResult":
        return cls(lag, shift, *(np.full(K, np.nan) for _ in _STATS), *(np.full(C, np.nan) for _ in _COSTS))

    def summary(self, burn_in: int = 0) -> dict[str, float]:
        """Time averages over the observation times from ``burn_in`` on that have all three estimates.

        The costs are averaged over the windows after the first (which assimilates all ``L``
        observations of its window). NaN where no time has all three (a run too short for
        its lag).
        """
        have = np.isfinite(self.spread_forecast) & np.isfinite(self.spread_smoother)
        have[:burn_in] = False
        out = {name: float(np.mean(getattr(self, name)[have])) if have.any() else np.nan for name in _STATS}
        later = slice(1, None) if self.simulations.size > 1 else slice(None)
        out.update({name: float(np.mean(getattr(self, name)[later])) for name in _COSTS})
        return out


class _Recorder:
    """Statistics of each estimate into the result and the store, as the windows produce them."""

    def __init__(self, ensemble, result: SmootherResult, store: Store | None):
        self.ens, self.out, self.store = ensemble, result, store
        self.K = result.rmse_forecast.size
        self._forecast: dict[int, np.ndarray] = {}
        self.runner = None
        self._clock = (time.perf_counter(), 0.0)  # wall and forecast seconds at the last analysis written

    def __call__(self, estimate: Estimate, j: int, X: np.ndarray, truth: np.ndarray | None, y) -> None:
        if not 1 <= j <= self.K:  # the initial time has no observation, no slot
            return
        k, name = j - 1, estimate.value
        rmse, spread = rmse_spread(self.ens, X, truth)
        getattr(self.out, f"rmse_{name}")[k], getattr(self.out, f"spread_{name}")[k] = rmse, spread
        if self.store is None:
            return
        if estimate is Estimate.FORECAST:
            self._forecast[k] = X
        elif estimate is Estimate.ANALYSIS:
            self._write_cycle(k, X, truth, y)
        else:
            self.store.write_smoother(k, X, {f"rmse_{name}": rmse, f"spread_{name}": spread})

    def _write_cycle(self, k, Xa, truth, y):
        now, forecast = time.perf_counter(), self.runner.forecast_seconds
        wall0, forecast0 = self._clock
        state = Xa if truth is None else np.column_stack((Xa, truth))
        diag = {name: getattr(self.out, name)[k] for name in
                ("rmse_forecast", "rmse_analysis", "spread_forecast", "spread_analysis")}
        spent = [forecast - forecast0, (now - wall0) - (forecast - forecast0)]  # since the last analysis
        self.store.write_cycle(k, self._forecast.pop(k), Xa, state, y, diag, spent, io_start=now)
        self._clock = (time.perf_counter(), self.runner.forecast_seconds)


def smooth(ensemble, smoother: Smoother, observations, times, *, seed: int, inflation: Inflation | None = None,
           store: Store | None = None, progress: bool = True) -> SmootherResult:
    """Run a fixed-lag smoother over the observation ``times``.

    Parameters
    ----------
    ensemble
        The distributed ensemble (:class:`~fdassim.ensemble.Ensemble`; with ``truth=True``
        for a twin experiment).
    smoother
        :class:`~fdassim.smoothers.EnKS`, :class:`~fdassim.smoothers.SIEnKS`,
        :class:`~fdassim.smoothers.IEnKS` or :class:`~fdassim.smoothers.LinIEnKS`.
    observations
        What is observed at each time.
    times
        ``t_0, t_1, ..., t_K``: the initial time and the ``K`` observation times.
    seed
        The user's seed (the observations and analyses draw as in a filter run).
    inflation
        An :class:`~fdassim.inflation.Inflation`, or ``None``; where it acts depends on the
        method (see its module).
    store
        A store made with ``Store.create(..., smoother=smoother)``, or ``None``.
    progress
        Show a progress bar over the windows (rank 0 only).

    Returns
    -------
    SmootherResult

    Raises
    ------
    ConfigError
        If ``smoother`` is not a smoother, the run is shorter than the lag, or the model
        cannot be re-run from saved fields and the method needs it
        (:mod:`fdassim.smoothers.base`).

    The model's ``start`` hooks are called on every rank before the first forecast and its
    ``close`` hooks when the run ends, also when it ends with an error
    (:mod:`fdassim.models.base`).
    """
    if not isinstance(smoother, Smoother):
        raise ConfigError(f"smooth: expected a smoother (EnKS, SIEnKS, IEnKS, LinIEnKS), got {type(smoother).__name__}")
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 2 or not np.all(np.diff(times) > 0):
        raise InputError(f"times must be increasing, t_0 and at least one observation time; got {times!r}")
    schedule = smoother.schedule
    K = times.size - 1
    out = SmootherResult.empty(smoother.lag, smoother.shift, K, schedule.count(K))
    try:
        _windows(ensemble, smoother, observations, times, seed, inflation, store, progress, out)
    except BaseException:
        ensemble.close(quiet=True)  # on every rank; the error that stopped the run is the one raised
        raise
    ensemble.close()
    return out


def _windows(ensemble, smoother, observations, times, seed, inflation, store, progress, out):
    """The loop of :func:`smooth` (between the model's start and close)."""
    schedule = smoother.schedule
    tic = time.perf_counter()
    ensemble.start()
    ensemble.initialize(seed)
    recorder = _Recorder(ensemble, out, store)
    run = Runner(ensemble, observations, times, seed, inflation or Inflation(), recorder)
    recorder.runner = run
    if smoother.reruns:
        run.check_rerun(type(smoother).__name__)
    carry = smoother.start(run)
    out.timing["init"] = time.perf_counter() - tic
    if store is not None:
        store.write_init_time(out.timing["init"])
    from tqdm import tqdm

    tic = time.perf_counter()
    for c in tqdm(range(out.simulations.size), desc=type(smoother).__name__,
                  disable=not (progress and ensemble.world.rank == 0)):
        run.forget(schedule.start(c) + 1)
        before = run.propagations
        carry, cost = smoother.window(run, c, carry)
        costs = {"simulations": cost.simulations, "propagations": run.propagations - before,
                 "iterations": cost.iterations}
        for name, value in costs.items():
            getattr(out, name)[c] = value
        if store is not None:
            store.write_window(c, costs)
    out.timing["forecast"] = run.forecast_seconds
    out.timing["analysis"] = time.perf_counter() - tic - run.forecast_seconds
