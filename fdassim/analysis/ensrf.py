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
reduced-gain update of Whitaker & Hamill (2002). The predicted observations of
the observations not yet processed are updated the same way, :math:`Y \leftarrow Y T_k` (exact
for linear ``H``), and the transforms accumulate: :math:`W = T_1 T_2 \cdots T_m`,
:math:`X^a = X W`.

Serial processing assumes uncorrelated observation errors. A full :math:`R` is handled by
whitening observation space first: :math:`\tilde y = R^{-1/2} y`,
:math:`\tilde Y = R^{-1/2} Y` (the inverse Cholesky factor), after which the errors are
independent with unit variance (:math:`r = 1`). For a diagonal :math:`R` this is the
classical algorithm with :math:`r = R_{kk}`. The Kalman analysis is invariant under this
change of variables, so for linear ``H`` the analysis mean and covariance equal those of
the batch square-root analysis (e.g. the ETKF); the members differ.
Each :math:`T_k` is the identity plus a rank-one matrix, so the whole analysis costs
:math:`O(m (m N + N^2))`.

References
----------
Whitaker, J. S. and Hamill, T. M. (2002). Ensemble data assimilation without perturbed
observations. Mon. Wea. Rev. 130, 1913-1924.
https://doi.org/10.1175/1520-0493(2002)130<1913:EDAWPO>2.0.CO;2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    Yt = R.whiten(np.array(Y, dtype=float))  # R^{-1/2} Y, a copy
    yt = R.whiten(np.asarray(y, dtype=float))  # R^{-1/2} y
    m, N = Yt.shape
    N1 = N - 1
    r = 1.0  # whitened error variance
    W = np.eye(N)
    for k in range(m):
        Ybar = Yt[k].mean()
        s = Yt[k] - Ybar  # anomalies of observation k
        d = yt[k] - Ybar  # innovation
        p = s @ s / N1  # H P H^T
        alpha = 1.0 / (1.0 + np.sqrt(r / (p + r)))  # reduced-gain factor (Whitaker & Hamill 2002)
        v = (d - alpha * s) / (N1 * (p + r))  # T_k = I + s v^T
        Yt[k + 1:] += np.outer(Yt[k + 1:] @ s, v)  # Y <- Y T_k, remaining observations
        W += np.outer(W @ s, v)  # W <- W T_k
    return W


@dataclass(frozen=True)
class EnSRF(Scheme):
    r"""Serial EnSRF of Whitaker & Hamill (2002) (no options).

    The observations are processed in the order given; for linear ``H`` the analysis mean
    and covariance do not depend on that order.
    """

    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> TransformUpdate:
        Y, y, R = check_observations(Y, y, R)
        return TransformUpdate(ensrf_transform(Y, y, R))
