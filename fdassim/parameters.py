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
  so their correlations with the state are kept, and every member is inside the bounds.
  The bounds of a row are, in order of precedence:

  1. *from observations*, at an analysis where the parameter itself is observed (the bed on
     flight lines, say): rows within ``radius`` of an observation site :math:`j` get
     :math:`[y_j - w \sigma_j,\ y_j + w \sigma_j]` (``w`` observation-error standard
     deviations, within the given bounds);
  2. *given* (``lower``, ``upper``: physics, a survey's range);
  3. *from the ensembles* otherwise: the range spanned by the current (forecast) ensemble
     and the previous one (the ensemble that forecast started from), widened on each side
     by ``margin`` times the larger of their standard deviations,
     :math:`[\min(X^f, X^{prev}) - m s,\ \max(X^f, X^{prev}) + m s]`: a member that the
     update throws beyond every value the row held is pulled back in.

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

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .errors import ConfigError

__all__ = ["Clip", "BetaBounds", "UnderRelaxed", "Observed", "ParameterContext", "Treatments", "check_treatments",
           "field_rows", "beta_quantiles", "MEAN_INSET"]


def field_rows(ensemble, name: str) -> np.ndarray:
    """``(nb,)`` bool: which of this rank's analysis rows belong to field ``name``."""
    L = ensemble.layout
    s = L.slice(name)
    rs = ensemble.row_slice
    local = np.arange(rs.start, rs.stop)
    return (local >= s.start) & (local < s.stop)


@dataclass(frozen=True)
class Observed:
    """The observations of one quantity kept at an analysis: ``(m, d)`` positions, ``(m,)``
    values and error standard deviations."""

    positions: np.ndarray
    values: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class ParameterContext:
    """What a treatment sees of one analysis, for the rows of its field on this rank.

    Attributes
    ----------
    t, dt
        The analysis time and the time since the previous analysis.
    coords
        ``(nb, d)`` positions of the rows (``None`` when the field has none).
    previous
        ``(nb, N)`` the rows of the ensemble the forecast started from (``None`` when not kept).
    observed
        ``{quantity: Observed}`` of the quantities observed at this analysis.
    """

    t: float
    dt: float
    coords: np.ndarray | None = None
    previous: np.ndarray | None = None
    observed: Mapping[str, Observed] = field(default_factory=dict)


def _check_bounds(lower, upper, what: str):
    if lower is not None and upper is not None and not lower < upper:
        raise ConfigError(f"{what}: lower {lower!r} must be below upper {upper!r}")


@dataclass(frozen=True)
class Clip:
    """Clip field ``field`` into ``[lower, upper]``.

    Parameters
    ----------
    field
        The parameter field.
    lower, upper
        The bounds (either may be ``None``: no bound on that side).
    """

    field: str
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        _check_bounds(self.lower, self.upper, f"Clip({self.field!r})")

    def apply(self, Xa: np.ndarray, Xf: np.ndarray, ctx: ParameterContext) -> np.ndarray:
        return np.clip(Xa, self.lower, self.upper)


#: how far inside its bounds a row's mean is moved when it lies outside them, as a fraction
#: of the bounds' width (:func:`beta_quantiles`)
MEAN_INSET = 0.05


def beta_quantiles(X: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Rows of ``X`` redrawn from Beta distributions on ``[a, b]`` with the rows' mean and variance.

    Member ``i`` of rank :math:`r_i` in its row gets the :math:`(r_i + 1/2)/N` quantile. A
    mean outside (or at the edge of) the bounds is moved :data:`MEAN_INSET` of the width
    inside them, so the redrawn members keep a spread (a mean at a bound would leave a Beta of
    no variance), and the variance is reduced where needed to keep the distribution unimodal
    (:math:`\alpha, \beta \ge 1`), so that members do not pile up at a bound as clipping
    would pile them.
    """
    from scipy.stats import beta as beta_dist

    N = X.shape[1]
    width = b - a
    mu = np.clip(X.mean(axis=1), a + MEAN_INSET * width, b - MEAN_INSET * width)
    z = (mu - a) / width                                         # mean on [0, 1]
    largest = z * (1 - z) / (1 + 1 / np.minimum(z, 1 - z))     # variance with min(alpha, beta) = 1
    s2 = np.clip(X.var(axis=1, ddof=1) / width ** 2, 1e-12 * largest, largest)
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
        Given bounds (both or neither); without them a row's bounds come from the ensembles.
    observed
        The name of a quantity observing this field: at analyses where it is observed, the
        rows near its sites are bounded by the observations.
    width
        ``w``: half-width of the bounds from observations, in observation-error standard
        deviations.
    radius
        Rows within this distance of an observation site take its bounds; ``None``: half the
        median distance between neighbouring sites (0 for a single site: rows at the site).
    margin
        ``m``: widening of the bounds from the ensembles, in ensemble standard deviations.
    """

    field: str
    lower: float | None = None
    upper: float | None = None
    observed: str | None = None
    width: float = 3.0
    radius: float | None = None
    margin: float = 1.0

    def __post_init__(self):
        what = f"BetaBounds({self.field!r})"
        if (self.lower is None) != (self.upper is None):
            raise ConfigError(f"{what}: give both lower and upper, or neither (bounds from the ensembles)")
        _check_bounds(self.lower, self.upper, what)
        for name in ("width", "margin"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"{what}: {name} must be a positive number of standard deviations, "
                                  f"got {getattr(self, name)!r}")
        if self.radius is not None and not (np.isfinite(self.radius) and self.radius >= 0):
            raise ConfigError(f"{what}: radius must be a distance >= 0, got {self.radius!r}")

    @property
    def needs_previous(self) -> bool:
        """Whether the bounds come from the ensembles (so the previous ensemble is kept)."""
        return self.lower is None

    def bounds(self, Xf: np.ndarray, ctx: ParameterContext) -> tuple[np.ndarray, np.ndarray]:
        """``(nb,)`` lower and upper bounds of the rows (see the module docstring)."""
        nb = Xf.shape[0]
        if self.lower is not None:
            a, b = np.full(nb, float(self.lower)), np.full(nb, float(self.upper))
        else:
            prev = Xf if ctx.previous is None else ctx.previous
            s = np.maximum(Xf.std(axis=1, ddof=1), prev.std(axis=1, ddof=1))
            a = np.minimum(Xf.min(axis=1), prev.min(axis=1)) - self.margin * s
            b = np.maximum(Xf.max(axis=1), prev.max(axis=1)) + self.margin * s
        obs = ctx.observed.get(self.observed) if self.observed is not None else None
        if obs is not None and obs.values.size:
            near, j = _nearest_sites(ctx.coords, obs.positions, self.radius, self.field)
            lo = obs.values[j] - self.width * obs.std[j]
            hi = obs.values[j] + self.width * obs.std[j]
            if self.lower is not None:  # within the given bounds
                lo, hi = np.maximum(lo, self.lower), np.minimum(hi, self.upper)
            ok = lo < hi  # observations entirely outside the given bounds: keep those
            idx = np.flatnonzero(near)[ok]
            a[idx], b[idx] = lo[ok], hi[ok]
        return a, b

    def apply(self, Xa: np.ndarray, Xf: np.ndarray, ctx: ParameterContext) -> np.ndarray:
        a, b = self.bounds(Xf, ctx)
        out = Xa.copy()
        bad = np.any((Xa < a[:, None]) | (Xa > b[:, None]), axis=1)
        # bounds of no width (ensembles collapsed on one value): no distribution fits; clip
        flat = bad & (b - a <= 1e-9 * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b))))
        out[flat] = np.clip(Xa[flat], a[flat, None], b[flat, None])
        beta = bad & ~flat
        if beta.any():
            out[beta] = beta_quantiles(Xa[beta], a[beta], b[beta])
        return out


def _nearest_sites(coords, sites: np.ndarray, radius: float | None, name: str):
    """Which rows lie within ``radius`` of an observation site, and the nearest site of each.

    Returns ``near`` (``(nb,)`` bool) and ``j`` (the site of each near row). Each row's answer
    depends on its position alone (a k-d tree over the sites), not on how rows are split.
    """
    from scipy.spatial import cKDTree

    if coords is None:
        raise ConfigError(f"BetaBounds({name!r}): bounds from observations need the positions of the "
                          "field's values (a Firedrake field, or an array model's coordinates)")
    tree = cKDTree(sites)
    if radius is None:
        if sites.shape[0] < 2:
            radius = 0.0
        else:
            d, _ = tree.query(sites, k=2)
            radius = 0.5 * float(np.median(d[:, 1]))
    d, j = tree.query(coords, distance_upper_bound=radius * (1 + 1e-12) + 1e-300)
    near = np.isfinite(d)
    return near, j[near]


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

    def apply(self, Xa: np.ndarray, Xf: np.ndarray, ctx: ParameterContext) -> np.ndarray:
        return Xf + self.alpha(ctx.t, ctx.dt) * (Xa - Xf)


def check_treatments(treatments, fields, quantities) -> None:
    """Raise :class:`~fdassim.errors.ConfigError`, naming ``parameters[i]``, if a treatment is
    not one, names a field not in ``fields`` or an observed quantity not in ``quantities``."""
    for i, p in enumerate(treatments):
        if not hasattr(p, "apply") or not hasattr(p, "field"):
            raise ConfigError(f"parameters[{i}]: expected Clip, BetaBounds or UnderRelaxed, got {p!r}")
        if p.field not in fields:
            raise ConfigError(f"parameters[{i}].field: {p.field!r} is not a field of the model; choose one of "
                              f"{list(fields)}")
        observed = getattr(p, "observed", None)
        if observed is not None and observed not in quantities:
            raise ConfigError(f"parameters[{i}].observed: {observed!r} is not an observed quantity; choose one "
                              f"of {list(quantities)}")


class Treatments:
    """The parameter treatments of a run on this rank's rows (used by the cycle).

    Parameters
    ----------
    treatments
        :class:`Clip`, :class:`BetaBounds`, :class:`UnderRelaxed` objects, applied in order.
    ensemble
        The :class:`~fdassim.ensemble.Ensemble` (its layout and this rank's rows).
    quantities
        The names of the observed quantities (a :class:`BetaBounds`' ``observed`` must be one).

    Raises
    ------
    ConfigError
        If a treatment names a field the model lacks, or a quantity that is not observed.
    """

    def __init__(self, treatments, ensemble, quantities):
        check_treatments(treatments, [f.name for f in ensemble.model.fields], quantities)
        self.items = [(p, field_rows(ensemble, p.field)) for p in treatments]
        self.coords = ensemble.rows.coords
        self.keeps_previous = any(getattr(p, "needs_previous", False) for p, _ in self.items)
        self._previous: np.ndarray | None = None

    def __bool__(self):
        return bool(self.items)

    def remember(self, rows: np.ndarray) -> None:
        """Keep ``(nb, N)`` rows of the ensemble the next forecast starts from (when needed)."""
        if self.keeps_previous:
            self._previous = np.array(rows, copy=True)

    def apply(self, Xa: np.ndarray, Xf: np.ndarray, t: float, dt: float, observed: Mapping[str, Observed]) -> None:
        """Apply every treatment, in order, to the analysis rows ``Xa`` (in place)."""
        for p, mask in self.items:
            ctx = ParameterContext(t, dt, None if self.coords is None else self.coords[mask],
                                   None if self._previous is None else self._previous[mask], observed)
            Xa[mask] = p.apply(Xa[mask], Xf[mask], ctx)
