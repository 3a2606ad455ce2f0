r"""Covariance localization: the Gaspari-Cohn taper, distances and adaptive length scales.

Conventions
-----------
The taper of Gaspari & Cohn (1999, eq. 4.10) is written for the *normalised* distance
:math:`z = d / c`, where :math:`c` is the **half-width**: the taper is 1 at :math:`z = 0`,
:math:`5/24` at :math:`z = 1` (distance :math:`c`) and exactly 0 from :math:`z = 2`
(distance :math:`2c`, the *support* or *cut-off*). Throughout fdassim the "localization
radius" is this half-width :math:`c` (DART's "cutoff" has the same meaning), so an
observation influences state variables closer than ``2 * radius``. Near the origin
:math:`GC(z) \approx 1 - \tfrac53 z^2`, the curvature of a Gaussian
:math:`\exp(-d^2 / 2L^2)` with :math:`L = c \sqrt{3/10}` (Lorenc 2003).

Glossary
--------
``rho_xo`` ``(nb, m)`` taper between state rows and observations
``rho_oo`` ``(m, m)`` taper between observations
``L``      correlation length of a fitted correlation model

References
----------
Gaspari, G. and Cohn, S. E. (1999). Construction of correlation functions in two and three
dimensions. Q. J. R. Meteorol. Soc. 125, 723-757. https://doi.org/10.1002/qj.49712555417

Lorenc, A. C. (2003). The potential of the ensemble Kalman filter for NWP - a comparison
with 4D-Var. Q. J. R. Meteorol. Soc. 129, 3183-3203. https://doi.org/10.1256/qj.02.132

Anderson, J. L. (2012). Localization and sampling error correction in ensemble Kalman
filter data assimilation. Mon. Wea. Rev. 140, 2359-2371.
https://doi.org/10.1175/MWR-D-11-00013.1

Ménétrier, B., Montmerle, T., Michel, Y. and Berre, L. (2015). Linear filtering of sample
covariances for ensemble-based data assimilation. Part I. Mon. Wea. Rev. 143, 1622-1643.
https://doi.org/10.1175/MWR-D-14-00157.1
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError
from ..geometry import check_periods

__all__ = ["gaspari_cohn", "distances", "paired_distances", "on_domain", "Localization", "CorrelationLength",
           "estimate_length_scale", "AdaptiveLocalization", "default_decorrelation_length"]

# Gaspari & Cohn (1999) eq. 4.10: coefficients of z^0..z^5 on 0 <= z <= 1 and on 1 < z < 2
# (the second branch also has the term -2/(3z)).
_GC_INNER = (1.0, 0.0, -5.0 / 3.0, 5.0 / 8.0, 1.0 / 2.0, -1.0 / 4.0)
_GC_OUTER = (4.0, -5.0, 5.0 / 3.0, 5.0 / 8.0, -1.0 / 2.0, 1.0 / 12.0)
_MODELS = ("gaussian", "exponential")
_RULES = ("noise", "curvature", "threshold")
#: the correlation below which ICESEE cuts off its adaptive localization
ICESEE_THRESHOLD = 0.1


def gaspari_cohn(z) -> np.ndarray:
    r"""The Gaspari-Cohn compactly supported correlation function of normalised distance.

    .. math::
        GC(z) = \begin{cases}
        -\tfrac14 z^5 + \tfrac12 z^4 + \tfrac58 z^3 - \tfrac53 z^2 + 1, & 0 \le z \le 1 \\
        \tfrac1{12} z^5 - \tfrac12 z^4 + \tfrac58 z^3 + \tfrac53 z^2 - 5 z + 4
        - \tfrac{2}{3z}, & 1 < z < 2 \\
        0, & z \ge 2
        \end{cases}

    (Gaspari & Cohn 1999, eq. 4.10, with :math:`z = |d| / c`.)

    Parameters
    ----------
    z
        Normalised distances :math:`|d| / c` (any shape; the sign is ignored; ``inf`` gives 0).

    Returns
    -------
    numpy.ndarray
        Taper values in :math:`[0, 1]`, same shape as ``z``.

    Raises
    ------
    InputError
        If ``z`` has NaN values.
    """
    z = np.abs(np.asarray(z, dtype=float))
    if np.isnan(z).any():
        raise InputError("gaspari_cohn got NaN distances")
    out = np.zeros_like(z)
    inner = z <= 1.0
    outer = (z > 1.0) & (z < 2.0)
    out[inner] = np.polynomial.polynomial.polyval(z[inner], _GC_INNER)
    zo = z[outer]
    out[outer] = np.polynomial.polynomial.polyval(zo, _GC_OUTER) - 2.0 / (3.0 * zo)
    return np.clip(out, 0.0, 1.0)  # round-off near z = 2 can give -1e-16


def _coords(c, name: str) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    c = c.reshape(-1, 1) if c.ndim == 1 else c
    if c.ndim != 2:
        raise InputError(f"{name} must be (points, dims), got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise InputError(f"{name} has NaN or Inf values")
    return c


def distances(a, b, periodic=None) -> np.ndarray:
    r"""Euclidean distances between two sets of points, optionally on a periodic domain.

    On a periodic axis of length :math:`P` the separation is :math:`\min(|\Delta|, P - |\Delta|)`
    after reducing :math:`\Delta` modulo :math:`P` (e.g. the Lorenz-96 ring: coordinates
    ``0..39``, ``periodic=(40,)``). Each entry is computed elementwise from its two points
    only, so the result for a row never depends on the other rows.

    Parameters
    ----------
    a
        ``(n, d)`` coordinates (a vector is taken as ``(n, 1)``).
    b
        ``(m, d)`` coordinates.
    periodic
        ``d`` domain lengths, ``None`` for a non-periodic axis; or ``None`` (nowhere periodic).

    Returns
    -------
    numpy.ndarray
        ``(n, m)`` distances.
    """
    a, b, periodic = _check_pair(a, b, periodic)
    return _separation(a[:, None, :], b[None, :, :], periodic)


def paired_distances(a, b, periodic=None) -> np.ndarray:
    """``(n,)`` distances between ``a[i]`` and ``b[i]``: the entries ``distances(a, b)[i, i]``, bitwise.

    Both functions evaluate the same elementwise formula, so a distance (hence a taper) is
    the same whichever of them computed it.
    """
    a, b, periodic = _check_pair(a, b, periodic)
    if a.shape[0] != b.shape[0]:
        raise InputError(f"paired coordinates need as many points in a ({a.shape[0]}) as in b ({b.shape[0]})")
    return _separation(a, b, periodic)


def _check_pair(a, b, periodic):
    a, b = _coords(a, "coordinates a"), _coords(b, "coordinates b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"coordinates have {a.shape[1]} and {b.shape[1]} dimensions")
    periodic = check_periods(periodic)
    if periodic is not None and len(periodic) != a.shape[1]:
        raise ConfigError(f"periodic has {len(periodic)} lengths but coordinates have {a.shape[1]} dimensions")
    return a, b, periodic


def _separation(a: np.ndarray, b: np.ndarray, periodic) -> np.ndarray:
    """Distances between broadcast points ``a[..., j]`` and ``b[..., j]``, axis by axis in a fixed order."""
    sq = np.zeros(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]))
    for j in range(a.shape[-1]):
        delta = np.abs(a[..., j] - b[..., j])
        if periodic is not None and periodic[j] is not None:
            delta = np.mod(delta, periodic[j])
            delta = np.minimum(delta, periodic[j] - delta)
        sq += delta * delta
    return np.sqrt(sq)


@dataclass(frozen=True)
class Localization:
    r"""Gaspari-Cohn localization with a fixed radius.

    Parameters
    ----------
    radius
        Half-width :math:`c` of the taper, in the units of the coordinates; correlations are cut
        at ``2 * radius``. ``math.inf`` means no localization (the taper is 1 everywhere and no
        coordinates are needed).
    periodic
        Domain length of each coordinate axis (``None`` for a non-periodic axis), or ``None``
        (default): the periods of the model's geometry, which a scheme takes from
        :attr:`AnalysisContext.periodic <fdassim.analysis.base.AnalysisContext.periodic>`
        (:meth:`on_domain`); a model without a geometry is nowhere periodic. Given
        explicitly, it must agree with the model's.
    obs_obs
        Whether to taper the observation-observation terms (``rho_oo``) too; if ``False``,
        ``rho_oo`` is all ones.

    Raises
    ------
    ConfigError
        If ``radius`` is not positive, ``periodic`` has a non-positive length or ``obs_obs`` is
        not a bool.
    """

    radius: float
    periodic: tuple | None = None
    obs_obs: bool = True

    def __post_init__(self):
        r = self.radius
        if isinstance(r, bool) or not isinstance(r, (int, float, np.floating, np.integer)) or not r > 0:
            raise ConfigError(f"localization radius must be a positive number (math.inf for none), got {r!r}")
        object.__setattr__(self, "radius", float(r))
        object.__setattr__(self, "periodic", check_periods(self.periodic))
        if not isinstance(self.obs_obs, bool):
            raise ConfigError(f"obs_obs must be True or False, got {self.obs_obs!r}")

    @property
    def is_infinite(self) -> bool:
        """Whether this localization does nothing (infinite radius)."""
        return math.isinf(self.radius)

    def on_domain(self, periodic) -> "Localization":
        """This localization with the periods of the model's domain (see :func:`on_domain`)."""
        return on_domain(self, periodic)

    def taper(self, a, b) -> np.ndarray:
        """``(n, m)`` taper :math:`GC(d(a_i, b_j) / c)` between two sets of coordinates."""
        if self.is_infinite:
            return np.ones((np.shape(a)[0], np.shape(b)[0]))
        return gaspari_cohn(distances(a, b, self.periodic) / self.radius)

    def rho_xo(self, row_coords, obs_coords) -> np.ndarray:
        """``(nb, m)`` taper between state rows and observations."""
        return self.taper(row_coords, obs_coords)

    def rho_oo(self, obs_coords) -> np.ndarray:
        """``(m, m)`` taper between observations (all ones if ``obs_obs`` is ``False``)."""
        m = np.shape(obs_coords)[0]
        return self.taper(obs_coords, obs_coords) if self.obs_obs else np.ones((m, m))


@dataclass(frozen=True, eq=False)
class CorrelationLength:
    """A correlation length fitted to binned ensemble correlations (see :func:`estimate_length_scale`).

    Attributes
    ----------
    length
        Fitted length :math:`L` (``inf`` if no decay was seen).
    model
        ``"gaussian"`` (:math:`e^{-d^2/2L^2}`) or ``"exponential"`` (:math:`e^{-d/L}`).
    distance, correlation, count
        Per non-empty bin: mean pair distance, mean sample correlation, number of pairs.
    noise
        Sampling standard deviation of a zero correlation, :math:`1/\\sqrt{N-1}`.
    n_fit
        Number of bins used by the fit.
    N
        Ensemble size.
    """

    length: float
    model: str
    distance: np.ndarray
    correlation: np.ndarray
    count: np.ndarray
    noise: float
    n_fit: int
    N: int

    def correlation_at(self, d) -> np.ndarray:
        """The fitted correlation model at distances ``d``."""
        d = np.asarray(d, dtype=float) / self.length
        return np.exp(-0.5 * d * d) if self.model == "gaussian" else np.exp(-d)

    def radius(self, rule: str = "noise", threshold: float = ICESEE_THRESHOLD) -> float:
        r"""Gaspari-Cohn half-width :math:`c` derived from the fitted length.

        ``"curvature"`` (Gaussian model only): :math:`c = \sqrt{10/3}\,L`, so the taper has the
        curvature of the fitted correlation at the origin (Lorenc 2003).

        ``"noise"``: the Schur factor minimising the expected squared error of a tapered sample
        correlation is :math:`\rho = c^2 / (c^2 + \sigma^2)` with the sampling variance
        :math:`\sigma^2 \approx (1 - c^2)^2 / (N - 1)` (Anderson 2012; Ménétrier et al. 2015).
        It equals 1/2 where :math:`c / (1 - c^2) = 1/\sqrt{N-1}`; we place the half-value of
        the taper at the distance :math:`d_*` where the fitted correlation takes that value:
        :math:`GC(d_* / c) = 1/2`. The radius grows with :math:`N`, as it should.

        ``"threshold"``: the rule of ICESEE's adaptive localization, which cuts the
        correlations off where the ensemble's own correlation first falls below 0.1: the
        taper's support :math:`2c` is the first binned distance whose mean correlation is
        below ``threshold`` (the fitted model is not used). It does not grow with :math:`N`.
        """
        if rule not in _RULES:
            raise ConfigError(f"rule must be one of {_RULES}, got {rule!r}")
        if rule == "threshold":
            below = np.flatnonzero(self.correlation < threshold)
            return math.inf if below.size == 0 else float(self.distance[below[0]]) / 2.0
        if math.isinf(self.length):
            return math.inf
        if rule == "curvature":
            if self.model != "gaussian":
                raise ConfigError("rule='curvature' needs model='gaussian' (an exponential has no curvature at 0)")
            return math.sqrt(10.0 / 3.0) * self.length
        s = 1.0 / math.sqrt(self.N - 1)
        c_star = (math.sqrt(1.0 + 4.0 * s * s) - 1.0) / (2.0 * s)  # root of s c^2 + c - s = 0
        x = math.log(1.0 / c_star)
        d_star = self.length * (math.sqrt(2.0 * x) if self.model == "gaussian" else x)
        return d_star / _gc_half_point()


def on_domain(localization, periodic):
    """``localization`` (a :class:`Localization` or :class:`AdaptiveLocalization`) on the model's domain.

    Parameters
    ----------
    localization
        The localization, whose ``periodic`` is ``None`` (take the model's) or explicit.
    periodic
        The periods of the model's geometry (:class:`~fdassim.geometry.Geometry`), one entry per
        axis; ``None`` when the model states no geometry.

    Returns
    -------
    The localization with ``periodic`` set to the model's periods (itself when the model
    states none, or when they are already the same).

    Raises
    ------
    ConfigError
        If the localization's explicit ``periodic`` contradicts the model's: treating a ring as
        a line (or the reverse) silently gives a worse filter.
    """
    model = check_periods(periodic)
    if model is None or localization.periodic == model:
        return localization
    if localization.periodic is None:
        return dataclasses.replace(localization, periodic=model)
    raise ConfigError(f"localization periodic={localization.periodic} contradicts the model's geometry "
                      f"(periodic={model}): leave periodic out to use the model's")


def _gc_half_point() -> float:
    """The normalised distance ``z`` with ``GC(z) = 1/2`` (bisection; GC decreases on [0, 1])."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gaspari_cohn(mid) > 0.5 else (lo, mid)
    return 0.5 * (lo + hi)


def estimate_length_scale(X, coords, *, periodic=None, model: str = "gaussian", nbins: int = 30,
                          max_rows: int = 500, max_distance: float | None = None) -> CorrelationLength:
    r"""Fit the decay with distance of the ensemble sample correlations.

    The sample correlations :math:`\hat c_{ij}` of all pairs of (at most ``max_rows``,
    evenly strided) rows are averaged in ``nbins`` equal distance bins. Averaging many pairs
    removes most sampling noise from the mean, but a bin whose mean is below the noise level
    :math:`1/\sqrt{N-1}` of a single pair carries no usable signal, so the fit uses the
    bins from the shortest distance up to the first one below that level. The model
    :math:`\ln \bar c = -d^2 / 2L^2` (or :math:`-d / L`) is fitted by least squares through
    the origin, each bin weighted by its number of pairs. If even the first bin is below the
    noise level, the length is resolved only to the bin width: the model is then put at the
    noise level at the first bin's distance, an upper bound.

    This is a pure function of the ensemble and the coordinates (no random subsampling). ICESEE
    (Kyanjo et al.) takes, at each point, the distance where the absolute sample correlation
    first falls below 0.1; the binned fit here is the same idea made robust to the sampling
    noise of single pairs.

    Parameters
    ----------
    X
        ``(n, N)`` ensemble (state rows, or predicted observations).
    coords
        ``(n, d)`` coordinates of the rows.
    periodic
        Domain lengths for :func:`distances`.
    model
        ``"gaussian"`` or ``"exponential"`` correlation model.
    nbins
        Number of distance bins.
    max_rows
        Rows used at most (evenly strided), to bound the cost at ``max_rows**2`` pairs.
    max_distance
        Largest distance binned (default: half the largest pair distance).

    Returns
    -------
    CorrelationLength

    Raises
    ------
    ConfigError
        For a bad option. InputError: bad shapes, NaN, fewer than 3 varying rows.
    """
    if model not in _MODELS:
        raise ConfigError(f"model must be one of {_MODELS}, got {model!r}")
    for name, v in (("nbins", nbins), ("max_rows", max_rows)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (1 if name == "nbins" else 3):
            raise ConfigError(f"{name} must be an integer >= {1 if name == 'nbins' else 3}, got {v!r}")
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] < 3 or not np.all(np.isfinite(X)):
        raise InputError(f"X must be a finite (n, N) ensemble with N >= 3, got shape {X.shape}")
    coords = _coords(coords, "coords")
    if coords.shape[0] != X.shape[0]:
        raise InputError(f"coords has {coords.shape[0]} points but X has {X.shape[0]} rows")
    N = X.shape[1]
    keep = np.unique(np.linspace(0, X.shape[0] - 1, min(max_rows, X.shape[0])).round().astype(int))
    A = X[keep] - X[keep].mean(axis=1, keepdims=True)
    norm = np.sqrt(np.sum(A * A, axis=1))
    ok = norm > 0
    if ok.sum() < 3:
        raise InputError(f"need at least 3 rows with ensemble spread to estimate a length, got {int(ok.sum())}")
    Z = A[ok] / norm[ok, None]
    C = Z @ Z.T
    D = distances(coords[keep][ok], coords[keep][ok], periodic)
    iu = np.triu_indices(C.shape[0], k=1)
    c, d = C[iu], D[iu]
    dmax = 0.5 * d.max() if max_distance is None else float(max_distance)
    if not dmax > 0:
        raise InputError("all rows are at the same place; no distance to fit")
    inside = d <= dmax
    edges = np.linspace(0.0, dmax, nbins + 1)
    b = np.clip(np.searchsorted(edges, d[inside], side="left") - 1, 0, nbins - 1)
    count = np.bincount(b, minlength=nbins)
    nz = count > 0
    dist = np.bincount(b, d[inside], minlength=nbins)[nz] / count[nz]
    corr = np.bincount(b, c[inside], minlength=nbins)[nz] / count[nz]
    count = count[nz]
    noise = 1.0 / math.sqrt(N - 1)
    below = np.flatnonzero(corr <= noise)
    n_fit = int(below[0]) if below.size else corr.size
    if n_fit == 0:  # decorrelated within the first bin: fit it at the noise level (an upper bound)
        n_fit, ln_c = 1, np.array([math.log(noise)])
    else:
        ln_c = np.log(np.minimum(corr[:n_fit], 1.0))
    x = dist[:n_fit] ** 2 if model == "gaussian" else dist[:n_fit]
    w = count[:n_fit]
    a = -np.sum(w * x * ln_c) / np.sum(w * x * x)
    if a <= 0:
        length = math.inf
    else:
        length = math.sqrt(1.0 / (2.0 * a)) if model == "gaussian" else 1.0 / a
    return CorrelationLength(float(length), model, dist, corr, count, noise, n_fit, N)


@dataclass(frozen=True)
class AdaptiveLocalization:
    """Gaspari-Cohn localization whose radius is fitted to the ensemble in each analysis.

    A scheme calls :meth:`resolve` in ``prepare`` with the predicted observations ``Y`` and
    the observation coordinates, so the radius is an observation-space quantity, computed
    identically on every rank.

    Parameters
    ----------
    model
        Correlation model fitted by :func:`estimate_length_scale`.
    rule
        How the fitted length becomes a radius (see :meth:`CorrelationLength.radius`).
    nbins, max_rows
        As for :func:`estimate_length_scale`.
    periodic, obs_obs
        As for :class:`Localization`.
    """

    model: str = "gaussian"
    rule: str = "noise"
    nbins: int = 30
    max_rows: int = 500
    periodic: tuple | None = None
    obs_obs: bool = True

    def __post_init__(self):
        if self.model not in _MODELS:
            raise ConfigError(f"model must be one of {_MODELS}, got {self.model!r}")
        if self.rule not in _RULES:
            raise ConfigError(f"rule must be one of {_RULES}, got {self.rule!r}")
        if self.rule == "curvature" and self.model != "gaussian":
            raise ConfigError("rule='curvature' needs model='gaussian'")
        Localization(1.0, self.periodic, self.obs_obs)  # validates periodic and obs_obs
        object.__setattr__(self, "periodic", check_periods(self.periodic))

    def on_domain(self, periodic) -> "AdaptiveLocalization":
        """This localization with the periods of the model's domain (see :func:`on_domain`)."""
        return on_domain(self, periodic)

    def resolve(self, Y, coords) -> Localization:
        """The fixed :class:`Localization` fitted to the ensemble ``Y`` at ``coords``."""
        fit = estimate_length_scale(Y, coords, periodic=self.periodic, model=self.model,
                                    nbins=self.nbins, max_rows=self.max_rows)
        return Localization(fit.radius(self.rule), self.periodic, self.obs_obs)


def default_decorrelation_length(Lx: float, Ly: float, nx: int, ny: int) -> float:
    r"""Default decorrelation length of the design notes: :math:`\sqrt{L_x L_y / (n_x n_y + 1)}`.

    Roughly one grid spacing of an ``nx x ny`` grid on an ``Lx x Ly`` domain.
    """
    for name, v in (("Lx", Lx), ("Ly", Ly), ("nx", nx), ("ny", ny)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{name} must be a positive finite number, got {v!r}")
    return math.sqrt(Lx * Ly / (nx * ny + 1))
