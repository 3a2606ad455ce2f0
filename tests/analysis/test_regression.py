"""Tests of fdassim.analysis.regression: sequential and parallel regression filters."""

import dataclasses
import math

import numpy as np
import pytest

from fdassim.analysis import AnalysisContext, ObsError, Rows
from fdassim.analysis.localization import AdaptiveLocalization, Localization, distances, gaspari_cohn
from fdassim.analysis.regression import (Increments, RegressionFilter, obs_increments, regress, regress_rows,
                                         regression_parallel)
from fdassim.errors import ConfigError, InputError, ObservationError

N_STATE, N_OBS, N_MEM = 12, 8, 10
OBS_AT = np.array([0, 2, 3, 5, 7, 8, 10, 11])


def ring_setup(seed=0, N=N_MEM):
    """12 variables on a ring (period 12), 8 observations of a variable plus 0.3 x its neighbour."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((N_STATE, N_STATE))
    X = rng.standard_normal(N_STATE)[:, None] + G @ rng.standard_normal((N_STATE, N)) / 3
    H = np.eye(N_STATE)[OBS_AT] + 0.3 * np.eye(N_STATE)[(OBS_AT + 1) % N_STATE]
    y = H @ X.mean(axis=1) + rng.standard_normal(N_OBS)
    R = ObsError.diagonal(rng.uniform(0.3, 1.0, N_OBS))
    rows = Rows.whole(N_STATE, coords=np.arange(N_STATE))
    ctx = AnalysisContext(seed=5, cycle=2, obs_coords=OBS_AT.astype(float))
    return X, H @ X, y, R, rows, ctx


def contiguous(sizes):
    edges = np.cumsum([0, *sizes])
    return [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])]


# (state blocks, observation blocks): one block per process, the same number of processes
SPLITS = {
    "1 process": (contiguous([12]), contiguous([8])),
    "2 processes": (contiguous([6, 6]), contiguous([4, 4])),
    "3 processes": (contiguous([4, 4, 4]), contiguous([3, 3, 2])),
    "uneven": (contiguous([1, 8, 3]), contiguous([5, 0, 3])),
    "round robin": ([np.arange(p, 12, 3) for p in range(3)], [np.arange(p, 8, 3) for p in range(3)]),
    "one row per block": (contiguous([1] * 12), contiguous([1] * 8 + [0] * 4)),
}
SCHEMES = {
    "eakf": RegressionFilter(),
    "perturbed": RegressionFilter("perturbed"),
    "eakf localized": RegressionFilter(localization=Localization(2.5, periodic=(12,))),
    "perturbed localized": RegressionFilter(Increments.PERTURBED, Localization(1.5, periodic=(12,), obs_obs=False)),
    "eakf adaptive": RegressionFilter(localization=AdaptiveLocalization(periodic=(12,), nbins=4)),
}


def test_regression_eakf_matches_kalman_with_exact_prior(lingauss):
    X = lingauss.ensemble(20)
    Xa = RegressionFilter().analyse(X, lingauss.H @ X, lingauss.y, lingauss.R)
    np.testing.assert_allclose(Xa.mean(axis=1), lingauss.xa, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.cov(Xa), lingauss.Pa, rtol=0, atol=1e-10)


def test_regression_perturbed_obs_large_ensemble_matches_kalman(lingauss):
    # Plain sample prior, N = 5000; tolerances as in test_lenkf (6 and 8 sampling units: over
    # seeds 0-19 the largest errors were 3.9 and 5.1).
    N = 5000
    X = lingauss.ensemble(N, seed=11, exact=False)
    Xa = RegressionFilter("perturbed").analyse(X, lingauss.H @ X, lingauss.y, lingauss.R,
                                               context=AnalysisContext(seed=4))
    sd = np.sqrt(np.diag(lingauss.Pa))
    assert np.max(np.abs(Xa.mean(axis=1) - lingauss.xa) / sd) < 6 / math.sqrt(N)
    assert np.max(np.abs(np.cov(Xa) - lingauss.Pa) / np.outer(sd, sd)) < 8 / math.sqrt(N)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_regression_parallel_equals_sequential(scheme, split):
    X, Y, y, R, rows, ctx = ring_setup()
    sblocks, oblocks = SPLITS[split]
    seq = SCHEMES[scheme].analyse(X, Y, y, R, rows, ctx)
    par = regression_parallel(X, Y, y, R, sblocks, oblocks, scheme=SCHEMES[scheme], rows=rows, context=ctx)
    assert np.abs(par - seq).max() <= 1e-12
    assert np.array_equal(par, seq)  # bitwise: both paths run the same row-local formulas
    assert not np.allclose(seq, X)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("cuts", [[], [6], [1, 9], list(range(1, 12))])
def test_regression_apply_on_row_blocks_equals_whole(scheme, cuts):
    X, Y, y, R, rows, ctx = ring_setup(1)
    up = SCHEMES[scheme].prepare(Y, y, R, ctx)
    edges = [0, *cuts, N_STATE]
    parts = [up.apply(X[a:b], rows.block(a, b)) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_array_equal(np.vstack(parts), up.apply(X, rows))


def test_regression_full_R_whitened_matches_kalman_and_parallel(lingauss):
    X = lingauss.ensemble(20)
    Y = lingauss.H @ X
    seq = RegressionFilter().analyse(X, Y, lingauss.y, lingauss.R)
    par = regression_parallel(X, Y, lingauss.y, lingauss.R, contiguous([2, 3]), contiguous([1, 2]))
    np.testing.assert_array_equal(par, seq)
    np.testing.assert_allclose(seq.mean(axis=1), lingauss.xa, rtol=0, atol=1e-10)


def test_regression_localization_limits_influence():
    X, Y, y, R, rows, ctx = ring_setup(2)
    s = RegressionFilter(localization=Localization(1.0, periodic=(12,)))
    Xa = s.analyse(X, Y[:1], y[:1], ObsError.diagonal(R.var[:1]), rows,
                   AnalysisContext(obs_coords=OBS_AT[:1].astype(float)))
    far = np.array([min(i, 12 - i) >= 2 for i in range(12)])  # ring distance from x=0 >= 2c
    np.testing.assert_array_equal(Xa[far], X[far])
    assert np.all(np.abs(Xa[~far] - X[~far]).max(axis=1) > 0)


@pytest.mark.parametrize("obs_obs", [True, False])
def test_regression_later_obs_priors_regressed_with_obs_obs_taper(obs_obs):
    # the prior of observation 1 when processed = Y[1] + rho_01 cov(Y1, Y0)/var(Y0) dY[0]
    X, Y, y, R, rows, ctx = ring_setup(5)
    c = 2.5
    up = RegressionFilter(localization=Localization(c, periodic=(12,), obs_obs=obs_obs)).prepare(Y, y, R, ctx)
    rho01 = gaspari_cohn(abs(OBS_AT[1] - OBS_AT[0]) / c) if obs_obs else 1.0
    beta = np.cov(Y[1], Y[0])[0, 1] / np.var(Y[0], ddof=1)
    np.testing.assert_allclose(up.Yp[1], Y[1] + rho01 * beta * up.dY[0], rtol=1e-12, atol=1e-12)
    # and the state row x_1 after observation 0 alone (distance 1)
    one = RegressionFilter(localization=Localization(c, periodic=(12,), obs_obs=obs_obs))
    Xa = one.analyse(X, Y[:1], y[:1], ObsError.diagonal(R.var[:1]), rows,
                     AnalysisContext(obs_coords=OBS_AT[:1].astype(float)))
    b1 = np.cov(X[1], Y[0])[0, 1] / np.var(Y[0], ddof=1)
    np.testing.assert_allclose(Xa[1], X[1] + gaspari_cohn(1 / c) * b1 * up.dY[0], rtol=1e-12, atol=1e-12)


def test_regression_huge_radius_equals_unlocalized():
    X, Y, y, R, rows, ctx = ring_setup(3)
    plain = RegressionFilter().analyse(X, Y, y, R, rows, ctx)
    huge = RegressionFilter(localization=Localization(1e12)).analyse(X, Y, y, R, rows, ctx)
    np.testing.assert_allclose(huge, plain, rtol=0, atol=1e-10)


def test_regression_perturbed_increments_use_member_draws():
    X, Y, y, R, rows, ctx = ring_setup(4)
    up = RegressionFilter("perturbed").prepare(Y, y, R, ctx)
    y0 = Y[0]
    var = np.var(y0, ddof=1)
    eps = ctx.perturbation_normals(N_OBS, N_MEM)[0]  # centred over members
    expected = var / (var + R.var[0]) * (y[0] + math.sqrt(R.var[0]) * eps - y0)
    np.testing.assert_allclose(up.dY[0], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(up.Yp[0], y0)


def test_regression_eakf_increments_give_scalar_kalman_moments():
    X, Y, y, R, rows, ctx = ring_setup(6)
    up = RegressionFilter().prepare(Y, y, R, ctx)
    for k in range(N_OBS):  # each observation: posterior mean and variance of the scalar Kalman filter
        prior, post = up.Yp[k], up.Yp[k] + up.dY[k]
        vp, r = np.var(prior, ddof=1), R.var[k]
        assert np.var(post, ddof=1) == pytest.approx(vp * r / (vp + r), rel=1e-12)
        assert post.mean() == pytest.approx(prior.mean() + vp / (vp + r) * (y[k] - prior.mean()), rel=1e-12)


@pytest.mark.parametrize("scheme", ["eakf", "perturbed", "eakf localized"])
def test_regression_nonlinear_H_moves_toward_observations(scheme):
    rng = np.random.default_rng(8)
    X = 1.0 + 0.5 * rng.standard_normal((N_STATE, 40))

    def h(X):
        return X[OBS_AT] + 0.2 * X[OBS_AT] ** 3

    truth = 1.0 + 0.5 * rng.standard_normal(N_STATE)
    y = h(truth[:, None])[:, 0] + 0.1 * rng.standard_normal(N_OBS)
    R = ObsError.from_std(np.full(N_OBS, 0.1))
    rows = Rows.whole(N_STATE, coords=np.arange(N_STATE))
    Xa = SCHEMES[scheme].analyse(X, h(X), y, R, rows, AnalysisContext(obs_coords=OBS_AT.astype(float)))
    assert np.all(np.isfinite(Xa))
    prior_misfit = np.linalg.norm(h(X).mean(axis=1) - y)
    assert np.linalg.norm(h(Xa).mean(axis=1) - y) < 0.5 * prior_misfit


def test_regression_full_R_with_localization_raises():
    X, Y, y, R, rows, ctx = ring_setup()
    full = ObsError.full(np.diag(R.var) + 0.1 * np.eye(N_OBS, k=1) + 0.1 * np.eye(N_OBS, k=-1))
    s = RegressionFilter(localization=Localization(2.0, periodic=(12,)))
    with pytest.raises(ObservationError, match="cannot localize with a full R"):
        s.prepare(Y, y, full, ctx)


def test_regression_bad_inputs_raise():
    X, Y, y, R, rows, ctx = ring_setup()
    s = RegressionFilter(localization=Localization(2.0, periodic=(12,)))
    with pytest.raises(InputError, match=r"rows.coords is None: pass Rows.whole"):
        s.analyse(X, Y, y, R, Rows.whole(N_STATE), ctx)
    with pytest.raises(ObservationError, match="needs the observation coordinates"):
        s.prepare(Y, y, R, AnalysisContext())
    with pytest.raises(InputError, match="NaN or Inf"):
        RegressionFilter().prepare(np.where(Y > 1, np.nan, Y), y, R, ctx)
    with pytest.raises(ObservationError, match="y has 7 observations"):
        RegressionFilter().prepare(Y, y[:7], R, ctx)
    with pytest.raises(ObservationError, match="must be an ObsError"):
        RegressionFilter().prepare(Y, y, np.ones(N_OBS), ctx)
    with pytest.raises(ObservationError, match="variance must be positive"):
        RegressionFilter().prepare(Y, y, ObsError.diagonal(np.r_[np.ones(7), -1.0]), ctx)
    with pytest.raises(InputError, match="prepared for 10"):
        RegressionFilter().prepare(Y, y, R, ctx).apply(X[:, :4], rows)


def test_regression_parallel_bad_blocks_raise():
    X, Y, y, R, rows, ctx = ring_setup()
    with pytest.raises(InputError, match=r"state_blocks must partition range\(12\)"):
        regression_parallel(X, Y, y, R, contiguous([6, 5]), contiguous([4, 4]))
    with pytest.raises(InputError, match=r"obs_blocks must partition range\(8\)"):
        regression_parallel(X, Y, y, R, contiguous([6, 6]), [np.arange(4), np.arange(3, 8)])
    with pytest.raises(InputError, match="2 state blocks but 3 observation blocks"):
        regression_parallel(X, Y, y, R, contiguous([6, 6]), contiguous([3, 3, 2]))
    with pytest.raises(InputError, match="Y has 9 members"):
        regression_parallel(X, Y[:, :9], y, R, contiguous([12]), contiguous([8]))


@pytest.mark.parametrize("kwargs, match", [
    ({"increments": "EAKF2"}, "increments: 'EAKF2' is not allowed; choose one of 'eakf', 'perturbed'"),
    ({"increments": 1}, "increments: 1 is not allowed"),
    ({"localization": 2.0}, "localization: 2.0 is none of Localization | AdaptiveLocalization | null")])
def test_regression_bad_options_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RegressionFilter(**kwargs)


# ---------------------------------------------------------------- tiles and neighbours against the dense form
def plane_setup(seed=0, n=400, m=120, N=8):
    """Rows and observations scattered on a 12 x 8 plane, periodic in x only; H picks the nearest row."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 1, (n, 2)) * [12.0, 8.0]
    oc = rng.uniform(0, 1, (m, 2)) * [12.0, 8.0]
    X = rng.standard_normal(n)[:, None] + rng.standard_normal((n, N))
    near = np.argmin(distances(oc, coords, (12.0, None)), axis=1)
    Y = X[near] + 0.1 * rng.standard_normal((m, N))
    y = rng.standard_normal(m)
    return X, Y, y, ObsError.diagonal(rng.uniform(0.5, 1.0, m)), coords, AnalysisContext(
        seed=3, obs_coords=oc, periodic=(12.0, None))


def dense_prepare_and_apply(scheme, X, Y, y, R, coords, ctx):
    """The implementation the tiles replaced: every later observation and every row, dense tapers."""
    obs = scheme.observation_space(Y, y, R, ctx)
    Yc = obs.Y.copy()
    m = Yc.shape[0]
    Yp, dY = np.empty_like(Yc), np.empty_like(Yc)
    for k in range(m):
        Yp[k] = Yc[k]
        dY[k] = obs_increments(Yp[k], obs.y[k], obs.r[k], scheme.increments,
                               None if obs.eps is None else obs.eps[k])
        regress(Yc[k + 1:], Yp[k], dY[k], obs.rho_obs(np.arange(k + 1, m), k), scheme.ordered)
    rho = obs.loc.rho_xo(coords, obs.obs_coords)
    return Yp, dY, regress_rows(X, Yp, dY, range(m), rho, scheme.ordered)


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "row-by-row"])
@pytest.mark.parametrize("scheme", [RegressionFilter(localization=Localization(1.2)),
                                    RegressionFilter("perturbed", Localization(0.7, obs_obs=False), tile=5),
                                    RegressionFilter(localization=Localization(2.5), tile=150)],
                         ids=["eakf", "perturbed-no-obs-obs", "eakf-small-tiles"])
def test_regression_tiles_equal_the_dense_sequence(scheme, ordered):
    # the sequence over every observation for every row, with dense tapers, computed by the same
    # member sums: bitwise (what the tiles skip adds exact zeros)
    scheme = dataclasses.replace(scheme, ordered=ordered)
    X, Y, y, R, coords, ctx = plane_setup()
    Yp, dY, Xa = dense_prepare_and_apply(scheme, X, Y, y, R, coords, ctx)
    up = scheme.prepare(Y, y, R, ctx)
    np.testing.assert_array_equal(up.Yp, Yp)
    np.testing.assert_array_equal(up.dY, dY)
    got = up.apply(X, Rows.whole(X.shape[0], coords=coords))
    np.testing.assert_array_equal(got, Xa)
    assert np.abs(got - X).max() > 0.1


def test_regression_memory_is_bounded_by_the_tile():
    # n = 3000 rows, m = 150 observations: the dense taper alone was (n, m) (3.6 MB); the tiles
    # need the output rows (0.19 MB) and a tile. Peak allocation below 3 times the rows.
    import tracemalloc

    X, Y, y, R, coords, ctx = plane_setup(1, n=3000, m=150)
    up = RegressionFilter(localization=Localization(0.8), tile=128).prepare(Y, y, R, ctx)
    tracemalloc.start()
    Xa = up.apply(X, Rows.whole(X.shape[0], coords=coords))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * X.nbytes, f"peak {peak / 1e6:.1f} MB for rows of {X.nbytes / 1e6:.1f} MB"
    assert np.abs(Xa - X).max() > 0.1


def test_regression_row_by_row_agrees_with_member_order():
    # the rows held as mean and anomalies (default) and regress() with sums in member order are
    # the same filter: equal to round-off (1e-12 of the increments), at an offset of 1e3 too
    X, Y, y, R, coords, ctx = plane_setup(2)
    X = X + 1e3
    rows = Rows.whole(X.shape[0], coords=coords)
    fast = RegressionFilter(localization=Localization(1.5)).analyse(X, Y, y, R, rows, ctx)
    slow = RegressionFilter(localization=Localization(1.5), ordered=True).analyse(X, Y, y, R, rows, ctx)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12 * np.abs(slow - X).max() + 1e-13 * 1e3)
    assert np.abs(slow - X).max() > 0.1
