"""Fixtures of the analysis tests."""

import pytest

from lingauss import LinGauss, make_lingauss


@pytest.fixture(params=[False, True], ids=["diagR", "fullR"])
def lingauss(request) -> LinGauss:
    """A small linear-Gaussian problem (n = 5, m = 3), with diagonal and with full R."""
    return make_lingauss(full_R=request.param)
