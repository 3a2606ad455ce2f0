r"""Many small ensemble-space analyses at once: the maths of the LETKF's local analyses.

Each local analysis ``b`` of a batch sees the ``K`` observations of its neighbourhood through
their whitened, R-localized anomalies and innovations (Hunt, Kostelich & Szunyogh 2007,
eq. 20-24, with :math:`R^{-1}` of the local observations tapered by the Gaspari-Cohn
weights :math:`\rho`):

.. math::
    \hat S_b = \operatorname{diag}\!\left(\sqrt{\rho / r}\right) S_L, \qquad
    \hat d_b = \operatorname{diag}\!\left(\sqrt{\rho / r}\right) (y - \bar Y)_L,

stacked as ``(B, K, N)`` and ``(B, K)`` arrays (rows beyond a neighbourhood's own number of
observations are zero and change nothing). With the eigen-decomposition
:math:`\hat S_b^T \hat S_b = V \Lambda V^T` (numpy's stacked ``eigh``: one LAPACK call per
matrix, so each result depends on its own matrix only) and :math:`c = V^T \hat S_b^T \hat d_b`:

- **ETKF** (Hunt et al. 2007, eq. 21-24): prior weight :math:`\zeta = N_1`,
  :math:`\bar w = V (\Lambda + N_1)^{-1} c`, :math:`T = \sqrt{N_1}\, V (\Lambda + N_1)^{-1/2} V^T`.
- **EnKF-N** (Bocquet 2011; Bocquet, Raanes & Hannart 2015), the finite-size prior in each
  local analysis: :math:`\zeta_b` minimises the dual cost of
  :mod:`fdassim.analysis.enkf_n` with these :math:`\Lambda, c` (a scan of
  :math:`\ln\zeta` then bisection on its derivative, vectorised over the batch),
  :math:`\bar w = V a`, :math:`a = (\Lambda + \zeta_b)^{-1} c`, and :math:`T =
  \sqrt{N_1}\, \mathcal{H}^{-1/2}` with the Hessian :math:`\mathcal{H} = V [\Lambda + \zeta_b
  - 2 \zeta_b^2 a a^T / N] V^T` (or without its rank-one term).

Each returns the full transform :math:`W_b = \tfrac1N 1 1^T + \Pi (\bar w 1^T + T)` of
:func:`fdassim.analysis.etkf.mean_anomaly_transform`, batched: :math:`T 1 = 1` since
:math:`\hat S 1 = 0`, so it is the symmetric, mean-preserving square root.

References
----------
Hunt, B. R., Kostelich, E. J. and Szunyogh, I. (2007). Efficient data assimilation for
spatiotemporal chaos: a local ensemble transform Kalman filter. Physica D 230, 112-126.
https://doi.org/10.1016/j.physd.2006.11.008

Bocquet, M. (2011). Ensemble Kalman filtering without the intrinsic need for inflation.
Nonlin. Processes Geophys. 18, 735-750. https://doi.org/10.5194/npg-18-735-2011

Bocquet, M., Raanes, P. N. and Hannart, A. (2015). Expanding the validity of the ensemble
Kalman filter without the intrinsic need for inflation. Nonlin. Processes Geophys. 22,
645-662. https://doi.org/10.5194/npg-22-645-2015
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import FdassimError
from .enkf_n import _SCAN, _SCAN_LO, dual_cost

__all__ = ["local_etkf", "local_enkf_n", "dual_zeta", "mean_anomaly_transforms"]

#: bisection steps on log(zeta): the bracket of two scan steps (0.44 in log) shrinks to 4e-16
_BISECTIONS = 52


def _eig(Sh: np.ndarray, dh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-pairs of :math:`\\hat S^T \\hat S` (clipped at 0) and :math:`c = V^T \\hat S^T \\hat d`, batched."""
    St = np.swapaxes(Sh, 1, 2)
    lam, V = np.linalg.eigh(St @ Sh)
    np.maximum(lam, 0.0, out=lam)
    c = (np.swapaxes(V, 1, 2) @ (St @ dh[:, :, None]))[:, :, 0]
    return lam, V, c


def mean_anomaly_transforms(w: np.ndarray, T: np.ndarray) -> np.ndarray:
    r"""``(B, N, N)`` transforms :math:`\tfrac1N 1 1^T + \Pi (w 1^T + T)` from ``(B, N)`` and ``(B, N, N)``."""
    N = w.shape[1]
    M = w[:, :, None] + T
    return 1.0 / N + (M - M.mean(axis=1, keepdims=True))


def _sym_function(V: np.ndarray, f: np.ndarray) -> np.ndarray:
    """:math:`V \\operatorname{diag}(f) V^T`, batched and symmetrised."""
    T = (V * f[:, None, :]) @ np.swapaxes(V, 1, 2)
    return 0.5 * (T + np.swapaxes(T, 1, 2))


def local_etkf(Sh: np.ndarray, dh: np.ndarray) -> np.ndarray:
    r"""ETKF transforms of a batch of local analyses (Hunt et al. 2007).

    Parameters
    ----------
    Sh
        ``(B, K, N)`` weighted, whitened observation anomalies :math:`\hat S_b`.
    dh
        ``(B, K)`` weighted, whitened innovations :math:`\hat d_b`.

    Returns
    -------
    numpy.ndarray
        ``(B, N, N)`` transforms :math:`W_b`.
    """
    N1 = Sh.shape[2] - 1
    lam, V, c = _eig(Sh, dh)
    w = (V @ (c / (lam + N1))[:, :, None])[:, :, 0]
    return mean_anomaly_transforms(w, _sym_function(V, np.sqrt(N1 / (lam + N1))))


def _slope(t: np.ndarray, lam: np.ndarray, c2: np.ndarray, N: int, eps_N: float) -> np.ndarray:
    r""":math:`d\mathcal{D}/d\ln\zeta = \tfrac{\zeta}{2}(\varepsilon_N + \|w(\zeta)\|^2) - \tfrac N2` for ``(B,)`` values of ``t``."""
    zeta = np.exp(t)
    r = 1.0 / (zeta[:, None] + lam)
    return 0.5 * zeta * (eps_N + np.sum(c2 * r * r, axis=1)) - 0.5 * N


def dual_zeta(lam: np.ndarray, c: np.ndarray, N: int, eps_N: float) -> np.ndarray:
    r"""The minimisers :math:`\zeta_b \in (0, N/\varepsilon_N]` of a batch of EnKF-N dual costs.

    The rule of :func:`fdassim.analysis.enkf_n.enkf_n_dual`, vectorised: the global minimum is
    bracketed by a scan of :math:`\ln\zeta` over :math:`[10^{-9} N/\varepsilon_N,
    N/\varepsilon_N]`; inside the bracket the root of the derivative is found by bisection
    (a fixed number of steps, the same for every analysis); the end of the bracket is taken
    when the derivative does not change sign there, and the scan's point when it is better.

    Parameters
    ----------
    lam, c
        ``(B, N)`` eigenvalues of :math:`\hat S^T \hat S` and coordinates of
        :math:`\hat S^T \hat d` on its eigenvectors.
    N
        Ensemble size.
    eps_N
        :math:`\varepsilon_N`.

    Returns
    -------
    numpy.ndarray
        ``(B,)`` values of :math:`\zeta_b`.
    """
    B = lam.shape[0]
    zmax = N / eps_N
    t = np.linspace(math.log(zmax * _SCAN_LO), math.log(zmax), _SCAN)
    cost = dual_cost(np.broadcast_to(np.exp(t), (B, _SCAN)), lam[:, None, :], c[:, None, :], N, eps_N)
    k = np.argmin(cost, axis=1)
    lo, hi = t[np.maximum(k - 1, 0)], t[np.minimum(k + 1, _SCAN - 1)]
    c2 = c * c
    glo, ghi = _slope(lo, lam, c2, N, eps_N), _slope(hi, lam, c2, N, eps_N)
    a, b = lo.copy(), hi.copy()
    for _ in range(_BISECTIONS):
        mid = 0.5 * (a + b)
        up = _slope(mid, lam, c2, N, eps_N) > 0.0
        b = np.where(up, mid, b)
        a = np.where(up, a, mid)
    best = np.where(glo >= 0.0, lo, np.where(ghi <= 0.0, hi, 0.5 * (a + b)))
    worse = dual_cost(np.exp(best)[:, None], lam[:, None, :], c[:, None, :], N, eps_N)[:, 0] \
        > cost[np.arange(B), k]
    best = np.where(worse, t[k], best)
    return np.minimum(np.exp(best), zmax)


def local_enkf_n(Sh: np.ndarray, dh: np.ndarray, eps_N: float | None = None,
                 exact_hessian: bool = True) -> tuple[np.ndarray, np.ndarray]:
    r"""EnKF-N transforms of a batch of local analyses (the finite-size prior, locally).

    Parameters
    ----------
    Sh, dh
        As for :func:`local_etkf`.
    eps_N
        :math:`\varepsilon_N`; ``None`` for :math:`1 + 1/N`.
    exact_hessian
        Transform with the exact Hessian of the EnKF-N cost, or without its rank-one term.

    Returns
    -------
    W, zeta
        ``(B, N, N)`` transforms and the ``(B,)`` prior weights :math:`\zeta_b` (inflation
        :math:`\sqrt{N_1 / \zeta_b}`).

    Raises
    ------
    FdassimError
        If a Hessian at the minimum is not positive definite.
    """
    N = Sh.shape[2]
    N1 = N - 1
    eps_N = 1.0 + 1.0 / N if eps_N is None else eps_N
    lam, V, c = _eig(Sh, dh)
    zeta = dual_zeta(lam, c, N, eps_N)
    a = c / (lam + zeta[:, None])
    w = (V @ a[:, :, None])[:, :, 0]
    if not exact_hessian:
        return mean_anomaly_transforms(w, _sym_function(V, np.sqrt(N1 / (lam + zeta[:, None])))), zeta
    M = np.eye(N) * (lam + zeta[:, None])[:, None, :] - (2.0 * zeta**2 / N)[:, None, None] * (a[:, :, None] * a[:, None, :])
    mu, Q = np.linalg.eigh(M)
    if np.any(mu[:, 0] <= 0.0):
        b = int(np.flatnonzero(mu[:, 0] <= 0.0)[0])
        raise FdassimError(f"local EnKF-N: the Hessian at the minimum is not positive definite (smallest "
                           f"eigenvalue {mu[b, 0]:.3g}, zeta={zeta[b]:.6g}) in a local analysis")
    return mean_anomaly_transforms(w, _sym_function(V @ Q, np.sqrt(N1 / mu))), zeta
