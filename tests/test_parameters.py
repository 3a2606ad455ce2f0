"""Bounded parameters: the Beta model keeps every member in bounds with the ensemble's mean
and variance; the under-relaxed update follows ICESEE's alpha(t)."""

import numpy as np
import pytest

from fdassim.errors import ConfigError
from fdassim.parameters import BetaBounds, Clip, Observed, ParameterContext, UnderRelaxed, beta_quantiles


def _ctx(**kw):
    return ParameterContext(t=kw.pop("t", 1.0), dt=kw.pop("dt", 1.0), **kw)


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
    out = BetaBounds("s", 0.0, 1.0).apply(X, X, _ctx())
    np.testing.assert_array_equal(out[0], X[0])
    assert np.all((out[1] >= 0) & (out[1] <= 1)) and np.argsort(out[1]).tolist() == [0, 1, 2]


def test_beta_bounds_mean_outside_or_bounds_of_no_width():
    """A row whose mean lies beyond a bound is redrawn around a mean 5 % of the width inside
    it, keeping a spread; a row whose bounds have no width (collapsed ensembles) is clipped."""
    X = np.array([[1.5, 1.8, 2.0, 2.4]])  # mean 1.925 > upper 1
    out = BetaBounds("s", 0.0, 1.0).apply(X, X, _ctx())
    assert np.all((out > 0) & (out < 1)) and np.isfinite(out).all()
    assert out.mean() == pytest.approx(0.95, abs=0.02) and out.std() > 0.01
    flat = np.full((1, 4), 2.0)
    Xa = np.array([[1.9, 2.0, 2.1, 2.2]])
    out = BetaBounds("s").apply(Xa, flat, _ctx(previous=flat))  # bounds [2, 2]
    np.testing.assert_array_equal(out, np.full((1, 4), 2.0))


def test_beta_bounds_from_the_current_and_previous_ensembles():
    """No given bounds: the range of the forecast and of the ensemble it started from,
    widened by margin x the larger standard deviation. Forecast [0, 1, 2] (sd 1) and previous
    [-1, 0, 1] (sd 1): bounds [-1 - 1, 2 + 1] = [-2, 3]."""
    Xf, prev = np.array([[0.0, 1.0, 2.0]]), np.array([[-1.0, 0.0, 1.0]])
    a, b = BetaBounds("s").bounds(Xf, _ctx(previous=prev))
    np.testing.assert_allclose([a[0], b[0]], [-2.0, 3.0])
    out = BetaBounds("s").apply(np.array([[-5.0, 1.0, 2.5]]), Xf, _ctx(previous=prev))
    assert out.min() >= -2.0 and out.max() <= 3.0 and np.argsort(out[0]).tolist() == [0, 1, 2]
    inside = np.array([[-1.9, 1.0, 2.9]])  # inside: untouched
    np.testing.assert_array_equal(BetaBounds("s").apply(inside, Xf, _ctx(previous=prev)), inside)


def test_beta_bounds_from_observations_where_observed():
    """Rows within the radius of an observation site get y -/+ width sigma (within the given
    bounds); the others keep the given bounds. Sites at x = 0 and 10 (radius: half their
    spacing, 5); rows at x = 1 (near site 0), 9.5 (near site 1) and 30 (far)."""
    coords = np.array([[1.0], [9.5], [30.0]])
    obs = {"bed": Observed(positions=np.array([[0.0], [10.0]]), values=np.array([5.0, 50.0]),
                           std=np.array([1.0, 2.0]))}
    p = BetaBounds("b", lower=0.0, upper=52.0, observed="bed", width=3.0)
    a, b = p.bounds(np.zeros((3, 4)), _ctx(coords=coords, observed=obs))
    np.testing.assert_allclose(a, [2.0, 44.0, 0.0])
    np.testing.assert_allclose(b, [8.0, 52.0, 52.0])  # 50 + 3 x 2 = 56, within upper 52
    Xa = np.array([[4.0, 5.0, 9.0, 6.0], [45.0, 46.0, 47.0, 48.0], [10.0, 20.0, 30.0, 60.0]])
    out = p.apply(Xa, Xa, _ctx(coords=coords, observed=obs))
    assert np.all((out[0] >= 2.0) & (out[0] <= 8.0)) and np.argsort(out[0]).tolist() == [0, 1, 3, 2]
    np.testing.assert_array_equal(out[1], Xa[1])  # inside its bounds
    assert np.all((out[2] >= 0.0) & (out[2] <= 52.0))
    # not observed at this analysis: the given bounds everywhere
    a, b = p.bounds(np.zeros((3, 4)), _ctx(coords=coords))
    np.testing.assert_array_equal(a, 0.0)
    np.testing.assert_array_equal(b, 52.0)
    with pytest.raises(ConfigError, match=r"BetaBounds\('b'\): bounds from observations need the positions"):
        p.bounds(np.zeros((3, 4)), _ctx(observed=obs))


def test_clip():
    np.testing.assert_array_equal(Clip("s", 0.0, 1.0).apply(np.array([[-1.0, 0.5, 2.0]]), None, _ctx()), [[0, 0.5, 1]])


def test_under_relaxed_alpha_and_update():
    u = UnderRelaxed("bed", eta=0.1, beta=lambda t: 0.05 * t, sigma_b=0.2, rho=0.5)
    # alpha = (eta + beta_t) dt + sqrt(dt) sigma_b rho = (0.1 + 0.1) 0.5 + sqrt(0.5) 0.1
    assert u.alpha(2.0, 0.5) == pytest.approx(0.1 + np.sqrt(0.5) * 0.1)
    assert u.alpha(100.0, 0.5) == 0.5  # capped
    Xf, Xa = np.zeros((2, 3)), np.ones((2, 3))
    np.testing.assert_allclose(u.apply(Xa, Xf, _ctx(t=2.0, dt=0.5)), np.full((2, 3), u.alpha(2.0, 0.5)))


@pytest.mark.parametrize("make, match", [
    (lambda: Clip("s", 1.0, 0.0), r"Clip\('s'\): lower 1.0 must be below upper 0.0"),
    (lambda: BetaBounds("s", 0.0), r"BetaBounds\('s'\): give both lower and upper, or neither"),
    (lambda: UnderRelaxed("b", cap=2.0), r"UnderRelaxed\('b'\): cap must be in \(0, 1\], got 2.0"),
    (lambda: BetaBounds("s", width=0.0), r"BetaBounds\('s'\): width must be a positive number of standard"),
    (lambda: BetaBounds("s", radius=-1.0), r"BetaBounds\('s'\): radius must be a distance >= 0, got -1.0"),
])
def test_parameter_bad_settings(make, match):
    with pytest.raises(ConfigError, match=match):
        make()
