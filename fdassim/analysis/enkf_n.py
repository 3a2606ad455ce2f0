r"""The finite-size ensemble Kalman filter EnKF-N (Bocquet 2011; Bocquet, Raanes & Hannart 2015).

The EnKF-N accounts for the sampling error of the prior moments by integrating over them
(Jeffreys' hyperprior), which gives the ensemble-space cost, with :math:`x = \bar x + A w`,
whitened anomalies :math:`\tilde S = R^{-1/2} S` and innovation
:math:`\tilde d = R^{-1/2}(y - \bar Y)`:

.. math::
    \mathcal{J}(w) = \tfrac12 \| \tilde d - \tilde S w \|^2
                     + \tfrac{N}{2} \ln\left(\varepsilon_N + \|w\|^2\right),
    \qquad \varepsilon_N = 1 + \tfrac{1}{N}.

Since :math:`\ln u = \min_{\lambda > 0} (\lambda u - \ln \lambda - 1)`, with
:math:`\zeta = N \lambda` the minimum over :math:`w` equals the minimum over :math:`\zeta` of
the *dual* cost (Bocquet et al. 2015)

.. math::
    \mathcal{D}(\zeta) = \tfrac12 \tilde d^T \left(I_m + \zeta^{-1} \tilde S \tilde S^T\right)^{-1} \tilde d
                        + \tfrac{\varepsilon_N \zeta}{2} + \tfrac{N}{2} \ln\frac{N}{\zeta} - \tfrac{N}{2},
    \qquad 0 < \zeta \le N / \varepsilon_N,

at :math:`\zeta_a = N/(\varepsilon_N + \|w_a\|^2)` and
:math:`w_a = (\tilde S^T \tilde S + \zeta_a I)^{-1} \tilde S^T \tilde d`: an ETKF whose prior
weight :math:`N_1` is replaced by :math:`\zeta_a`, i.e. whose prior anomalies are inflated by

.. math::
    \lambda = \sqrt{N_1 / \zeta_a}.

The anomalies are transformed by the symmetric square root of the inverse Hessian of
:math:`\mathcal{J}` at :math:`w_a`:

.. math::
    \mathcal{H}_a = \tilde S^T \tilde S + \zeta_a I_N - \frac{2 \zeta_a^2}{N} w_a w_a^T, \qquad
    T = \sqrt{N_1}\, \mathcal{H}_a^{-1/2}.

The dual is a scalar problem, solved by a log-spaced scan of :math:`(0, N/\varepsilon_N]`
(one array operation) and a safeguarded Newton iteration on its derivative; the primal
(``dual=False``) is a trust-region Newton minimisation of
:math:`\mathcal{J}` on the span of :math:`\tilde S^T` and is kept mainly to cross-check the
dual. Both use the singular values of :math:`\tilde S` (:func:`fdassim.analysis.etkf.ensemble_svd`). With a
nonlinear ``H`` the ensemble's linearisation ``Y = H(X)`` is used, as in the ETKF.

References
----------
Bocquet, M. (2011). Ensemble Kalman filtering without the intrinsic need for inflation.
Nonlin. Processes Geophys. 18, 735-750. https://doi.org/10.5194/npg-18-735-2011

Bocquet, M., Raanes, P. N. and Hannart, A. (2015). Expanding the validity of the ensemble
Kalman filter without the intrinsic need for inflation. Nonlin. Processes Geophys. 22,
645-662. https://doi.org/10.5194/npg-22-645-2015
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh
from scipy.optimize import minimize

from ..errors import FdassimError
from ..options import option
from .base import AnalysisContext, ObsError, Scheme, TransformUpdate, check_observations
from .etkf import ensemble_svd, mean_anomaly_transform

__all__ = ["EnKFN", "EnKFNUpdate", "dual_cost", "enkf_n_dual", "enkf_n_primal", "enkf_n_weights", "enkf_n_transform"]

#: Points of the log-spaced scan that brackets the global minimum of the dual cost.
_SCAN = 96
#: The scan covers zeta in [zeta_max * _SCAN_LO, zeta_max].
_SCAN_LO = 1e-9
#: Tolerance on log(zeta) of the Newton refinement, and its iteration cap (bisection alone
#: needs log2(2 * 0.22 / 1e-13) = 42 steps to reach it).
_XTOL = 1e-13
_MAX_ITER = 100


@dataclass(frozen=True, eq=False)
class EnKFNUpdate(TransformUpdate):
    r"""A :class:`TransformUpdate` that also carries the inflation the EnKF-N found.

    Parameters
    ----------
    W
        ``(N, N)`` transform.
    inflation
        Implicit inflation of the prior anomalies, :math:`\lambda = \sqrt{N_1/\zeta_a}`
        (of the covariance: :math:`\lambda^2`).
    zeta
        The minimiser :math:`\zeta_a` of the dual cost.
    """

    inflation: float = 1.0
    zeta: float = math.nan


def dual_cost(zeta: np.ndarray, lam: np.ndarray, c: np.ndarray, N: int, eps_N: float) -> np.ndarray:
    r"""The dual cost :math:`\mathcal{D}(\zeta)` less the constant :math:`\tfrac12 \|\tilde d\|^2`, for many ``zeta``.

    .. math::
        \mathcal{D}(\zeta) - \tfrac12 \|\tilde d\|^2 = -\tfrac12 \sum_j \frac{c_j^2}{\zeta + \lambda_j}
            + \tfrac{\varepsilon_N \zeta}{2} + \tfrac{N}{2} \ln\frac{N}{\zeta} - \tfrac{N}{2},

    since :math:`\tilde d^T (I + \tilde S \tilde S^T / \zeta)^{-1} \tilde d = \|\tilde d\|^2 -
    \sum_j c_j^2 / (\zeta + \lambda_j)` in the eigenbasis of :math:`\tilde S^T \tilde S`.
    Evaluated for every ``zeta`` in one ``(len(zeta), k)`` array operation.

    Parameters
    ----------
    zeta
        Values of :math:`\zeta > 0`, any shape.
    lam, c, N, eps_N
        As for :func:`enkf_n_dual`.
    """
    zeta = np.asarray(zeta, dtype=float)
    z = zeta[..., None]
    return -0.5 * np.sum(c**2 / (z + lam), axis=-1) + 0.5 * eps_N * zeta + 0.5 * N * np.log(N / zeta) - 0.5 * N


def _dual_slope(t: float, lam: np.ndarray, c2: np.ndarray, N: int, eps_N: float) -> tuple[float, float]:
    r"""First and second derivatives of :math:`\mathcal{D}` in :math:`t = \ln \zeta`.

    .. math::
        g = \frac{d\mathcal{D}}{dt} = \tfrac{\zeta}{2} \left(\varepsilon_N + \|w(\zeta)\|^2\right) - \tfrac{N}{2},
        \qquad \frac{dg}{dt} = g + \tfrac{N}{2} - \zeta^2 \sum_j \frac{c_j^2}{(\zeta + \lambda_j)^3},

    with :math:`\|w(\zeta)\|^2 = \sum_j c_j^2 / (\zeta + \lambda_j)^2`: ``g = 0`` is the
    stationarity condition :math:`\zeta = N / (\varepsilon_N + \|w\|^2)`.
    """
    zeta = math.exp(t)
    r = 1.0 / (zeta + lam)
    q = c2 * r * r  # c_j^2 / (zeta + lam_j)^2
    g = 0.5 * zeta * (eps_N + float(q.sum())) - 0.5 * N
    return g, g + 0.5 * N - zeta * zeta * float(q @ r)


def _newton_bisection(f, lo: float, hi: float, tol: float) -> float:
    """A root of ``f`` (which returns value and slope) in ``[lo, hi]``, given ``f(lo) < 0 < f(hi)``.

    Newton steps, replaced by bisection whenever they leave the current bracket or do not
    shrink the step by half (safeguarded Newton, as ``rtsafe`` in Numerical Recipes); the
    bracket keeps ``f(lo) < 0 < f(hi)``, so it converges even where ``f`` is not monotone.
    """
    t = 0.5 * (lo + hi)
    step_old = hi - lo
    for _ in range(_MAX_ITER):
        g, dg = f(t)
        if g == 0.0:
            return t
        if g < 0.0:
            lo = t
        else:
            hi = t
        newton = t - g / dg if dg > 0.0 else math.nan
        if lo < newton < hi and abs(newton - t) < 0.5 * step_old:
            step_old, t = abs(newton - t), newton
        else:
            step_old, t = hi - lo, 0.5 * (lo + hi)
        if step_old < tol:
            return t
    return t


def enkf_n_dual(lam: np.ndarray, c: np.ndarray, N: int, eps_N: float) -> float:
    r"""The minimiser :math:`\zeta_a \in (0, N/\varepsilon_N]` of the EnKF-N dual cost.

    Parameters
    ----------
    lam
        ``(k,)`` eigenvalues :math:`\sigma_j^2` of :math:`\tilde S^T \tilde S` on the span of
        :math:`\tilde S^T` (the others are zero).
    c
        ``(k,)`` coordinates of :math:`\tilde S^T \tilde d` on the matching eigenvectors (it has
        none on the others).
    N
        Ensemble size.
    eps_N
        :math:`\varepsilon_N`.

    Returns
    -------
    float
        :math:`\zeta_a`.

    Notes
    -----
    The global minimum is bracketed by a scan of ``log(zeta)`` over
    :math:`[10^{-9} N/\varepsilon_N, N/\varepsilon_N]` (:func:`dual_cost` on all 96 points at
    once). When the derivative changes sign around the best scan point ``k``
    (:func:`_dual_slope` negative at point ``k - 1`` and positive at ``k + 1``), a safeguarded
    Newton iteration refines the stationary point between them to
    :math:`|\delta \ln \zeta| < 10^{-13}`. The result is the better (by :func:`dual_cost`) of
    the refined point and the scan point, so it is never worse than the scan: at an end of
    the scan (the cost still decreasing at :math:`N/\varepsilon_N`, e.g. a zero innovation,
    or still increasing at :math:`10^{-9} N/\varepsilon_N`, an innovation huge against the
    spread) it is that end, so inflation factors above about :math:`3 \cdot 10^4` are
    reported as that bound.
    """
    c2 = np.asarray(c, dtype=float) ** 2
    lam = np.asarray(lam, dtype=float)
    zmax = N / eps_N
    zeta = zmax * np.exp(np.linspace(math.log(_SCAN_LO), 0.0, _SCAN))  # log-spaced; zeta[-1] == zmax
    cost = dual_cost(zeta, lam, c, N, eps_N)
    k = int(np.argmin(cost))
    candidates = [float(zeta[k])]

    def slope(ti):
        return _dual_slope(ti, lam, c2, N, eps_N)

    lo, hi = math.log(zeta[max(k - 1, 0)]), math.log(zeta[min(k + 1, _SCAN - 1)])
    if slope(lo)[0] < 0.0 < slope(hi)[0]:  # a stationary point in the bracket: refine it
        candidates.append(math.exp(_newton_bisection(slope, lo, hi, _XTOL)))
    return min(min(candidates, key=lambda z: float(dual_cost(z, lam, c, N, eps_N))), zmax)


def enkf_n_primal(lam: np.ndarray, c: np.ndarray, N: int, eps_N: float) -> np.ndarray:
    r"""The minimiser of the primal cost :math:`\mathcal{J}`, by trust-region Newton.

    With :math:`w = V a` (``V`` the eigenvectors of :math:`\tilde S^T \tilde S` of
    eigenvalues ``lam``; the component of :math:`w_a` off their span is zero, since there
    :math:`\nabla \mathcal{J} = N w / (\varepsilon_N + \|w\|^2)`):

    .. math::
        \mathcal{J}(a) = \tfrac12 a^T \mathrm{diag}(\lambda) a - c^T a
                         + \tfrac{N}{2} \ln(\varepsilon_N + \|a\|^2) + \mathrm{const}.

    Parameters
    ----------
    lam, c, N, eps_N
        As for :func:`enkf_n_dual`.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` coordinates ``a`` of :math:`w_a` on the eigenvectors.
    """

    def J(a):
        return 0.5 * a @ (lam * a) - c @ a + 0.5 * N * math.log(eps_N + a @ a)

    def grad(a):
        return lam * a - c + N * a / (eps_N + a @ a)

    def hess(a):
        q = eps_N + a @ a
        return np.diag(lam + N / q) - (2 * N / q**2) * np.outer(a, a)

    res = minimize(J, np.zeros(c.size), jac=grad, hess=hess, method="trust-exact", options={"gtol": 1e-12})
    return res.x


def enkf_n_weights(S: np.ndarray, dy: np.ndarray, R: ObsError, eps_N: float | None = None,
                   dual: bool = True, exact_hessian: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    r"""EnKF-N mean weights :math:`w_a`, symmetric anomaly transform :math:`T` and :math:`\zeta_a`.

    Parameters
    ----------
    S
        ``(m, N)`` observation anomalies.
    dy
        ``(m,)`` innovation :math:`y - \bar Y`.
    R
        Observation-error covariance (diagonal or full).
    eps_N
        :math:`\varepsilon_N`; ``None`` for :math:`1 + 1/N` (Bocquet 2011).
    dual
        Minimise the scalar dual cost (default) or the primal cost.
    exact_hessian
        Transform the anomalies with the exact Hessian of the EnKF-N cost at :math:`w_a`
        (default), or drop its rank-one term, :math:`H \approx \tilde S^T \tilde S +
        \zeta_a I` (the ETKF's Hessian with the prior weight :math:`\zeta_a`; DAPPER's
        ``Hess=False``), which gives a smaller analysis spread.

    Returns
    -------
    w, T, zeta
        ``(N,)``, ``(N, N)`` and the prior weight :math:`\zeta_a` (inflation
        :math:`\sqrt{N_1/\zeta_a}`).

    Raises
    ------
    FdassimError
        If the Hessian at the minimum is not positive definite (the minimiser failed).
    """
    N = S.shape[1]
    N1 = N - 1
    eps_N = 1.0 + 1.0 / N if eps_N is None else eps_N
    sig, V, c = ensemble_svd(S, dy, R)  # S~ = U diag(sig) V^T, c = V^T S~^T d~
    lam = sig**2  # eigenvalues of S~^T S~ on span(V); 0 off it
    if dual:
        zeta = enkf_n_dual(lam, c, N, eps_N)
        a = c / (lam + zeta)  # w_a = (S~^T S~ + zeta I)^{-1} S~^T d~ = V a
    else:
        a = enkf_n_primal(lam, c, N, eps_N)
        zeta = N / (eps_N + a @ a)  # zeta_a = N / (eps_N + |w_a|^2)
    # Hessian of J at w_a: on span(V) M = diag(lam + zeta) - 2 zeta^2/N a a^T; zeta I off it
    rank_one = (2.0 * zeta**2 / N) * np.outer(a, a) if exact_hessian else 0.0
    mu, Q = eigh(np.diag(lam + zeta) - rank_one)
    if mu[0] <= 0.0:
        raise FdassimError(
            f"EnKF-N: the Hessian at the minimum is not positive definite (smallest eigenvalue "
            f"{mu[0]:.3g}, zeta={zeta:.6g}); the {'dual' if dual else 'primal'} minimisation failed"
        )
    VQ = V @ Q
    f0 = math.sqrt(N1 / zeta)
    T = f0 * np.eye(N) + (VQ * (np.sqrt(N1 / mu) - f0)) @ VQ.T  # sqrt(N1) Ha^{-1/2}
    return V @ a, 0.5 * (T + T.T), float(zeta)


def enkf_n_transform(S: np.ndarray, dy: np.ndarray, R: ObsError, eps_N: float | None = None,
                     dual: bool = True, exact_hessian: bool = True) -> tuple[np.ndarray, float]:
    r"""The EnKF-N transform :math:`W` (``X^a = X W``) and the inflation :math:`\sqrt{N_1/\zeta_a}` it implies.

    See :func:`enkf_n_weights` for the parameters.
    """
    w, T, zeta = enkf_n_weights(S, dy, R, eps_N, dual, exact_hessian)
    return mean_anomaly_transform(w, T), math.sqrt((S.shape[1] - 1) / zeta)


@dataclass(frozen=True)
class EnKFN(Scheme):
    r"""The finite-size EnKF-N, with implicit adaptive inflation.

    Parameters
    ----------
    eps_N
        :math:`\varepsilon_N > 0` of the Jeffreys hyperprior; ``None`` (default) for
        :math:`1 + 1/N` as in Bocquet (2011) and Bocquet et al. (2015).
    dual
        Solve the scalar dual problem (default, robust and cheap) or the primal one.
    exact_hessian
        Exact Hessian in the anomaly transform (default) or without its rank-one term
        (see :func:`enkf_n_weights`).

    Raises
    ------
    ConfigError
        For an option of the wrong type or out of range.

    Notes
    -----
    :meth:`prepare` returns an :class:`EnKFNUpdate`, whose ``inflation`` a cycle may log.
    """

    eps_N: float | None = option(None, gt=0)
    dual: bool = True
    exact_hessian: bool = True

    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> EnKFNUpdate:
        Y, y, R = check_observations(Y, y, R)
        Ybar = Y.mean(axis=1)
        S = Y - Ybar[:, None]
        w, T, zeta = enkf_n_weights(S, y - Ybar, R, self.eps_N, self.dual, self.exact_hessian)
        return EnKFNUpdate(mean_anomaly_transform(w, T), inflation=math.sqrt((Y.shape[1] - 1) / zeta), zeta=zeta)
