r"""The serial ensemble square root filter (EnSRF) of Whitaker & Hamill (2002), as a transform.

Scalar observations are assimilated one after the other. For observation ``k`` with current
predicted values :math:`Y_k` (a row), anomalies :math:`s = Y_k - \bar Y_k 1^T`, innovation
:math:`d = y_k - \bar Y_k` and error variance :math:`r`:

.. math::
    p = \frac{s s^T}{N_1}, \qquad
    \alpha = \left(1 + \sqrt{\frac{r}{p + r}}\right)^{-1}, \qquad
    T_k = I_N + \frac{s^T (d\, 1^T - \alpha s)}{N_1 (p + r)},

so that a row :math:`x` of the ensemble becomes :math:`x T_k`: its mean moves by :math:`K d`
and its anomalies by :math:`-\alpha K s` with :math:`K = \mathrm{cov}(x, Y_k)/(p + r)`, the
reduced-gain update of Whitaker & Hamill (2002). The transforms accumulate,
:math:`W_k = T_1 T_2 \cdots T_k`, :math:`X^a = X W_m`, and the predicted observations of the
observations not yet processed follow the ensemble (exact for linear ``H``): when observation
``k`` is reached its current predictions are :math:`Y_k W_{k-1}`. They are formed from the
*anomalies* of the original predictions, :math:`Y_k = \bar Y_k 1^T + S_k`, as
:math:`\bar Y_k 1^T + S_k W_{k-1}` (since :math:`1^T W = 1^T`), so an observation far from
zero (an offset of :math:`10^8` on a spread of 1) loses no precision; and each step costs
:math:`O(N^2)` instead of updating all remaining observations, :math:`O(m N^2)` in all. The
accumulated :math:`W` is the ``N x N`` transform of a :class:`~fdassim.analysis.base.TransformUpdate`,
applied to the rows by one matrix product.

Serial processing assumes uncorrelated observation errors. A full :math:`R` is handled by
whitening observation space first: :math:`\tilde y = R^{-1/2} y`,
:math:`\tilde Y = R^{-1/2} Y` (the inverse Cholesky factor), after which the errors are
independent with unit variance (:math:`r = 1`). For a diagonal :math:`R` this is the
classical algorithm with :math:`r = R_{kk}`. The Kalman analysis is invariant under this
change of variables, so for linear ``H`` the analysis mean and covariance equal those of
the batch square-root analysis (e.g. the ETKF); the members differ.

References
----------
Whitaker, J. S. and Hamill, T. M. (2002). Ensemble data assimilation without perturbed
observations. Mon. Wea. Rev. 130, 1913-1924.
https://doi.org/10.1175/1520-0493(2002)130<1913:EDAWPO>2.0.CO;2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import ddot, dgemv, dger

from .base import AnalysisContext, ObsError, Scheme, TransformUpdate, check_observations

__all__ = ["EnSRF", "ensrf_transform"]


def ensrf_transform(Y: np.ndarray, y: np.ndarray, R: ObsError) -> np.ndarray:
    r"""The accumulated serial-EnSRF transform :math:`W = T_1 \cdots T_m` (Whitaker & Hamill 2002).

    Parameters
    ----------
    Y
        ``(m, N)`` predicted observations (not modified).
    y
        ``(m,)`` observations.
    R
        Observation-error covariance; a full :math:`R` is whitened away first (see module).

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` transform, :math:`X^a = X W`.
    """
    Yt = R.whiten(np.asarray(Y, dtype=float))  # R^{-1/2} Y
    yt = R.whiten(np.asarray(y, dtype=float))  # R^{-1/2} y
    m, N = Yt.shape
    N1 = N - 1
    r = 1.0  # whitened error variance
    Ybar = Yt.mean(axis=1)
    S = Yt - Ybar[:, None]  # anomalies of the original predictions
    dy = yt - Ybar  # innovations against the original means
    W = np.asfortranarray(np.eye(N))  # Fortran order: updated in place by BLAS (dger)
    for k in range(m):
        cur = dgemv(1.0, W, S[k], trans=1)  # current predictions of observation k, less Ybar_k: S_k W_{k-1}
        shift = cur.sum() / N  # how far its mean has moved
        s = cur - shift  # its anomalies
        d = dy[k] - shift  # innovation y_k - current mean
        p = ddot(s, s) / N1  # H P H^T
        alpha = 1.0 / (1.0 + math.sqrt(r / (p + r)))  # reduced-gain factor (Whitaker & Hamill 2002)
        scale = 1.0 / (N1 * (p + r))
        v = s * (-alpha * scale)
        v += d * scale  # v = (d - alpha s) / (N1 (p + r)): T_k = I + s v^T
        W = dger(1.0, dgemv(1.0, W, s), v, a=W, overwrite_a=1)  # W_k = W_{k-1} + (W_{k-1} s) v^T
    return np.ascontiguousarray(W)


@dataclass(frozen=True)
class EnSRF(Scheme):
    r"""Serial EnSRF of Whitaker & Hamill (2002) (no options).

    The observations are processed in the order given; for linear ``H`` the analysis mean
    and covariance do not depend on that order.
    """

    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> TransformUpdate:
        Y, y, R = check_observations(Y, y, R)
        return TransformUpdate(ensrf_transform(Y, y, R))
