r"""Keeping estimated parameters physical after each analysis.

A parameter field rides in the state and is updated by the analysis like any other field;
these post-analysis treatments act on its rows (each row independently, so the result does
not depend on how rows are split over ranks):

- :class:`Clip`: clip every member into ``[lower, upper]`` (simple; piles members on a bound).
- :class:`BetaBounds`: the Beta-distribution model of Ruckstuhl & Janjić (2018). Where a
  row's ensemble leaves its bounds :math:`[a, b]`, the row is redrawn from the Beta
  distribution on :math:`[a, b]` with the ensemble's mean and variance (method of moments),
  at each member's rank (member :math:`i` of rank :math:`r_i` gets the
  :math:`(r_i + \tfrac12)/N` quantile): the members stay ordered as the analysis ordered them,
  so their correlations with the state are kept, and every member is inside the bounds. The
  bounds are given (from observations of the parameter, or physics), or taken from the
  previous ensemble of the row (its range widened by its spread) when the parameter is not
  observed.
- :class:`UnderRelaxed`: the under-relaxed update of parameters observed once (ICESEE,
  Kyanjo et al. 2026, eqs. 18-19),

  .. math::
      b^{new} = b^{prior} + \alpha(t)\,(b^a - b^{prior}), \qquad
      \alpha(t) = \min\{0.5,\ \max[0,\ (\eta + \beta_t)\,\Delta t + \sqrt{\Delta t}\,\sigma_b\,\rho]\},

  with :math:`\Delta t` the time since the previous analysis, :math:`\eta` a constant rate,
  :math:`\beta_t` a rate that may change with time, :math:`\sigma_b` the amplitude of the
  random-forcing term and :math:`\rho` its scaling (Evensen's 2003 :math:`\rho` of
  time-correlated noise), and the cap 0.5. A parameter
  observed once (the bed on flight lines at year 2) is then pulled only part of the way
  towards each later analysis, which sees it only through its correlations with other fields.

References
----------
Ruckstuhl, Y. and Janjić, T. (2018). Parameter and state estimation with ensemble Kalman
filter based algorithms for convective-scale applications. Q. J. R. Meteorol. Soc. 144,
826-841. https://doi.org/10.1002/qj.3257
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import ConfigError

__all__ = ["Clip", "BetaBounds", "UnderRelaxed", "field_rows", "beta_quantiles"]


def field_rows(ensemble, name: str) -> np.ndarray:
    """``(nb,)`` bool: which of this rank's analysis rows belong to field ``name``."""
    L = ensemble.layout
    s = L.slice(name)
    rs = ensemble.row_slice
    local = np.arange(rs.start, rs.stop)
    return (local >= s.start) & (local < s.stop)


def _check_bounds(lower, upper, what: str):
    if lower is not None and upper is not None and not lower < upper:
        raise ConfigError(f"{what}: lower {lower!r} must be below upper {upper!r}")


@dataclass(frozen=True)
class Clip:
    """Clip field ``field`` into ``[lower, upper]`` (either may be ``None``)."""

    field: str
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        _check_bounds(self.lower, self.upper, f"Clip({self.field!r})")

    def apply(self, Xa: np.ndarray, Xf: np.ndarray, t: float, dt: float) -> np.ndarray:
        return np.clip(Xa, self.lower, self.upper)


def beta_quantiles(X: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Rows of ``X`` redrawn from Beta distributions on ``[a, b]`` with the rows' mean and variance.

    Member ``i`` of rank :math:`r_i` in its row gets the :math:`(r_i + 1/2)/N` quantile. The
    mean is moved inside :math:`(a, b)` and the variance below its largest possible value
    :math:`(\mu - a)(b - \mu)` when needed.
    """
    from scipy.stats import beta as beta_dist

    N = X.shape[1]
    width = b - a
    mu = np.clip(X.mean(axis=1), a + 1e-6 * width, b - 1e-6 * width)
    z = (mu - a) / width                                         # mean on [0, 1]
    s2 = np.minimum(X.var(axis=1, ddof=1) / width ** 2, 0.99 * z * (1 - z))
    s2 = np.maximum(s2, 1e-12 * z * (1 - z))
    common = z * (1 - z) / s2 - 1                                 # alpha + beta (method of moments)
    alpha, beta = z * common, (1 - z) * common
    ranks = np.argsort(np.argsort(X, axis=1, kind="stable"), axis=1, kind="stable")
    u = (ranks + 0.5) / N
    return a[:, None] + width[:, None] * beta_dist.ppf(u, alpha[:, None], beta[:, None])


@dataclass(frozen=True)
class BetaBounds:
    """Keep field ``field`` in bounds with the Beta model (see the module docstring).

    Parameters
    ----------
    field
        The parameter field.
    lower, upper
        Fixed bounds (from observations of the parameter, say); ``None`` (both) takes each
        row's bounds from its previous ensemble (the forecast the analysis started from): its
        range widened by one standard deviation on each side.
    """

    field: str
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        if (self.lower is None) != (self.upper is None):
            raise ConfigError(f"BetaBounds({self.field!r}): give both lower and upper, or neither (bounds from "
                              "the ensembles)")
        _check_bounds(self.lower, self.upper, f"BetaBounds({self.field!r})")

    def apply(self, Xa: np.ndarray, Xf: np.ndarray, t: float, dt: float) -> np.ndarray:
        if self.lower is None:  # the previous ensemble's range, widened by its spread
            sd = Xf.std(axis=1, ddof=1)
            a, b = Xf.min(axis=1) - sd, Xf.max(axis=1) + sd
            flat = b - a <= 0
            a, b = np.where(flat, a - 1e-12, a), np.where(flat, b + 1e-12, b)
        else:
            a = np.full(Xa.shape[0], float(self.lower))
            b = np.full(Xa.shape[0], float(self.upper))
        out = Xa.copy()
        bad = np.any((Xa < a[:, None]) | (Xa > b[:, None]), axis=1)
        if bad.any():
            out[bad] = beta_quantiles(Xa[bad], a[bad], b[bad])
        return out


@dataclass(frozen=True)
class UnderRelaxed:
    r"""The under-relaxed update of field ``field`` (see the module docstring).

    Parameters
    ----------
    field
        The parameter field.
    eta
        :math:`\eta`, a constant rate.
    beta
        :math:`\beta_t`: a number, or a function of the analysis time.
    sigma_b, rho
        :math:`\sigma_b` and :math:`\rho` of the random-forcing term.
    cap
        The largest :math:`\alpha` (0.5).
    """

    field: str
    eta: float = 0.0
    beta: float | Callable[[float], float] = 1.0
    sigma_b: float = 0.0
    rho: float = 1.0
    cap: float = 0.5

    def __post_init__(self):
        if not (callable(self.beta) or isinstance(self.beta, (int, float))) or isinstance(self.beta, bool):
            raise ConfigError(f"UnderRelaxed({self.field!r}): beta must be a number or a function of time, "
                              f"got {self.beta!r}")
        if not 0 < self.cap <= 1:
            raise ConfigError(f"UnderRelaxed({self.field!r}): cap must be in (0, 1], got {self.cap!r}")

    def alpha(self, t: float, dt: float) -> float:
        r""":math:`\alpha(t)`, in ``[0, cap]``."""
        beta_t = self.beta(t) if callable(self.beta) else self.beta
        a = (self.eta + beta_t) * dt + np.sqrt(dt) * self.sigma_b * self.rho
        return float(min(self.cap, max(0.0, a)))

    def apply(self, Xa: np.ndarray, Xf: np.ndarray, t: float, dt: float) -> np.ndarray:
        return Xf + self.alpha(t, dt) * (Xa - Xf)
