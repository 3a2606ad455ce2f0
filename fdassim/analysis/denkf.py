r"""The deterministic EnKF (DEnKF) of Sakov & Oke (2008), as a transform.

The mean is updated with the full Kalman gain and the anomalies with half of it
(notation of :mod:`fdassim.analysis.base`):

.. math::
    K = A S^T (S S^T + N_1 R)^{-1}, \qquad
    \bar x^a = \bar x + K (y - \bar Y), \qquad
    A^a = A - \tfrac{1}{2} K S.

In ensemble space, with :math:`\tilde S = R^{-1/2} S`, :math:`\tilde d = R^{-1/2}(y - \bar Y)` and
:math:`G = S^T (S S^T + N_1 R)^{-1} = (\tilde S^T \tilde S + N_1 I)^{-1} \tilde S^T`
(``N x m``, evaluated through :func:`~fdassim.analysis.etkf.ensemble_svd`), :math:`K = A G` and, because
:math:`1^T G = 0`,

.. math::
    W = I_N + G \tilde d\, 1^T - \tfrac{1}{2} G \tilde S, \qquad X^a = X W.

For an exact prior covariance :math:`B` and linear :math:`H` the analysis covariance is

.. math::
    P^a = (I - \tfrac12 K H) B (I - \tfrac12 K H)^T = (I - K H) B + \tfrac14 K H B H^T K^T,

(using :math:`K H B = B H^T K^T`), larger than the Kalman :math:`(I - K H) B` by the
positive term :math:`\frac14 K H B H^T K^T`, which Sakov & Oke (2008) present as an
implicit inflation.

References
----------
Sakov, P. and Oke, P. R. (2008). A deterministic formulation of the ensemble Kalman filter:
an alternative to ensemble square root filters. Tellus A 60, 361-371.
https://doi.org/10.1111/j.1600-0870.2007.00299.x
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import AnalysisContext, ObsError, Scheme, TransformUpdate, check_observations
from .etkf import ensemble_svd

__all__ = ["DEnKF", "denkf_transform"]


def denkf_transform(S: np.ndarray, dy: np.ndarray, R: ObsError) -> np.ndarray:
    r"""The DEnKF transform :math:`W = I + G \tilde d 1^T - \frac12 G \tilde S` (Sakov & Oke 2008).

    Parameters
    ----------
    S
        ``(m, N)`` observation anomalies.
    dy
        ``(m,)`` innovation :math:`y - \bar Y`.
    R
        Observation-error covariance (diagonal or full).

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` transform, :math:`X^a = X W`.
    """
    N = S.shape[1]
    N1 = N - 1
    sig, V, c = ensemble_svd(S, dy, R)  # S~ = U diag(sig) V^T, c = V^T S~^T d~
    Gd = V @ (c / (sig**2 + N1))  # G d~ = (S~^T S~ + N1 I)^{-1} S~^T d~ : mean weights
    GS = (V * (sig**2 / (sig**2 + N1))) @ V.T  # G S~, so that K S = A G S~
    return np.eye(N) + Gd[:, None] - 0.5 * GS  # I + G d~ 1^T - 1/2 G S~


@dataclass(frozen=True)
class DEnKF(Scheme):
    r"""The DEnKF of Sakov & Oke (2008): full gain for the mean, half gain for the anomalies (no options)."""

    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> TransformUpdate:
        Y, y, R = check_observations(Y, y, R)
        Ybar = Y.mean(axis=1)
        return TransformUpdate(denkf_transform(Y - Ybar[:, None], y - Ybar, R))
