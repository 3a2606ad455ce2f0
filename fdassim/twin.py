r"""The serial reference twin experiment, on plain arrays.

A twin experiment integrates a "truth" with the model, observes it with noise
(:func:`simulate`), and lets an ensemble filter track it from those observations alone
(:func:`run_filter`); the filter's error against the known truth measures the scheme.

:func:`run_filter` is the *serial reference*: one process, the whole state as a single
block of rows (:meth:`Rows.whole <fdassim.analysis.base.Rows.whole>`). The parallel cycle
(:mod:`fdassim.cycle`) deals members and rows over processes and must reproduce it, since
every analysis and inflation result of a row depends on that row alone and random numbers
come from the streams of :mod:`fdassim.streams`. One cycle ``k`` (observation ``k`` at
``times[k + 1]``) is

1. forecast every member from ``times[k]`` to ``times[k + 1]``;
2. predicted observations ``Y = H(X)`` of the forecast;
3. prior inflation of ``X`` and of ``Y``'s anomalies (:meth:`Inflation.prior
   <fdassim.inflation.Inflation.prior>`, :meth:`~fdassim.inflation.Inflation.prior_obs`:
   exact for linear ``H``; for nonlinear ``H`` the usual approximation, which spares the
   parallel cycle a second pass over the members);
4. ``update = scheme.prepare(Y, y, R, AnalysisContext(seed, k, obs_coords))``;
5. ``Xa = update.apply(X, rows)``;
6. posterior inflation, :meth:`Inflation.posterior <fdassim.inflation.Inflation.posterior>`;
7. record the error and spread of the analysis (those of the forecast are recorded after
   step 1, before inflation).

Statistics (the definitions of DAPPER, Raanes et al.): at each cycle the RMSE is
:math:`\sqrt{\tfrac1n \sum_j (\bar x_j - x^t_j)^2}` and the spread is
:math:`\sqrt{\tfrac1n \sum_j \sigma_j^2}` (ensemble variance with divisor ``N - 1``); the
reported figures are their averages over the cycles after a burn-in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .analysis.base import AnalysisContext, ObsError, Rows, Scheme, check_ensemble
from .errors import ConfigError, InputError, MemberFailure
from .analysis.product import Product
from .inflation import Inflation
from .rows_product import apply_update
from .streams import Stream, generator

__all__ = ["simulate", "run_filter", "TwinResult"]

#: An observation operator: a ``(m, n)`` matrix or a function mapping ``(n, N)`` states to ``(m, N)``.
ObsOperator = np.ndarray | Callable[[np.ndarray], np.ndarray]


def _as_callable(H: ObsOperator) -> Callable[[np.ndarray], np.ndarray]:
    if callable(H):
        return H
    H = np.asarray(H, dtype=float)
    if H.ndim != 2:
        raise InputError(f"H must be a (m, n) matrix or a callable, got an array of shape {H.shape}")
    return lambda X: H @ X


def simulate(model, x0: np.ndarray, times: np.ndarray, H: ObsOperator, R: ObsError, seed: int):
    """Truth and noisy observations for a twin experiment.

    Parameters
    ----------
    model
        Has ``integrate(x, t0, t1)`` (e.g. :class:`~fdassim.models.lorenz96.Lorenz96`).
    x0
        ``(n,)`` true state at ``times[0]``.
    times
        Increasing times; the truth is observed at ``times[1:]``.
    H
        Observation operator: ``(m, n)`` matrix or callable on ``(n, N)`` arrays.
    R
        Observation-error covariance.
    seed
        Seed of the observation noise: row ``k`` draws from the
        :attr:`~fdassim.streams.Stream.OBS_NOISE` generator of ``(seed, k)``, the noise the
        parallel cycle's twin experiments add at cycle ``k``.

    Returns
    -------
    truth : numpy.ndarray
        ``(K + 1, n)`` true states at ``times`` (``K = len(times) - 1``).
    observations : numpy.ndarray
        ``(K, m)``; row ``k`` observes ``truth[k + 1]``.
    """
    H = _as_callable(H)
    times = np.asarray(times, dtype=float)
    truth = np.empty((times.size, np.size(x0)))
    truth[0] = x0
    for k in range(1, times.size):
        truth[k] = model.integrate(truth[k - 1], times[k - 1], times[k])
    Hx = H(truth[1:].T)  # (m, K)
    R = R.expand(Hx.shape[0])
    Z = np.stack([generator(seed, Stream.OBS_NOISE, k).standard_normal(Hx.shape[0]) for k in range(Hx.shape[1])], 1)
    return truth, (Hx + R.color(Z)).T


@dataclass(frozen=True)
class TwinResult:
    """Per-cycle statistics of a twin experiment and their averages after the burn-in.

    Attributes
    ----------
    rmse_f, spread_f, rmse_a, spread_a
        ``(K,)`` forecast and analysis RMSE and spread at each cycle.
    burn_in
        Number of first cycles left out of the averages.
    Xa
        ``(n, N)`` final analysis ensemble.
    """

    rmse_f: np.ndarray
    spread_f: np.ndarray
    rmse_a: np.ndarray
    spread_a: np.ndarray
    burn_in: int
    Xa: np.ndarray

    def _avg(self, v):
        return float(np.mean(v[self.burn_in:]))

    @property
    def rmse(self) -> float:
        """Time-averaged analysis RMSE."""
        return self._avg(self.rmse_a)

    @property
    def spread(self) -> float:
        """Time-averaged analysis spread."""
        return self._avg(self.spread_a)

    @property
    def rmse_forecast(self) -> float:
        """Time-averaged forecast RMSE."""
        return self._avg(self.rmse_f)

    @property
    def spread_forecast(self) -> float:
        """Time-averaged forecast spread."""
        return self._avg(self.spread_f)

    def __str__(self):
        return (f"analysis rmse {self.rmse:.4f} spread {self.spread:.4f}, forecast rmse "
                f"{self.rmse_forecast:.4f} spread {self.spread_forecast:.4f} "
                f"({self.rmse_a.size - self.burn_in} cycles after {self.burn_in} burn-in)")


def _stats(X: np.ndarray, xt: np.ndarray) -> tuple[float, float]:
    r"""RMSE of the ensemble mean against ``xt`` and spread :math:`\sqrt{\overline{\sigma^2}}`."""
    n, N = X.shape
    xm = X.sum(axis=1) / N
    A = X - xm[:, None]
    e = xm - xt
    return math.sqrt(e @ e / n), math.sqrt(np.vdot(A, A) / (n * (N - 1)))


def run_filter(model, scheme: Scheme, inflation: Inflation, X0: np.ndarray, observations: np.ndarray,
               H: ObsOperator, R: ObsError, seed: int, *, times: np.ndarray, truth: np.ndarray,
               burn_in: int = 0, coords: np.ndarray | None = None, obs_coords: np.ndarray | None = None,
               progress: bool = False, product: Product = Product.TILED) -> TwinResult:
    """Run an ensemble filter through a twin experiment (the serial reference loop).

    Parameters
    ----------
    model
        Has ``integrate(X, t0, t1)`` for an ``(n, N)`` ensemble.
    scheme
        The analysis scheme.
    inflation
        Prior and posterior inflation (``Inflation()`` for none).
    X0
        ``(n, N)`` initial ensemble at ``times[0]``.
    observations
        ``(K, m)`` observations, row ``k`` at ``times[k + 1]`` (as from :func:`simulate`).
    H, R
        Observation operator and error covariance.
    seed
        Seed of the analysis' random numbers (:class:`~fdassim.analysis.base.AnalysisContext`).
    times
        ``(K + 1,)`` times.
    truth
        ``(K + 1, n)`` true states at ``times`` (row 0 is not used).
    burn_in
        Number of first cycles left out of the averages.
    coords, obs_coords
        Coordinates of the state rows and of the observations, for localization. The rows'
        default to the positions of the model's :class:`~fdassim.geometry.Geometry` (when
        it gives them for every field), and the periods of its domain always reach the
        analysis (:attr:`AnalysisContext.periodic <fdassim.analysis.base.AnalysisContext.periodic>`).
    progress
        Show a tqdm progress bar.
    product
        How a transform is formed on the rows (:func:`fdassim.rows_product.apply_update`).

    Returns
    -------
    TwinResult

    Raises
    ------
    MemberFailure
        If a forecast gives NaN or Inf.
    InputError, ConfigError
        If shapes disagree or ``burn_in`` leaves no cycle to average.
    """
    X = check_ensemble(X0, name="X0")
    observations = np.atleast_2d(np.asarray(observations, dtype=float))
    times, truth = np.asarray(times, dtype=float), np.asarray(truth, dtype=float)
    K = observations.shape[0]
    if times.shape != (K + 1,) or truth.shape != (K + 1, X.shape[0]):
        raise InputError(f"with {K} observation times, times must have shape ({K + 1},) and truth "
                         f"({K + 1}, {X.shape[0]}); got {times.shape} and {truth.shape}")
    if not 0 <= burn_in < K:
        raise ConfigError(f"burn_in must be in [0, {K}) (the number of cycles), got {burn_in!r}")
    H = _as_callable(H)
    R = R.expand(observations.shape[1])
    geometry = getattr(model, "geometry", None)
    periodic = None if geometry is None else geometry.periodic
    names = [f.name for f in getattr(model, "fields", ())]
    if coords is None and geometry is not None and names and all(k in geometry.positions for k in names):
        coords = np.concatenate([geometry.positions[k] for k in names])
    rows = Rows.whole(X.shape[0], coords=coords)
    stats = np.empty((K, 4))
    cycles = range(K)
    if progress:
        from tqdm import tqdm
        cycles = tqdm(cycles, desc=type(scheme).__name__)
    for k in cycles:
        X = model.integrate(X, times[k], times[k + 1])
        if not np.all(np.isfinite(X)):
            raise MemberFailure(int(np.flatnonzero(~np.isfinite(X).all(axis=0))[0]), k, "forecast has NaN or Inf")
        stats[k, :2] = _stats(X, truth[k + 1])
        Xf, Y = inflation.prior(X, rows), inflation.prior_obs(H(X))
        context = AnalysisContext(seed, k, obs_coords, periodic)
        update = scheme.prepare(Y, observations[k], R, context)
        X = inflation.posterior(apply_update(update, Xf, rows, product), Xf, rows, context)
        stats[k, 2:] = _stats(X, truth[k + 1])
    return TwinResult(*stats.T.copy(), burn_in=burn_in, Xa=X)
