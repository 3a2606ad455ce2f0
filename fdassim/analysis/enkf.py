r"""The stochastic (perturbed-observation) EnKF, as one ensemble-space transform.

Every member is updated with perturbed observations :math:`D = y 1^T + E` and the analysis is
one ``N x N`` transform :math:`X5` with :math:`X^a = X^f X5` (Evensen 2003). Two forms differ in
the innovation covariance the gain inverts (:class:`InnovationCovariance`):

``EXACT`` (the default) uses the prescribed :math:`R`, as the perturbed-observation EnKF of
Burgers, van Leeuwen & Evensen (1998) and Houtekamer & Mitchell (1998). With the whitened
:math:`\tilde S = R^{-1/2} S` and :math:`\tilde D = R^{-1/2} (D - Y)`, by the push-through
identity :math:`\tilde S^T (\tilde S \tilde S^T + N_1 I_m)^{-1} = (\tilde S^T \tilde S + N_1
I_N)^{-1} \tilde S^T`:

.. math::
    X5 = I_N + S^T (S S^T + N_1 R)^{-1} (D - Y)
       = I_N + (\tilde S^T \tilde S + N_1 I_N)^{-1} \tilde S^T \tilde D,

a symmetric positive-definite solve of size ``min(m, N)``, for diagonal or full :math:`R`.

``ENSEMBLE`` is the matrix-free form of Evensen (2003), which represents :math:`R` by the
perturbations themselves:

.. math::
    C = S + E, \qquad X5 = I_N + S^T (C C^T)^{+} (D - Y),

with :math:`(C C^T)^{+}` the pseudo-inverse from a truncated SVD of the ``m x N`` matrix
:math:`C` (Evensen 2004). :math:`C C^T = S S^T + E E^T + S E^T + E S^T`: the cross terms
vanish only in expectation, and at moderate ``N`` they bias the analysis spread upward (see
:class:`InnovationCovariance` for the measured bias).

Notation as in :mod:`fdassim.analysis.base`. The observation perturbations ``E`` are drawn by
one of two strategies (:class:`Innovations`, after Kyanjo, Mayo & Robel, the ICESEE paper,
Sect. 2.3): independent draws from :math:`N(0, R)`, optionally projected onto the ensemble
subspace (Evensen 2004), or spatially correlated pseudo-random fields at the observation
locations. The draws come from :meth:`AnalysisContext.perturbation_normals
<fdassim.analysis.base.AnalysisContext.perturbation_normals>` (centred over members, shared
with the localized EnKF and the perturbed-obs regression filter): column ``i`` belongs to
member ``i`` and does not depend on how the members are dealt over processes.

References
----------
Burgers, G., van Leeuwen, P. J. and Evensen, G. (1998). Analysis scheme in the ensemble
Kalman filter. Mon. Wea. Rev. 126, 1719-1724.
https://doi.org/10.1175/1520-0493(1998)126<1719:ASITEK>2.0.CO;2

Houtekamer, P. L. and Mitchell, H. L. (1998). Data assimilation using an ensemble Kalman
filter technique. Mon. Wea. Rev. 126, 796-811.
https://doi.org/10.1175/1520-0493(1998)126<0796:DAUAEK>2.0.CO;2

Evensen, G. (2003). The Ensemble Kalman Filter: theoretical formulation and practical
implementation. Ocean Dynamics 53, 343-367. https://doi.org/10.1007/s10236-003-0036-9

Evensen, G. (2004). Sampling strategies and square root analysis schemes for the EnKF.
Ocean Dynamics 54, 539-560. https://doi.org/10.1007/s10236-004-0099-2

Sakov, P. and Oke, P. R. (2008). A deterministic formulation of the ensemble Kalman filter:
an alternative to ensemble square root filters. Tellus A 60, 361-371.
https://doi.org/10.1111/j.1600-0870.2007.00299.x

Kyanjo, B., Mayo, T. L. and Robel, A. A. (2026). The Ice Sheet State and Parameter Estimator
(ICESEE) Library (v1.0.0): Ensemble Kalman Filtering for Ice Sheet Models.
https://doi.org/10.48550/arXiv.2603.26947
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, svd

from ..errors import ConfigError, ObservationError
from ..options import option
from .base import AnalysisContext, ObsError, Scheme, TransformUpdate, check_observations, without_spread

__all__ = [
    "Innovations",
    "InnovationCovariance",
    "EnKF",
    "random_perturbations",
    "gaussian_correlation",
    "correlated_perturbations",
    "correlated_obs_error",
    "project_onto_ensemble",
    "truncated_svd",
    "enkf_transform",
    "enkf_exact_transform",
]


#: Truncation of the ``ENSEMBLE`` form's pseudo-inverse when ``EnKF.truncation`` is ``None``.
_DEFAULT_TRUNCATION = 0.999

#: Largest condition number of the EXACT form's system solved by Cholesky (beyond: by SVD).
_MAX_CONDITION = 1e8

#: Nuggets tried, in turn, to make a Gaussian correlation matrix numerically positive definite.
_NUGGETS = (0.0, 1e-12, 1e-10, 1e-8, 1e-6)


class Innovations(enum.Enum):
    r"""How the observation perturbations ``E`` of the stochastic EnKF are drawn.

    RANDOM
        Column ``i`` is :math:`R^{1/2} z_i`, :math:`z_i \sim N(0, I_m)`: uncorrelated in
        whitened space, exactly the prescribed :math:`R` in expectation (full :math:`R`
        included). With ``project=True`` (``ENSEMBLE`` form only) the draws are projected
        onto the subspace spanned by the observation anomalies ``S`` (Evensen 2004).
    CORRELATED
        Column ``i`` is a pseudo-random field at the observation locations
        (``context.obs_coords``) with the Gaussian correlation
        :math:`\rho(d) = \exp(-d^2 / L^2)` of length ``L = EnKF.correlation_length``,
        scaled by the observation-error standard deviations :math:`\sigma = \sqrt{\mathrm{diag} R}`.
        The analysis then uses the *effective* error covariance
        :math:`R_c = \mathrm{diag}(\sigma)\, \rho\, \mathrm{diag}(\sigma)` (nugget
        included, see :func:`correlated_obs_error`): the ``ENSEMBLE`` form sees :math:`R`
        only through ``E``, and the ``EXACT`` form whitens with :math:`R_c`; either way the
        off-diagonal entries of a full ``R`` are replaced by the correlation model.
    """

    RANDOM = "random"
    CORRELATED = "correlated"


class InnovationCovariance(enum.Enum):
    r"""The innovation covariance the stochastic EnKF inverts in its gain.

    EXACT
        :math:`S S^T + N_1 R` with the prescribed :math:`R` (Burgers et al. 1998; Houtekamer
        & Mitchell 1998), solved exactly in ensemble space (:func:`enkf_exact_transform`).
        The perturbations ``E`` enter only the innovations :math:`D - Y`. For linear ``H``
        and an ensemble whose sample covariance is the prior :math:`B`, the expected
        analysis sample covariance is the Kalman :math:`(I - K H) B` at any ``N``.
    ENSEMBLE
        :math:`C C^T`, :math:`C = S + E`, with the truncated pseudo-inverse (Evensen 2003,
        2004; :func:`enkf_transform`): :math:`R` is represented by ``E E^T / N_1`` and the
        cross terms :math:`S E^T + E S^T` are kept. They vanish only as ``N`` grows
        relative to the rank of the observation space, and bias the analysis spread
        upward meanwhile. Analysis spread measured for ``n = m = 40``, ``H = I``, prior std 2,
        ``R = I`` (Kalman: 0.894), mean of 4 seeds, priors of exact sample covariance (of
        random samples in brackets; the exact form's low bias there is the usual one of a
        sampled gain):

        ======  ===============  ===============
        N       EXACT            ENSEMBLE
        ======  ===============  ===============
        40      (0.789)          (6.3)
        80      0.895 (0.848)    1.77 (2.09)
        120     0.896 (0.867)    1.44 (1.49)
        1000    0.894 (0.890)    0.935 (0.931)
        5000    0.894 (0.893)    0.901 (0.901)
        ======  ===============  ===============

        It is appropriate when ``N`` is large relative to the rank of the observation space
        (here ``N >= 1000`` for a bias under 5 %), or with projection and truncation
        (``project=True``, ``truncation`` 0.99-0.999) as Evensen (2004) proposes for
        ``N`` below that rank. These help only partly here: with both (``truncation=0.99``),
        random priors give 2.11 at ``N = 40``, 1.67 at 80 and 1.36 at 120 (projection
        changes nothing once ``m < N``). On the Lorenz-96 twin of Sakov & Oke (2008) (``n = m = 40``,
        ``H = I``, ``R = I``) it diverged to NaN within 10 cycles at ``N = 40`` (inflation
        1.06; within 400 with ``truncation=0.99``) and within 120 at ``N = 100, 120``; with
        inflation 1.04 it tracked the truth at ``N = 150`` and 200 (RMSE 0.228 and 0.218 over
        3000 cycles), where ``EXACT`` reaches 0.216 at ``N = 40``.
    """

    EXACT = "exact"
    ENSEMBLE = "ensemble"


def project_onto_ensemble(E: np.ndarray, S: np.ndarray, R: ObsError) -> np.ndarray:
    r"""Project perturbations onto the subspace spanned by the observation anomalies.

    .. math::
        E \leftarrow R^{1/2}\, U_S U_S^T\, R^{-1/2} E, \qquad R^{-1/2} S = U_S \Sigma_S V_S^T,

    with :math:`U_S` the left singular vectors of non-negligible singular value (Evensen
    2004). The projection is orthogonal in the :math:`R^{-1}` metric (whitened
    space); for :math:`R \propto I` it is Evensen's. It changes nothing when ``S`` has rank
    ``m`` (``m <= N - 1``).
    """
    U, s, _ = svd(R.whiten(S), full_matrices=False)
    keep = s > s[0] * max(S.shape) * np.finfo(float).eps if s.size and s[0] > 0 else np.zeros(s.size, bool)
    U = U[:, keep]
    Ew = R.whiten(E)
    return R.color(U @ (U.T @ Ew))


def random_perturbations(R: ObsError, N: int, context: AnalysisContext) -> np.ndarray:
    r"""Centred perturbations :math:`E`, column ``i`` :math:`R^{1/2} z_i` with :math:`z_i` from member ``i``'s generator.

    Returns
    -------
    numpy.ndarray
        ``(m, N)`` perturbations with zero mean over members.
    """
    return R.color(context.perturbation_normals(R.m, N))


def gaussian_correlation(coords: np.ndarray, length: float) -> np.ndarray:
    r"""The ``(m, m)`` Gaussian correlation :math:`\rho_{jk} = \exp(-|c_j - c_k|^2 / L^2)` of points ``coords`` (``(m, d)``)."""
    c = np.asarray(coords, dtype=float).reshape(len(coords), -1)
    d2 = np.sum((c[:, None, :] - c[None, :, :]) ** 2, axis=-1)
    return np.exp(-d2 / length**2)


def correlated_obs_error(coords: np.ndarray, std: np.ndarray, length: float) -> ObsError:
    r"""The effective error covariance :math:`R_c = \mathrm{diag}(\sigma)\, (\rho + \nu I)\, \mathrm{diag}(\sigma)`.

    :math:`\rho` is :func:`gaussian_correlation` and :math:`\nu` the smallest nugget of
    ``(0, 1e-12, 1e-10, 1e-8, 1e-6)`` for which its Cholesky factor exists: a Gaussian
    correlation of close points is numerically singular, and the nugget (at most 1e-6 of the
    variance) keeps the factor unique, hence identical on every rank. The factor both draws
    the perturbations (:func:`correlated_perturbations`) and whitens the ``EXACT`` form.

    Parameters
    ----------
    coords
        ``(m, d)`` observation coordinates.
    std
        ``(m,)`` observation-error standard deviations :math:`\sigma`.
    length
        Correlation length ``L``, in the units of ``coords``.

    Raises
    ------
    ObservationError
        If no nugget makes :math:`R_c` positive definite.
    """
    Rc = std[:, None] * gaussian_correlation(coords, length) * std[None, :]
    Rc = 0.5 * (Rc + Rc.T)  # exactly symmetric: ObsError checks symmetry with no absolute tolerance
    for nugget in _NUGGETS:
        try:
            return ObsError.full(Rc + np.diag(nugget * std**2))
        except ObservationError:
            continue
    raise ObservationError(
        f"the Gaussian correlation of the observation locations is not positive definite even "
        f"with a nugget of {_NUGGETS[-1]}: check obs_coords or reduce correlation_length={length!r}"
    )


def correlated_perturbations(coords: np.ndarray, std: np.ndarray, length: float, N: int,
                             context: AnalysisContext) -> np.ndarray:
    r"""Centred, spatially correlated perturbations at the observation locations.

    .. math::
        E_{:, i} = F z_i, \qquad F F^T = R_c = \mathrm{diag}(\sigma)\, \rho\, \mathrm{diag}(\sigma),

    with :math:`F` the Cholesky factor of :func:`correlated_obs_error` (nugget included)
    and :math:`z_i` drawn from member ``i``'s generator, so that
    :math:`\mathrm{E}[E E^T]/(N-1) = R_c`.

    Parameters
    ----------
    coords, std, length
        As for :func:`correlated_obs_error`.
    N
        Ensemble size.
    context
        Supplies the member generators.
    """
    Rc = correlated_obs_error(coords, std, length)
    return Rc.color(context.perturbation_normals(std.size, N))


def truncated_svd(C: np.ndarray, truncation: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Leading left singular vectors and values of ``C`` holding a fraction ``truncation`` of its variance.

    Keeps the fewest ``r`` singular values with :math:`\sum_{j<r} \sigma_j^2 \ge
    \mathrm{truncation} \sum_j \sigma_j^2` (Evensen 2004), and never a value below
    the numerical rank threshold :math:`\sigma_0 \max(m, N)\, \epsilon`.

    Returns
    -------
    U, s
        ``(m, r)`` and ``(r,)``, so that :math:`(C C^T)^+ \approx U\, \mathrm{diag}(s^{-2})\, U^T`.
    """
    U, s, _ = svd(C, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return U[:, :0], s[:0]
    rank = int(np.count_nonzero(s > s[0] * max(C.shape) * np.finfo(float).eps))
    frac = np.cumsum(s**2) / np.sum(s**2)
    r = min(int(np.count_nonzero(frac < truncation)) + 1, rank)
    return U[:, :r], s[:r]


def enkf_transform(Y: np.ndarray, y: np.ndarray, E: np.ndarray, R: ObsError | None = None,
                   truncation: float = 0.999) -> np.ndarray:
    r"""The ``ENSEMBLE``-form transform :math:`X5` for given perturbations ``E`` (Evensen 2003).

    .. math::
        S = Y - \bar{Y} 1^T, \quad D' = y 1^T + E - Y, \quad C = S + E, \quad
        X5 = I_N + S^T (C C^T)^{+} D'.

    In state space, :math:`x^a_i = x_i + K_e (y + e_i - H(x_i))` with the ensemble gain
    :math:`K_e = A S^T (C C^T)^{+}`. ``E`` is used as given (it is not centred here).

    Parameters
    ----------
    Y
        ``(m, N)`` predicted observations.
    y
        ``(m,)`` observations.
    E
        ``(m, N)`` observation perturbations.
    R
        When given, ``S``, ``E`` and ``D'`` are whitened by :math:`R^{-1/2}` before the SVD,
        so that the result does not depend on the units of each observation (rescaling
        observation ``k`` rescales row ``k`` of ``R^{1/2}`` too) and the truncation compares
        dimensionless quantities. Whitening changes the result unless
        :math:`C C^T` is invertible (``m < N`` and ``C`` of full rank) and nothing is
        truncated: a pseudo-inverse is invariant under orthogonal changes of variables only,
        so with ``m >= N`` (rank-deficient :math:`C C^T`) and any :math:`R` not a multiple of
        the identity the whitened and unwhitened transforms differ.
    truncation
        Fraction of the variance of ``C`` kept in the pseudo-inverse, in ``(0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` transform, :math:`X^a = X^f X5`.
    """
    Y = np.asarray(Y, dtype=float)
    E = np.asarray(E, dtype=float)
    if E.shape != Y.shape:
        raise ObservationError(f"perturbations E have shape {E.shape} but Y has shape {Y.shape}")
    N = Y.shape[1]
    S = Y - Y.mean(axis=1, keepdims=True)  # H A'
    Dp = np.asarray(y, dtype=float)[:, None] + E - Y  # D' = D - HA
    C = S + E
    if R is not None:
        S, Dp, C = R.whiten(S), R.whiten(Dp), R.whiten(C)
    U, s = truncated_svd(C, truncation)
    return np.eye(N) + S.T @ (U @ ((U.T @ Dp) / s[:, None] ** 2))  # X5 = I + S^T (CC^T)^+ D'


def enkf_exact_transform(Y: np.ndarray, y: np.ndarray, E: np.ndarray, R: ObsError) -> np.ndarray:
    r"""The ``EXACT``-form transform :math:`X5` for given perturbations ``E`` and the prescribed ``R``.

    .. math::
        X5 = I_N + S^T (S S^T + N_1 R)^{-1} D'
           = I_N + (\tilde S^T \tilde S + N_1 I_N)^{-1} \tilde S^T \tilde D',
        \qquad \tilde S = R^{-1/2} S, \quad \tilde D' = R^{-1/2} D',

    with :math:`D' = y 1^T + E - Y`: in state space, :math:`x^a_i = x_i + K (y + e_i -
    H(x_i))` with the gain :math:`K = A S^T (S S^T + N_1 R)^{-1}` of the sample covariance
    (Burgers et al. 1998; Houtekamer & Mitchell 1998). The system, symmetric positive
    definite with eigenvalues in :math:`[N_1, N_1 + \|\tilde S\|_F^2]`, is solved by Cholesky
    in ensemble space (``N x N``) when ``N <= m`` and in whitened observation space
    (``m x m``, the first form) otherwise, as long as its condition number is at most
    :math:`1 + \|\tilde S\|_F^2 / N_1 \le 10^8`. Beyond (observation errors tiny against
    the spread, or a nearly singular :math:`R` such as a Gaussian correlation model, see
    :func:`correlated_obs_error`) it uses the thin SVD :math:`\tilde S = U \Sigma V^T`,
    which never forms :math:`\tilde S^T \tilde S`:

    .. math::
        X5 = I_N + V\, \mathrm{diag}\!\left(\frac{\sigma_j}{\sigma_j^2 + N_1}\right) U^T \tilde D'.

    ``E`` is used as given (it is not centred here).

    Parameters
    ----------
    Y
        ``(m, N)`` predicted observations.
    y
        ``(m,)`` observations.
    E
        ``(m, N)`` observation perturbations.
    R
        The observation-error covariance the perturbations sample.

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` transform, :math:`X^a = X^f X5`.

    Raises
    ------
    ObservationError
        If ``E`` and ``Y`` differ in shape or ``R`` is for another number of observations.
    """
    Y = np.asarray(Y, dtype=float)
    E = np.asarray(E, dtype=float)
    if E.shape != Y.shape:
        raise ObservationError(f"perturbations E have shape {E.shape} but Y has shape {Y.shape}")
    m, N = Y.shape
    R = R.expand(m)
    St = R.whiten(Y - Y.mean(axis=1, keepdims=True))  # S~ = R^{-1/2} S
    Dt = R.whiten(np.asarray(y, dtype=float)[:, None] + E - Y)  # D~' = R^{-1/2} (D - Y)
    small_N = N <= m
    G = St.T @ St if small_N else St @ St.T  # trace(G) = |S~|_F^2 either way
    if np.trace(G) <= _MAX_CONDITION * (N - 1):
        G[np.diag_indices_from(G)] += N - 1
        factor = cho_factor(G)
        if small_N:  # (S~^T S~ + N1 I_N)^{-1} S~^T D~'
            M = cho_solve(factor, St.T @ Dt)
        else:  # S~^T (S~ S~^T + N1 I_m)^{-1} D~'
            M = St.T @ cho_solve(factor, Dt)
    else:  # (S~^T S~ + N1 I)^{-1} S~^T = V diag(sig / (sig^2 + N1)) U^T
        U, sig, Vt = svd(St, full_matrices=False)
        M = Vt.T @ ((sig / (sig**2 + (N - 1)))[:, None] * (U.T @ Dt))
    # 1^T M = 0 since S~ 1 = 0; remove the round-off along 1, which would shift the mean
    # when the SVD mixes 1 with other near-null directions of S~
    return np.eye(N) + (M - M.mean(axis=0, keepdims=True))


@dataclass(frozen=True)
class EnKF(Scheme):
    r"""The stochastic (perturbed-observation) EnKF, as a transform.

    Parameters
    ----------
    innovations
        How the perturbations ``E`` are drawn, see :class:`Innovations`.
    covariance
        The innovation covariance of the gain, see :class:`InnovationCovariance`: ``EXACT``
        (default), :math:`S S^T + N_1 R` with the prescribed ``R`` (Burgers et al. 1998), or
        ``ENSEMBLE``, :math:`(S + E)(S + E)^T` (Evensen 2003), biased at moderate ``N``.
    project
        Project the perturbations onto the subspace spanned by ``S`` (Evensen 2004), see
        :func:`project_onto_ensemble`; applies to either strategy. Only with
        ``covariance=ENSEMBLE``: the ``EXACT`` gain :math:`S^T (\cdot)^{-1}` already
        ignores the part of ``E`` outside that subspace (in the :math:`R^{-1}` metric).
    correlation_length
        Length ``L`` of the Gaussian correlation, in the units of ``context.obs_coords``;
        required with ``Innovations.CORRELATED``, not allowed with ``RANDOM``.
    truncation
        Fraction of the variance of :math:`C = S + E` kept in :math:`(C C^T)^+`, in
        ``(0, 1]``; only with ``covariance=ENSEMBLE`` (the ``EXACT`` system is positive
        definite and solved exactly). ``None`` (default) means 0.999 there, which drops
        only numerically negligible directions (Evensen 2004 uses 0.99-0.999); ``1.0``
        keeps every direction above round-off.

    Raises
    ------
    ConfigError
        For an option of the wrong type or out of range, or ``project``/``truncation``
        with ``covariance=EXACT``.

    Examples
    --------
    >>> scheme = EnKF(innovations=Innovations.CORRELATED, correlation_length=5e3)
    >>> evensen = EnKF(covariance=InnovationCovariance.ENSEMBLE, project=True, truncation=0.99)
    """

    innovations: Innovations = Innovations.RANDOM
    covariance: InnovationCovariance = InnovationCovariance.EXACT
    project: bool = False
    correlation_length: float | None = option(None, gt=0)
    truncation: float | None = option(None, gt=0, le=1)

    def __post_init__(self):
        super().__post_init__()
        if self.covariance is InnovationCovariance.EXACT:
            if self.truncation is not None:
                raise ConfigError(
                    f"truncation={self.truncation!r} is only used with covariance=InnovationCovariance.ENSEMBLE "
                    f"(the pseudo-inverse of (S+E)(S+E)^T); covariance=InnovationCovariance.EXACT solves "
                    f"S S^T + (N-1) R exactly"
                )
            if self.project:
                raise ConfigError(
                    "project=True is only used with covariance=InnovationCovariance.ENSEMBLE: with "
                    "covariance=InnovationCovariance.EXACT the gain ignores the part of E outside the "
                    "ensemble subspace, so the projection would change nothing"
                )
        if self.innovations is Innovations.CORRELATED:
            if self.correlation_length is None:
                raise ConfigError("correlation_length is required with innovations=Innovations.CORRELATED")
        elif self.correlation_length is not None:
            raise ConfigError(
                f"correlation_length={self.correlation_length!r} is only used with "
                f"innovations=Innovations.CORRELATED, not {self.innovations}"
            )

    def perturbations(self, Y: np.ndarray, R: ObsError, context: AnalysisContext) -> np.ndarray:
        """The centred ``(m, N)`` perturbations ``E`` this scheme uses for ``Y``."""
        return self._draw(Y, R, context)[0]

    def _draw(self, Y: np.ndarray, R: ObsError, context: AnalysisContext) -> tuple[np.ndarray, ObsError]:
        """``E`` and the covariance the gain uses (:math:`R_c` for ``CORRELATED`` with ``EXACT``, else ``R``)."""
        m, N = Y.shape
        if self.innovations is Innovations.RANDOM:
            E, sampled = random_perturbations(R, N, context), R
        else:
            if context.obs_coords is None:
                raise ObservationError(
                    "innovations=Innovations.CORRELATED needs the observation locations: pass "
                    "AnalysisContext(obs_coords=...) with one row per observation"
                )
            coords = np.asarray(context.obs_coords, dtype=float).reshape(len(context.obs_coords), -1)
            if coords.shape[0] != m or not np.all(np.isfinite(coords)):
                raise ObservationError(
                    f"context.obs_coords must be finite with one row per observation ({m}), "
                    f"got shape {coords.shape}"
                )
            Rc = correlated_obs_error(coords, np.sqrt(R.variances()), self.correlation_length)
            E = Rc.color(context.perturbation_normals(m, N))
            sampled = Rc if self.covariance is InnovationCovariance.EXACT else R
        if self.project:
            E = project_onto_ensemble(E, Y - Y.mean(axis=1, keepdims=True), R)
        return E, sampled

    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> TransformUpdate:
        Y, y, R = check_observations(Y, y, R)
        E, sampled = self._draw(Y, R, context)
        if self.covariance is InnovationCovariance.EXACT:
            return TransformUpdate(enkf_exact_transform(Y, y, E, sampled))
        truncation = _DEFAULT_TRUNCATION if self.truncation is None else self.truncation
        keep = ~without_spread(Y, R)  # E's cross terms would give them spurious weight
        if not keep.all():
            Y, y, E, R = Y[keep], y[keep], E[keep], R.subset(keep)
        return TransformUpdate(enkf_transform(Y, y, E, R, truncation))
