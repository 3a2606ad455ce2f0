"""Random fields: statistics over many draws (mean, variance, correlation at one length) within
stated tolerances; conditioning honours the observations; a field does not depend on which
points are asked for, hence not on how a mesh is split."""

import numpy as np
import pytest

pytest.importorskip("gstools", reason="gstools is not installed (make install)")

from fdassim.errors import ConfigError  # noqa: E402
from fdassim.perturbations import PseudoRandomField, RandomField, icesee_length  # noqa: E402

# 50 pairs of points at distance L apart, the pairs 5 L from each other (nearly independent:
# correlation exp(-5) or less), so that one draw gives 50 samples; gstools' cost is per draw
L = 0.2
A = np.array([[5 * L * i, 5 * L * j] for i in range(10) for j in range(5)])
B = A + [L, 0.0]
S = 80  # draws: 4000 samples of each statistic


def _draws(sample, a=A, b=B):
    rng = np.random.default_rng(5)
    return np.array([sample(np.vstack([a, b]), rng) for _ in range(S)])  # (S, 100)


def _check(Z, std, rho):
    """Mean, variance and correlation at distance L, pooled over 50 point pairs x S draws.

    Sampling tolerances (4 standard errors, the n = 50 S = 4000 pairs treated as
    independent): mean 4 sigma / sqrt(n) = 0.063 sigma; variance 4 sqrt(2 / n) = 8.9 %;
    correlation 4 (1 - rho^2) / sqrt(n), + 0.02 for the finite modes or grid.
    """
    n = Z.size / 2
    za, zb = Z[:, :50].ravel(), Z[:, 50:].ravel()
    allz = Z.ravel()
    assert abs(allz.mean()) < 4 * std / np.sqrt(n)
    assert abs(allz.var() / std ** 2 - 1) < 4 * np.sqrt(2 / n)
    r = np.corrcoef(za, zb)[0, 1]
    assert abs(r - rho) < 4 * (1 - rho ** 2) / np.sqrt(n) + 0.02


@pytest.mark.parametrize("model", ["gaussian", "exponential"])
def test_random_field_statistics(model):
    f = RandomField(model, std=2.0, length=L)
    _check(_draws(f.sample), 2.0, float(f.correlation(L)))


def test_random_field_anisotropic_length_per_direction():
    f = RandomField("gaussian", std=1.0, length=(L, L / 4))
    _check(_draws(f.sample), 1.0, float(np.exp(-np.pi / 4)))  # along x the length is L
    Zy = _draws(f.sample, b=A + [0.0, L])
    r = np.corrcoef(Zy[:, :50].ravel(), Zy[:, 50:].ravel())[0, 1]
    assert abs(r - np.exp(-np.pi / 4 * 16)) < 0.07  # across, L is 4 lengths: uncorrelated (4 SE)


def test_evensen_field_statistics_and_icesee_default_length():
    f = PseudoRandomField(std=1.5, length=L)
    # its correlation falls as exp(-(r / L)^2): pairs 2.5 L apart (exp(-6)) on a smaller grid
    a = A / 2
    sample = lambda xy, rng: f.sample(xy, rng, [0.0, 0.0], [5.0, 2.5])  # noqa: E731  (holds a and a + L)
    _check(_draws(sample, a, a + [L, 0.0]), 1.5, np.exp(-1.0))  # correlation 1/e at the decorrelation length
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
    """Exact data are honoured; noisy data give the simple-kriging posterior (mean and
    standard deviation within 4 standard errors of the exact Gaussian conditioning); far from
    the data the field keeps its own statistics."""
    f = RandomField("gaussian", std=1.0, length=L)
    pos = np.array([[0.3, 0.5], [0.7, 0.5]])
    vals = np.array([2.0, -1.0])
    rng = np.random.default_rng(4)
    far = A + [20.0, 20.0]  # 50 points, 100 lengths away or more
    Z = np.array([f.conditioned(np.vstack([pos, far]), rng, pos, vals, mean=0.0) for _ in range(20)])
    np.testing.assert_allclose(Z[:, :2], np.broadcast_to(vals, (20, 2)), atol=1e-6)  # exact data
    assert abs(Z[:, 2:].std() - 1.0) < 4 * np.sqrt(1 / (2 * Z[:, 2:].size))
    S_n = 60
    noisy = np.array([f.conditioned(pos, rng, pos, vals, error=0.5, mean=0.0) for _ in range(S_n)])
    C = np.exp(-np.pi / 4 * (np.abs(pos[:, None, 0] - pos[None, :, 0]) / L) ** 2)  # prior covariance
    gain = C @ np.linalg.inv(C + 0.25 * np.eye(2))
    mean, sd = gain @ vals, np.sqrt(np.diag(C - gain @ C))  # the exact posterior
    np.testing.assert_array_less(np.abs(noisy.mean(axis=0) - mean), 4 * sd / np.sqrt(S_n))
    np.testing.assert_array_less(np.abs(noisy.std(axis=0) - sd), 4 * sd / np.sqrt(2 * S_n))


@pytest.mark.parametrize("make, match", [
    (lambda: RandomField("matern", std=1.0), r"model: 'matern' is not known"),
    (lambda: RandomField("gaussian", std=0.0), r"std: must be positive"),
    (lambda: RandomField("gaussian", length=-1.0), r"length: must be positive"),
    (lambda: PseudoRandomField(std=1.0), r"length: give a decorrelation length, or resolution"),
])
def test_random_field_bad_settings(make, match):
    with pytest.raises(ConfigError, match=match):
        make()
