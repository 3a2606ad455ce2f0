"""Tests of fdassim.analysis.localization: Gaspari-Cohn taper, distances, adaptive length scales."""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import cdist

from fdassim.analysis.localization import (AdaptiveLocalization, Localization, default_decorrelation_length,
                                           distances, estimate_length_scale, gaspari_cohn)
from fdassim.errors import ConfigError, InputError


def gc_exact(z: Fraction) -> Fraction:
    """Gaspari & Cohn (1999) eq. 4.10 in exact rational arithmetic, written term by term."""
    z = abs(z)
    if z <= 1:
        return -Fraction(1, 4) * z**5 + Fraction(1, 2) * z**4 + Fraction(5, 8) * z**3 - Fraction(5, 3) * z**2 + 1
    if z < 2:
        return (Fraction(1, 12) * z**5 - Fraction(1, 2) * z**4 + Fraction(5, 8) * z**3 + Fraction(5, 3) * z**2
                - 5 * z + 4 - Fraction(2, 3) / z)
    return Fraction(0)


# --- Gaspari-Cohn ---------------------------------------------------------------------------

def test_gaspari_cohn_one_at_zero_and_zero_from_twice_halfwidth():
    assert gaspari_cohn(0.0) == 1.0
    far = np.array([2.0, 2.0 + 1e-12, 2.5, 10.0, np.inf])
    np.testing.assert_array_equal(gaspari_cohn(far), 0.0)
    inside = np.linspace(0.01, 1.99, 199)
    assert np.all(gaspari_cohn(inside) > 0)
    assert np.all(np.diff(gaspari_cohn(inside)) < 0)  # decreasing on (0, 2)


def test_gaspari_cohn_value_at_halfwidth_is_five_24ths():
    # -1/4 + 1/2 + 5/8 - 5/3 + 1 = (-6 + 12 + 15 - 40 + 24) / 24 = 5/24 (both branches agree)
    assert gc_exact(Fraction(1)) == Fraction(5, 24)
    assert gaspari_cohn(1.0) == pytest.approx(5 / 24, abs=1e-15)


def test_gaspari_cohn_matches_exact_rational_evaluation():
    zs = [Fraction(k, 16) for k in range(0, 40)]
    exact = np.array([float(gc_exact(z)) for z in zs])
    got = gaspari_cohn(np.array([float(z) for z in zs]))
    np.testing.assert_allclose(got, exact, rtol=0, atol=2e-15)


def test_gaspari_cohn_symmetric_and_continuous():
    z = np.linspace(0, 3, 301)
    np.testing.assert_array_equal(gaspari_cohn(-z), gaspari_cohn(z))
    h = 1e-7
    for z0 in (1.0, 2.0):  # continuous, with a continuous first derivative, at the branch points
        left, mid, right = gaspari_cohn(np.array([z0 - h, z0, z0 + h]))
        assert abs(left - right) < 1e-6
        assert abs((mid - left) / h - (right - mid) / h) < 1e-5


@pytest.mark.parametrize("c", [0.7, 2.5, 7.3, 20.0])
def test_gaspari_cohn_is_positive_semidefinite_on_1d_grid(c):
    x = np.arange(120.0)
    rho = gaspari_cohn(np.abs(x[:, None] - x[None, :]) / c)
    assert np.linalg.eigvalsh(rho).min() >= -1e-10


def test_gaspari_cohn_is_positive_semidefinite_on_2d_grid():
    g = np.stack(np.meshgrid(np.arange(14.0), np.arange(14.0)), -1).reshape(-1, 2)
    rho = gaspari_cohn(cdist(g, g) / 3.1)
    assert np.linalg.eigvalsh(rho).min() >= -1e-10


def test_gaspari_cohn_nan_raises():
    with pytest.raises(InputError, match="NaN"):
        gaspari_cohn([0.5, np.nan])


# --- distances ------------------------------------------------------------------------------

def test_distances_euclidean_matches_cdist():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 3)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(distances(a, b), cdist(a, b), rtol=1e-14, atol=1e-14)


def test_distances_periodic_lorenz96_ring():
    x = np.arange(40)
    d = distances(x, x, periodic=(40,))
    assert d[0, 39] == 1 and d[0, 20] == 20 and d[5, 30] == 15 and d[38, 1] == 3
    np.testing.assert_array_equal(d, d.T)
    assert d.max() == 20
    # a shift along the ring leaves distances unchanged
    np.testing.assert_array_equal(distances(x, x + 17, periodic=(40,)), np.roll(d, -17, axis=1))


def test_distances_periodic_only_on_marked_axis():
    a, b = np.array([[0.5, 0.0]]), np.array([[9.5, 9.0]])
    assert distances(a, b, periodic=(10.0, None))[0, 0] == pytest.approx(math.hypot(1.0, 9.0))


def test_distances_bad_dimensions_raise():
    with pytest.raises(InputError, match="dimensions"):
        distances(np.zeros((3, 2)), np.zeros((4, 1)))
    with pytest.raises(ConfigError, match="periodic has 1 lengths"):
        distances(np.zeros((3, 2)), np.zeros((4, 2)), periodic=(5.0,))
    with pytest.raises(InputError, match="NaN"):
        distances([0.0, np.nan], [1.0])


# --- Localization ---------------------------------------------------------------------------

def test_localization_tapers_use_gaspari_cohn_of_distance_over_radius():
    loc = Localization(3.0, periodic=(40,))
    rows, obs = np.arange(40), np.array([0.0, 13.0, 39.0])
    expected = gaspari_cohn(distances(rows, obs, (40,)) / 3.0)
    np.testing.assert_array_equal(loc.rho_xo(rows, obs), expected)
    roo = loc.rho_oo(obs)
    np.testing.assert_array_equal(roo, roo.T)
    np.testing.assert_array_equal(np.diag(roo), 1.0)
    assert roo[0, 2] == pytest.approx(float(gc_exact(Fraction(1, 3))))  # ring distance 1
    np.testing.assert_array_equal(Localization(3.0, obs_obs=False).rho_oo(obs), 1.0)
    np.testing.assert_array_equal(Localization(math.inf).rho_xo(rows, obs), 1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": 0.0}, "radius must be a positive"), ({"radius": -2}, "radius must be a positive"),
    ({"radius": float("nan")}, "radius must be a positive"), ({"radius": "5"}, "radius must be a positive"),
    ({"radius": True}, "radius must be a positive"), ({"radius": 1.0, "periodic": (0.0,)}, r"periodic\[0\]"),
    ({"radius": 1.0, "periodic": 40}, "sequence of domain lengths"),
    ({"radius": 1.0, "obs_obs": "False"}, "obs_obs must be True or False"),
])
def test_localization_bad_options_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Localization(**kwargs)


# --- adaptive length scale ------------------------------------------------------------------

def gaussian_field(shape, L, N, seed):
    """Periodic random fields with correlation exp(-d^2 / 2L^2): white noise smoothed by a
    Gaussian kernel of standard deviation s has correlation exp(-d^2 / 4 s^2), so s = L / sqrt(2)."""
    W = np.random.default_rng(seed).standard_normal(shape + (N,))
    s = L / math.sqrt(2.0)
    return gaussian_filter(W, sigma=(s,) * len(shape) + (0,), mode="wrap", truncate=6.0).reshape(-1, N)


# Tolerance: with N = 20 members and 200 (or 48 x 48) points the estimate came within 10% of
# the true length for seeds 0-9 (the binned means average thousands of pairs; the sample
# correlation is biased low by O(1/N)); a factor 1.2 leaves room while still failing for a
# wrong model (e.g. exponential instead of Gaussian, or a missing sqrt(2)).
FACTOR = 1.2


@pytest.mark.parametrize("L", [3.0, 8.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_length_scale_recovers_gaussian_1d_field(L, seed):
    X = gaussian_field((200,), L, 20, seed)
    fit = estimate_length_scale(X, np.arange(200), periodic=(200,))
    assert 1 / FACTOR < fit.length / L < FACTOR
    assert fit.n_fit >= 2


def test_estimate_length_scale_recovers_gaussian_2d_field():
    L, n = 4.0, 48
    X = gaussian_field((n, n), L, 20, seed=5)
    g = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    fit = estimate_length_scale(X, g, periodic=(n, n))
    assert 1 / FACTOR < fit.length / L < FACTOR


def test_estimate_length_scale_recovers_exponential_1d_field():
    # AR(1) along the line: correlation phi^d = exp(-d / L)
    L, n, N = 6.0, 300, 20
    rng = np.random.default_rng(7)
    phi = math.exp(-1.0 / L)
    X = np.empty((n, N))
    X[0] = rng.standard_normal(N)
    for t in range(1, n):
        X[t] = phi * X[t - 1] + math.sqrt(1 - phi**2) * rng.standard_normal(N)
    fit = estimate_length_scale(X, np.arange(n), model="exponential")
    assert 1 / FACTOR < fit.length / L < FACTOR


def test_estimate_length_scale_is_a_pure_function_of_rows_and_coords():
    X = gaussian_field((150,), 5.0, 15, seed=3)
    x = np.arange(150.0)
    perm = np.random.default_rng(0).permutation(150)
    a = estimate_length_scale(X, x, periodic=(150,))
    assert estimate_length_scale(X, x, periodic=(150,)).length == a.length
    assert estimate_length_scale(X[perm], x[perm], periodic=(150,)).length == pytest.approx(a.length, rel=1e-10)


def test_estimate_length_scale_white_noise_is_below_grid_spacing():
    # uncorrelated rows: the first bin (distance 1 with 100 bins) is already at the noise level,
    # so the length is the upper bound that puts the model at the noise level there
    X = np.random.default_rng(1).standard_normal((200, 20))
    fit = estimate_length_scale(X, np.arange(200), nbins=100)
    assert fit.correlation[0] <= fit.noise and fit.n_fit == 1
    assert fit.length < 1.0


def test_correlation_length_radius_rules():
    X = gaussian_field((200,), 5.0, 20, seed=0)
    fit = estimate_length_scale(X, np.arange(200), periodic=(200,))
    assert fit.radius("curvature") == pytest.approx(math.sqrt(10 / 3) * fit.length)
    c = fit.radius("noise")
    # at the taper's half-value point the fitted correlation c* solves c*/(1 - c*^2) = 1/sqrt(N-1)
    grid = np.linspace(0, 2 * c, 20001)
    d_half = grid[np.argmin(np.abs(gaspari_cohn(grid / c) - 0.5))]
    cs = float(fit.correlation_at(d_half))
    assert cs / (1 - cs**2) == pytest.approx(1 / math.sqrt(19), rel=1e-3)
    X100 = gaussian_field((200,), 5.0, 100, seed=0)
    assert estimate_length_scale(X100, np.arange(200), periodic=(200,)).radius("noise") > c


def test_adaptive_localization_resolves_to_fitted_radius():
    X = gaussian_field((200,), 4.0, 20, seed=2)
    loc = AdaptiveLocalization(periodic=(200,), obs_obs=False).resolve(X, np.arange(200))
    fit = estimate_length_scale(X, np.arange(200), periodic=(200,))
    assert loc == Localization(fit.radius("noise"), (200.0,), False)


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "spherical"}, "model must be one of"), ({"rule": "optimal"}, "rule must be one of"),
    ({"model": "exponential", "rule": "curvature"}, "needs model='gaussian'"),
    ({"obs_obs": 1}, "obs_obs must be"),
])
def test_adaptive_localization_bad_options_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AdaptiveLocalization(**kwargs)


def test_estimate_length_scale_bad_input_raises():
    X = np.random.default_rng(0).standard_normal((10, 5))
    with pytest.raises(InputError, match="coords has 9 points"):
        estimate_length_scale(X, np.arange(9))
    with pytest.raises(InputError, match="finite"):
        estimate_length_scale(np.where(X > 1, np.nan, X), np.arange(10))
    with pytest.raises(InputError, match="at least 3 rows with ensemble spread"):
        estimate_length_scale(np.ones((10, 5)), np.arange(10))
    with pytest.raises(ConfigError, match="nbins"):
        estimate_length_scale(X, np.arange(10), nbins=0)


def test_default_decorrelation_length():
    assert default_decorrelation_length(100.0, 50.0, 9, 4) == pytest.approx(math.sqrt(5000 / 37))
    with pytest.raises(ConfigError, match="nx must be a positive"):
        default_decorrelation_length(1.0, 1.0, 0, 3)


def test_correlation_length_threshold_rule_cuts_off_where_correlation_dies():
    # a Gaussian correlation exp(-d^2/2L^2) falls to 0.1 at d = L sqrt(2 ln 10) = 2.146 L; the
    # taper's support 2c is the first bin below 0.1, so within a bin width (and the sampling
    # bias of N = 40) of that distance
    L = 5.0
    X = gaussian_field((300,), L, 40, seed=4)
    fit = estimate_length_scale(X, np.arange(300), periodic=(300,), nbins=60)
    width = fit.distance[1] - fit.distance[0]
    c = fit.radius("threshold")
    assert abs(2 * c - L * math.sqrt(2 * math.log(10))) < 1.5 * width
    assert fit.correlation[np.searchsorted(fit.distance, 2 * c) - 1] >= 0.1
    loc = AdaptiveLocalization(rule="threshold", nbins=60, periodic=(300,)).resolve(X, np.arange(300))
    assert loc.radius == pytest.approx(c)
