"""Quality control: DART's outlier check, by hand."""

import numpy as np
import pytest

from fdassim.errors import ObservationError
from fdassim.observations.qc import outliers


def test_outliers_by_hand():
    Y = np.array([[0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])   # means 1, 1, 0; variances (ddof 1) 2, 0, 0
    y = np.array([1.0 + 3 * np.sqrt(3.0) - 1e-9, 4.1, -3.0])
    r = np.array([1.0, 1.0, 1.0])                       # spreads sqrt(3), 1, 1
    # |d| = 3 sqrt(3) - 1e-9 < 3 sqrt(3): kept; 3.1 > 3: rejected; 3.0 is not > 3: kept
    assert outliers(Y, y, r, 3.0).tolist() == [False, True, False]


def test_outliers_bad_threshold():
    with pytest.raises(ObservationError, match=r"outlier threshold must be a positive number of standard deviations, "
                                               r"got 0.0"):
        outliers(np.zeros((1, 2)), np.zeros(1), np.ones(1), 0.0)
