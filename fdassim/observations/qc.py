r"""Quality control: the outlier check of operational ensemble systems.

An observation is rejected when its innovation, the distance between the observed value and
the ensemble mean of its predicted values, exceeds ``k`` standard deviations of the expected
spread of that distance:

.. math::
    |y_i - \overline{(HX)}_i| > k \sqrt{\sigma^2_{HX,i} + R_{ii}},

with :math:`\sigma^2_{HX,i}` the ensemble variance of the predicted observation (divisor
``N - 1``), i.e. the diagonal of :math:`HP^fH^T`. This is DART's ``outlier_threshold``
(Anderson et al. 2009); ``k = 3`` is a common choice.

References
----------
Anderson, J., Hoar, T., Raeder, K., Liu, H., Collins, N., Torn, R. and Avellano, A. (2009).
The Data Assimilation Research Testbed: a community facility. Bull. Amer. Meteor. Soc. 90,
1283-1296. https://doi.org/10.1175/2009BAMS2618.1
"""

from __future__ import annotations

import numpy as np

from ..errors import ObservationError

__all__ = ["outliers"]


def outliers(Y: np.ndarray, y: np.ndarray, r: np.ndarray, k: float) -> np.ndarray:
    r"""``(m,)`` bool: ``True`` where observation ``i`` fails the outlier check.

    Parameters
    ----------
    Y
        ``(m, N)`` predicted observations of the members.
    y
        ``(m,)`` observed values.
    r
        ``(m,)`` observation-error variances :math:`R_{ii}`.
    k
        The threshold, in standard deviations (positive).
    """
    if not (np.isfinite(k) and k > 0):
        raise ObservationError(f"outlier threshold must be a positive number of standard deviations, got {k!r}")
    Y = np.asarray(Y, dtype=float)
    d = np.asarray(y, dtype=float) - Y.mean(axis=1)              # innovation
    spread = np.sqrt(Y.var(axis=1, ddof=1) + np.asarray(r, dtype=float))  # sqrt(diag(HPH^T) + R_ii)
    return np.abs(d) > k * spread
