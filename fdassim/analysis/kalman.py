r"""The exact Kalman filter analysis: the reference every ensemble scheme is checked against.

.. math::
    K = B H^T (H B H^T + R)^{-1}, \quad x^a = x^b + K (y - H x^b), \quad P^a = (I - K H) B

(Kalman 1960; e.g. Evensen 2003, eqs. 4-6.)
"""

from __future__ import annotations

import numpy as np

from .base import ObsError

__all__ = ["kalman_analysis"]


def kalman_analysis(xb: np.ndarray, B: np.ndarray, H: np.ndarray, y: np.ndarray, R: ObsError):
    """Exact analysis mean and covariance of a linear-Gaussian problem.

    Parameters
    ----------
    xb
        ``(n,)`` prior mean.
    B
        ``(n, n)`` prior covariance.
    H
        ``(m, n)`` linear observation operator.
    y
        ``(m,)`` observations.
    R
        Observation-error covariance.

    Returns
    -------
    xa, Pa
        ``(n,)`` analysis mean and ``(n, n)`` analysis covariance (symmetrised).
    """
    R = R.expand(H.shape[0])
    C = H @ B @ H.T + R.matrix()
    K = np.linalg.solve(C, H @ B).T  # B H^T C^{-1}, C and B symmetric
    xa = xb + K @ (y - H @ xb)
    Pa = B - K @ H @ B
    return xa, 0.5 * (Pa + Pa.T)
