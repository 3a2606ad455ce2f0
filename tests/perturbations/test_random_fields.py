"""Random fields: statistics over many draws (mean, variance, correlation at one length) within
stated tolerances; conditioning honours the observations; a field does not depend on which
points are asked for, hence not on how a mesh is split."""

import numpy as np
import pytest

pytest.importorskip("gstools", reason="gstools is not installed (make install)")

from fdassim.errors import ConfigError  # noqa: E402
from fdassim.perturbations import PseudoRandomField, RandomField, icesee_length  # noqa: E402

# pairs of points at distance L apart, far enough from each other to be nearly independent
L = 0.2
A = np.array([[0.1 + 0.3 * i, 0.1 + 0.3 * j] for i in range(3) for j in range(3)])
B = A + [L, 0.0]
S = 400  # draws


def _draws(sample):
    rng = np.random.default_rng(5)
    return np.array([sample(np.vstack([A, B]), rng) for _ in range(S)])  # (S, 18)


def _check(Z, std, rho):
    """Mean, variance and correlation at distance L, pooled over 9 point pairs x S draws.

    Sampling tolerances (4 standard errors, the pairs treated as independent: 9 S ~ 3600
    values; the points are 0.3 apart, more than a length, so this is nearly true):
    mean 4 sigma / sqrt(3600) = 0.067 sigma; variance 4 sqrt(2/3600) = 9.4 %; correlation
    4 (1 - rho^2) / sqrt(3600).
    """
    n = Z.size / 2
    za, zb = Z[:, :9].ravel(), Z[:, 9:].ravel()
    allz = Z.ravel()
    assert abs(allz.mean()) < 4 * std / np.sqrt(n)
    assert abs(allz.var() / std ** 2 - 1) < 4 * np.sqrt(2 / n)
    r = np.corrcoef(za, zb)[0, 1]
    assert abs(r - rho) < 4 * (1 - rho ** 2) / np.sqrt(n) + 0.02  # + 0.02: finite modes / grid


@pytest.mark.parametrize("model", ["gaussian", "exponential"])
def test_random_field_statistics(model):
    f = RandomField(model, std=2.0, length=L)
    _check(_draws(f.sample), 2.0, float(f.correlation(L)))


def test_random_field_anisotropic_length_per_direction():
    f = RandomField("gaussian", std=1.0, length=(L, L / 4))
    Z = _draws(f.sample)
    _check(Z, 1.0, float(np.exp(-np.pi / 4)))  # along x the length is L
    rng = np.random.default_rng(2)
    Zy = np.array([f.sample(np.vstack([A, A + [0.0, L]]), rng) for _ in range(S)])
    r = np.corrcoef(Zy[:, :9].ravel(), Zy[:, 9:].ravel())[0, 1]
    assert abs(r - np.exp(-np.pi / 4 * 16)) < 0.1  # across, L is 4 lengths: nearly uncorrelated


def test_evensen_field_statistics_and_icesee_default_length():
    f = PseudoRandomField(std=1.5, length=L)
    sample = lambda xy, rng: f.sample(xy, rng, [0.0, 0.0], [1.0, 1.0])  # noqa: E731
    _check(_draws(sample), 1.5, np.exp(-1.0))  # correlation 1/e at the decorrelation length
    assert icesee_length([0, 0], [40e3, 20e3], 40, 20) == pytest.approx(np.sqrt(800e6 / 801))
    g = PseudoRandomField(std=1.0, resolution=(40, 20))
    assert g.decorrelation_length([0, 0], [40e3, 20e3]) == pytest.approx(999.375, rel=1e-4)


@pytest.mark.parametrize("field", [RandomField("gaussian", std=1.0, length=L), PseudoRandomField(std=1.0, length=L)],
                         ids=["gstools", "evensen"])
def test_random_field_value_at_a_point_does_not_depend_on_the_other_points(field):
    """Bitwise: a rank asking for its own nodes gets the values the whole mesh gets."""
    xy = np.random.default_rng(0).uniform(0, 1, (50, 2))
    args = ([0.0, 0.0], [1.0, 1.0]) if isinstance(field, PseudoRandomField) else ()
    whole = field.sample(xy, np.random.default_rng(9), *args)
    part = field.sample(xy[17:31], np.random.default_rng(9), *args)
    np.testing.assert_array_equal(part, whole[17:31])


def test_conditioned_field_honours_observations():
    f = RandomField("gaussian", std=1.0, length=L)
    pos = np.array([[0.3, 0.5], [0.7, 0.5]])
    vals = np.array([2.0, -1.0])
    rng = np.random.default_rng(4)
    far = np.array([[5.0, 5.0]])  # 20 lengths away: the unconditioned statistics
    Z = np.array([f.conditioned(np.vstack([pos, far]), rng, pos, vals, mean=0.0) for _ in range(200)])
    np.testing.assert_allclose(Z[:, :2], np.broadcast_to(vals, (200, 2)), atol=1e-6)  # exact data
    assert abs(Z[:, 2].std() - 1.0) < 4 * np.sqrt(1 / 400)  # std within 4 standard errors
    noisy = np.array([f.conditioned(pos, rng, pos, vals, error=0.5, mean=0.0) for _ in range(200)])
    assert 0.2 < noisy[:, 0].std() < 0.6  # near the data: within about the data's error


@pytest.mark.parametrize("make, match", [
    (lambda: RandomField("matern", std=1.0), r"model: 'matern' is not known"),
    (lambda: RandomField("gaussian", std=0.0), r"std: must be positive"),
    (lambda: RandomField("gaussian", length=-1.0), r"length: must be positive"),
    (lambda: PseudoRandomField(std=1.0), r"length: give a decorrelation length, or resolution"),
])
def test_random_field_bad_settings(make, match):
    with pytest.raises(ConfigError, match=match):
        make()
