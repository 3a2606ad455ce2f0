"""Bounded parameters: the Beta model keeps every member in bounds with the ensemble's mean
and variance; the under-relaxed update follows ICESEE's alpha(t)."""

import numpy as np
import pytest

from fdassim.errors import ConfigError
from fdassim.parameters import BetaBounds, Clip, UnderRelaxed, beta_quantiles


def test_beta_quantiles_keep_bounds_mean_variance_and_order():
    rng = np.random.default_rng(0)
    X = 0.5 + 0.1 * rng.standard_normal((5, 400))
    a, b = np.zeros(5), np.ones(5)
    Z = beta_quantiles(X, a, b)
    assert np.all((Z > 0) & (Z < 1))
    # quantiles at (r + 1/2)/N of the moment-matched Beta: mean and variance to O(1/N)
    np.testing.assert_allclose(Z.mean(axis=1), X.mean(axis=1), atol=2e-3)
    np.testing.assert_allclose(Z.var(axis=1, ddof=1), X.var(axis=1, ddof=1), rtol=0.05)
    np.testing.assert_array_equal(np.argsort(Z, axis=1), np.argsort(X, axis=1))  # ranks kept


def test_beta_bounds_only_rows_that_leave_them():
    X = np.array([[0.2, 0.5, 0.7], [0.2, 0.5, 1.4]])
    out = BetaBounds("s", 0.0, 1.0).apply(X, X, 1.0, 1.0)
    np.testing.assert_array_equal(out[0], X[0])
    assert np.all((out[1] >= 0) & (out[1] <= 1)) and np.argsort(out[1]).tolist() == [0, 1, 2]
    prev = np.array([[0.0, 1.0, 2.0]])
    out = BetaBounds("s").apply(np.array([[-5.0, 1.0, 2.0]]), prev, 1.0, 1.0)  # bounds from prev: [-1, 3]
    assert out.min() >= -1.0 and out.max() <= 3.0


def test_clip():
    np.testing.assert_array_equal(Clip("s", 0.0, 1.0).apply(np.array([[-1.0, 0.5, 2.0]]), None, 0, 1), [[0, 0.5, 1]])


def test_under_relaxed_alpha_and_update():
    u = UnderRelaxed("bed", eta=0.1, beta=lambda t: 0.05 * t, sigma_b=0.2, rho=0.5)
    # alpha = (eta + beta_t) dt + sqrt(dt) sigma_b rho = (0.1 + 0.1) 0.5 + sqrt(0.5) 0.1
    assert u.alpha(2.0, 0.5) == pytest.approx(0.1 + np.sqrt(0.5) * 0.1)
    assert u.alpha(100.0, 0.5) == 0.5  # capped
    Xf, Xa = np.zeros((2, 3)), np.ones((2, 3))
    np.testing.assert_allclose(u.apply(Xa, Xf, 2.0, 0.5), np.full((2, 3), u.alpha(2.0, 0.5)))


@pytest.mark.parametrize("make, match", [
    (lambda: Clip("s", 1.0, 0.0), r"Clip\('s'\): lower 1.0 must be below upper 0.0"),
    (lambda: BetaBounds("s", 0.0), r"BetaBounds\('s'\): give both lower and upper, or neither"),
    (lambda: UnderRelaxed("b", cap=2.0), r"UnderRelaxed\('b'\): cap must be in \(0, 1\], got 2.0"),
])
def test_parameter_bad_settings(make, match):
    with pytest.raises(ConfigError, match=match):
        make()
