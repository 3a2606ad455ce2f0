r"""The ensemble transform Kalman filter (ETKF) with the symmetric square root.

In the ensemble-space form of Hunt et al. (2007), with whitened anomalies
:math:`\tilde S = R^{-1/2} S` and innovation :math:`\tilde d = R^{-1/2}(y - \bar{Y})`
(notation of :mod:`fdassim.analysis.base`):

.. math::
    N_1 I_N + \tilde S^T \tilde S = V \Lambda V^T, \qquad
    \tilde P^a = V \Lambda^{-1} V^T, \qquad
    \bar w = \tilde P^a \tilde S^T \tilde d, \qquad
    T = \sqrt{N_1}\, V \Lambda^{-1/2} V^T,

and the analysis :math:`X^a = \bar x 1^T + A (\bar w 1^T + T)`, i.e. :math:`X^a = X W` with

.. math::
    W = \tfrac{1}{N} 1 1^T + \Pi (\bar w 1^T + T), \qquad \Pi = I_N - \tfrac{1}{N} 1 1^T.

The symmetric square root :math:`T` has :math:`T 1 = 1` because :math:`\tilde S 1 = 0`, so it
preserves the ensemble mean (Wang, Bishop & Julier 2004); of all square roots it is the one
closest to the identity. Multiplying by :math:`\Pi` makes the analysis anomalies sum to zero
to round-off whatever the eigen-solver's error. The eigen-decomposition is obtained from the
thin SVD of :math:`\tilde S` or the eigendecomposition of its ``N x N`` Gram matrix
(:func:`ensemble_svd`), so the cost is linear in ``m`` and quadratic in ``N``. No inflation is applied here (see the
inflation module).

References
----------
Bishop, C. H., Etherton, B. J. and Majumdar, S. J. (2001). Adaptive sampling with the ensemble
transform Kalman filter. Part I: Theoretical aspects. Mon. Wea. Rev. 129, 420-436.
https://doi.org/10.1175/1520-0493(2001)129<0420:ASWTET>2.0.CO;2

Wang, X., Bishop, C. H. and Julier, S. J. (2004). Which is better, an ensemble of positive-
negative pairs or a centered spherical simplex ensemble? Mon. Wea. Rev. 132, 1590-1605.
https://doi.org/10.1175/1520-0493(2004)132<1590:WITESI>2.0.CO;2

Hunt, B. R., Kostelich, E. J. and Szunyogh, I. (2007). Efficient data assimilation for
spatiotemporal chaos: a local ensemble transform Kalman filter. Physica D 230, 112-126.
https://doi.org/10.1016/j.physd.2006.11.008
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh, svd

from .base import AnalysisContext, ObsError, Scheme, TransformUpdate, check_observations

__all__ = ["ETKF", "ensemble_svd", "etkf_weights", "etkf_transform", "mean_anomaly_transform"]


def mean_anomaly_transform(w: np.ndarray, T: np.ndarray) -> np.ndarray:
    r"""The full transform :math:`W = \frac{1}{N} 1 1^T + \Pi (w 1^T + T)` from mean weights and an anomaly transform.

    :math:`X W = \bar x 1^T + A (w 1^T + T)` for :math:`X = \bar x 1^T + A`, since
    :math:`X \Pi = A`.
    """
    N = w.size
    M = w[:, None] + T  # w 1^T + T
    return np.full((N, N), 1.0 / N) + (M - M.mean(axis=0, keepdims=True))  # 11^T/N + Pi M


def ensemble_svd(S: np.ndarray, dy: np.ndarray, R: ObsError) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Singular values and right singular vectors of the whitened anomalies :math:`\tilde S = R^{-1/2} S`.

    The eigenvectors of the ``N x N`` matrix :math:`N_1 I + \tilde S^T \tilde S` are the
    columns of ``V`` (eigenvalues :math:`N_1 + \sigma_j^2`) and any basis of their orthogonal
    complement (eigenvalue :math:`N_1`), so every ensemble-space matrix function of it is
    :math:`f(N_1) I + V (f(N_1 + \Sigma^2) - f(N_1)) V^T`.

    With ``m <= N`` they come from the thin SVD :math:`\tilde S = U \Sigma V^T` (``k = m``
    columns). With ``m > N`` (the usual case) from the eigendecomposition of the ``N x N``
    Gram matrix :math:`\tilde S^T \tilde S = V \Sigma^2 V^T` (``k = N``): one matrix
    product of cost :math:`m N^2` instead of an SVD of the ``m x N`` matrix (about 40 times
    faster for ``m = 2000, N = 64``). Squaring loses singular values below
    :math:`\sqrt{\epsilon}\, \sigma_0` (negative round-off is set to 0); every formula that
    uses them weighs them by :math:`\sigma^2 / (\sigma^2 + N_1)`, so what is lost is below
    round-off in the transform.

    Returns
    -------
    sig, V, c
        ``(k,)`` singular values (descending), ``(N, k)`` right singular vectors and the
        ``(k,)`` coordinates :math:`c = V^T \tilde S^T \tilde d` of the whitened innovation.
    """
    St, dt = R.whiten(S), R.whiten(dy)
    if St.shape[0] <= St.shape[1]:
        U, sig, Vt = svd(St, full_matrices=False)
        return sig, Vt.T, sig * (U.T @ dt)
    lam, V = eigh(St.T @ St)
    lam, V = lam[::-1], V[:, ::-1]
    return np.sqrt(np.maximum(lam, 0.0)), V, V.T @ (St.T @ dt)


def etkf_weights(S: np.ndarray, dy: np.ndarray, R: ObsError) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean weights and symmetric anomaly transform of the ETKF (Hunt et al. 2007).

    .. math::
        \bar w = (N_1 I + \tilde S^T \tilde S)^{-1} \tilde S^T \tilde d, \qquad
        T = \left[ N_1 (N_1 I + \tilde S^T \tilde S)^{-1} \right]^{1/2},

    evaluated through :func:`ensemble_svd`.

    Parameters
    ----------
    S
        ``(m, N)`` observation anomalies.
    dy
        ``(m,)`` innovation :math:`y - \bar{Y}`.
    R
        Observation-error covariance (diagonal or full).

    Returns
    -------
    w, T
        ``(N,)`` mean weights and the ``(N, N)`` symmetric anomaly transform.
    """
    N = S.shape[1]
    N1 = N - 1
    sig, V, c = ensemble_svd(S, dy, R)
    lam = N1 + sig**2  # eigenvalues of N1 I + S~^T S~ on span(V); N1 elsewhere
    w = V @ (c / lam)  # w = (N1 I + S~^T S~)^{-1} S~^T d~
    T = np.eye(N) + (V * (np.sqrt(N1 / lam) - 1.0)) @ V.T  # sqrt(N1 Pa~), identity off span(V)
    return w, 0.5 * (T + T.T)


def etkf_transform(S: np.ndarray, dy: np.ndarray, R: ObsError) -> np.ndarray:
    r"""The ETKF transform :math:`W` (``N x N``) with :math:`X^a = X W`; see :func:`etkf_weights`."""
    return mean_anomaly_transform(*etkf_weights(S, dy, R))


@dataclass(frozen=True)
class ETKF(Scheme):
    r"""The ETKF with the symmetric, mean-preserving square root (no options).

    Nonlinear observation operators enter only through ``Y = H(X)``; the analysis then uses
    the ensemble's linearisation of ``H``.
    """

    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> TransformUpdate:
        Y, y, R = check_observations(Y, y, R)
        Ybar = Y.mean(axis=1)
        return TransformUpdate(etkf_transform(Y - Ybar[:, None], y - Ybar, R))
