"""Tests of fdassim.analysis.lenkf: the localized stochastic EnKF."""

import math

import numpy as np
import pytest

from fdassim.analysis import AnalysisContext, ObsError, Rows, combine, row_mean
from fdassim.analysis.lenkf import LocalizedEnKF
from fdassim.analysis.localization import AdaptiveLocalization, Localization, gaspari_cohn
from fdassim.errors import ConfigError, InputError, ObservationError


def stochastic_enkf_reference(X, Y, y, R, context):
    """The textbook stochastic EnKF (Evensen 2003), written directly with dense matrices, with
    the member draws centred (so that the perturbations do not shift the mean)."""
    N = X.shape[1]
    Z = context.standard_normal(y.size, N)
    E = R.color(Z - Z.mean(axis=1, keepdims=True))
    A = X - X.mean(axis=1, keepdims=True)
    S = Y - Y.mean(axis=1, keepdims=True)
    K = A @ S.T @ np.linalg.inv(S @ S.T + (N - 1) * R.matrix())
    return X + K @ (y[:, None] + E - Y)


def ring_problem(seed, n=40, N=8, every=2, r=0.5):
    """Lorenz-96-like ring: diagonal true B = I, every other variable observed."""
    idx = np.arange(0, n, every)
    H = np.eye(n)[idx]
    rng = np.random.default_rng(seed)
    xb = rng.standard_normal(n)
    xt = xb + rng.standard_normal(n)
    y = H @ xt + math.sqrt(r) * rng.standard_normal(idx.size)
    X = xb[:, None] + rng.standard_normal((n, N))
    return X, H, y, ObsError.diagonal(np.full(idx.size, r)), xt, idx


def test_lenkf_infinite_radius_equals_stochastic_enkf(lingauss):
    X = lingauss.ensemble(12)
    Y = lingauss.H @ X
    ctx = AnalysisContext(seed=7, cycle=3)
    ref = stochastic_enkf_reference(X, Y, lingauss.y, lingauss.R, ctx)
    Xa = LocalizedEnKF(Localization(math.inf)).analyse(X, Y, lingauss.y, lingauss.R, context=ctx)
    np.testing.assert_allclose(Xa, ref, rtol=0, atol=1e-10)  # round-off: different summation order


def test_lenkf_huge_finite_radius_equals_stochastic_enkf(lingauss):
    # the localized path (tapers from coordinates) with all tapers = 1 to ~1e-24
    X = lingauss.ensemble(12)
    Y = lingauss.H @ X
    ctx = AnalysisContext(seed=2, obs_coords=np.arange(lingauss.m, dtype=float))
    ref = stochastic_enkf_reference(X, Y, lingauss.y, lingauss.R, ctx)
    Xa = LocalizedEnKF(Localization(1e12)).analyse(X, Y, lingauss.y, lingauss.R,
                                                    rows=Rows.whole(lingauss.n, coords=np.arange(lingauss.n)),
                                                    context=ctx)
    np.testing.assert_allclose(Xa, ref, rtol=0, atol=1e-10)


def test_lenkf_large_ensemble_matches_kalman(lingauss):
    # Plain sample prior, N = 5000. Tolerances in sampling units: over seeds 0-19 the largest
    # mean error was 4.1 sd(Pa)/sqrt(N) and the largest covariance error 5.1 sd_i sd_j/sqrt(N);
    # we allow 6 and 8 (a wrong gain, e.g. a missing N - 1, gives errors of order 1).
    N = 5000
    X = lingauss.ensemble(N, seed=11, exact=False)
    Xa = LocalizedEnKF(Localization(math.inf)).analyse(X, lingauss.H @ X, lingauss.y, lingauss.R,
                                                       context=AnalysisContext(seed=4))
    sd = np.sqrt(np.diag(lingauss.Pa))
    assert np.max(np.abs(Xa.mean(axis=1) - lingauss.xa) / sd) < 6 / math.sqrt(N)
    assert np.max(np.abs(np.cov(Xa) - lingauss.Pa) / np.outer(sd, sd)) < 8 / math.sqrt(N)


@pytest.mark.parametrize("obs_obs", [True, False])
def test_lenkf_localized_gain_matches_dense_formula(obs_obs):
    # K = (rho_xo o A S^T) [rho_oo o S S^T + (N-1) R]^{-1}, tapers from an independent distance
    X, H, y, R, xt, idx = ring_problem(9)
    N, c = X.shape[1], 3.0
    ctx = AnalysisContext(seed=6, obs_coords=idx)
    x = np.arange(40)
    ring = lambda a, b: np.minimum(np.abs(a[:, None] - b[None, :]), 40 - np.abs(a[:, None] - b[None, :]))
    rho_xo = gaspari_cohn(ring(x, idx) / c)
    rho_oo = gaspari_cohn(ring(idx, idx) / c) if obs_obs else np.ones((idx.size, idx.size))
    Y = H @ X
    A, S = X - X.mean(axis=1, keepdims=True), Y - Y.mean(axis=1, keepdims=True)
    Z = AnalysisContext(6, 0).standard_normal(idx.size, N)
    E = R.color(Z - Z.mean(axis=1, keepdims=True))
    K = (rho_xo * (A @ S.T)) @ np.linalg.inv(rho_oo * (S @ S.T) + (N - 1) * R.matrix())
    ref = X + K @ (y[:, None] + E - Y)
    Xa = LocalizedEnKF(Localization(c, periodic=(40,), obs_obs=obs_obs)).analyse(
        X, Y, y, R, Rows.whole(40, coords=x), ctx)
    np.testing.assert_allclose(Xa, ref, rtol=0, atol=1e-10)


def test_lenkf_localization_damps_spurious_correlations():
    # Diagonal true B and N = 8 for n = 40: every prior correlation is spurious. Over 10 seeds
    # the unlocalized analysis error was 1.13 and the localized (radius 1) 0.90; we ask 10% less.
    loc_err, plain_err = [], []
    for seed in range(10):
        X, H, y, R, xt, idx = ring_problem(100 + seed)
        rows, ctx = Rows.whole(40, coords=np.arange(40)), AnalysisContext(seed=seed + 1, obs_coords=idx)
        for radius, errs in ((1.0, loc_err), (math.inf, plain_err)):
            Xa = LocalizedEnKF(Localization(radius, periodic=(40,))).analyse(X, H @ X, y, R, rows, ctx)
            errs.append(np.sqrt(np.mean((Xa.mean(axis=1) - xt) ** 2)))
    assert np.mean(loc_err) < 0.9 * np.mean(plain_err)


def test_lenkf_far_rows_are_not_updated():
    X, H, y, R, xt, idx = ring_problem(0)
    ctx = AnalysisContext(obs_coords=idx[:1])  # one observation, at x = 0
    Xa = LocalizedEnKF(Localization(2.0, periodic=(40,))).analyse(
        X, H[:1] @ X, y[:1], ObsError.diagonal(0.5), Rows.whole(40, coords=np.arange(40)), ctx)
    far = np.abs(((np.arange(40) + 20) % 40) - 20) >= 4  # ring distance >= 2 * radius
    np.testing.assert_array_equal(Xa[far], X[far])
    assert np.all(np.abs(Xa[~far] - X[~far]).max(axis=1) > 0)


@pytest.mark.parametrize("cuts", [[], [20], [7, 8, 31], list(range(1, 40))])
def test_lenkf_apply_on_row_blocks_equals_whole(cuts):
    X, H, y, R, xt, idx = ring_problem(3)
    up = LocalizedEnKF(Localization(3.0, periodic=(40,))).prepare(H @ X, y, R, AnalysisContext(obs_coords=idx))
    whole = Rows.whole(40, coords=np.arange(40))
    ref = up.apply(X, whole)
    edges = [0, *cuts, 40]
    parts = [up.apply(X[a:b], whole.block(a, b)) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_array_equal(np.vstack(parts), ref)  # bitwise


def test_lenkf_adaptive_localization_equals_resolved_fixed_one():
    X, H, y, R, xt, idx = ring_problem(5, N=20, every=1)
    rows, ctx = Rows.whole(40, coords=np.arange(40)), AnalysisContext(obs_coords=idx)
    adaptive = AdaptiveLocalization(periodic=(40,))
    loc = adaptive.resolve(H @ X, idx)
    assert 0 < loc.radius < math.inf
    Xa = LocalizedEnKF(adaptive).analyse(X, H @ X, y, R, rows, ctx)
    np.testing.assert_array_equal(Xa, LocalizedEnKF(loc).analyse(X, H @ X, y, R, rows, ctx))
    assert np.all(np.isfinite(Xa))


def test_lenkf_draws_depend_on_seed_and_cycle_only():
    X, H, y, R, xt, idx = ring_problem(1)
    s = LocalizedEnKF(Localization(math.inf))
    a = s.analyse(X, H @ X, y, R, context=AnalysisContext(seed=3, cycle=1))
    np.testing.assert_array_equal(a, s.analyse(X, H @ X, y, R, context=AnalysisContext(seed=3, cycle=1)))
    assert not np.array_equal(a, s.analyse(X, H @ X, y, R, context=AnalysisContext(seed=3, cycle=2)))


def test_lenkf_missing_coordinates_raise():
    X, H, y, R, xt, idx = ring_problem(0)
    s = LocalizedEnKF(Localization(2.0))
    with pytest.raises(ObservationError, match=r"AnalysisContext\(obs_coords=...\)"):
        s.prepare(H @ X, y, R, AnalysisContext())
    with pytest.raises(ObservationError, match=r"obs_coords must be \(20, d\)"):
        s.prepare(H @ X, y, R, AnalysisContext(obs_coords=idx[:5]))
    up = s.prepare(H @ X, y, R, AnalysisContext(obs_coords=idx))
    with pytest.raises(InputError, match=r"rows.coords is None: pass Rows.whole\(n, coords=...\)"):
        up.apply(X, Rows.whole(40))
    with pytest.raises(InputError, match="rows.coords has 39 points"):
        up.apply(X, Rows(coords=np.arange(39.0)[:, None]))
    with pytest.raises(InputError, match="dimensions"):
        up.apply(X, Rows(coords=np.zeros((40, 2))))
    with pytest.raises(InputError, match="prepared for 8"):
        up.apply(X[:, :5], Rows.whole(40, coords=np.arange(40)))


def test_lenkf_bad_inputs_raise():
    X, H, y, R, xt, idx = ring_problem(0)
    s = LocalizedEnKF(Localization(math.inf))
    Y = H @ X
    with pytest.raises(InputError, match="NaN or Inf"):
        s.prepare(np.where(Y > 1, np.nan, Y), y, R, AnalysisContext())
    with pytest.raises(ObservationError, match="y has 19 observations but Y predicts 20"):
        s.prepare(Y, y[:-1], R, AnalysisContext())
    with pytest.raises(ObservationError, match="R is for 3 observations"):
        s.prepare(Y, y, ObsError.diagonal([1.0, 1.0, 1.0]), AnalysisContext())
    with pytest.raises(ObservationError, match="variance must be positive"):
        s.prepare(Y, y, ObsError.diagonal(np.r_[np.ones(19), 0.0]), AnalysisContext())
    with pytest.raises(InputError, match="NaN or Inf"):
        s.prepare(Y, y, R, AnalysisContext()).apply(np.where(X > 1, np.inf, X), Rows.whole(40))


@pytest.mark.parametrize("bad, match", [
    (None, "needs a localization"),
    (3.0, "LocalizedEnKF: localization: 3.0 is none of Localization | AdaptiveLocalization"),
    ("gaspari-cohn", "LocalizedEnKF: localization: 'gaspari-cohn' is none of Localization | AdaptiveLocalization")])
def test_lenkf_bad_option_raises(bad, match):
    with pytest.raises(ConfigError, match=match):
        LocalizedEnKF(bad)


# ---------------------------------------------------------------- the row tiles against the dense formula
def plane_problem(seed=0, n=600, m=150, N=8):
    """Rows and observations scattered on a 12 x 8 plane, periodic in x only."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 1, (n, 2)) * [12.0, 8.0]
    oc = rng.uniform(0, 1, (m, 2)) * [12.0, 8.0]
    X = 5.0 + rng.standard_normal((n, N))
    Y = rng.standard_normal((m, N))
    y = rng.standard_normal(m)
    return X, Y, y, ObsError.diagonal(rng.uniform(0.5, 1.0, m)), coords, AnalysisContext(
        seed=3, obs_coords=oc, periodic=(12.0, None))


def dense_apply(up, X, coords, periodic):
    """The apply of the dense implementation this one replaced: (nb, m) taper and products for the block."""
    rho = Localization(up.localization.radius, periodic).rho_xo(coords, up.index.coords)
    A = X - row_mean(X)[:, None]
    AS = combine(A, up.S.T)
    AS *= rho
    return X + combine(AS, up.Z)


@pytest.mark.parametrize("c, tile", [(0.8, 4096), (1.5, 3), (4.0, 50)])
def test_lenkf_tiles_equal_the_dense_formula(c, tile):
    # ordered: the tiles skip the observations beyond the taper's support, whose terms are exact
    # zeros, so the sums in member and observation order are the dense ones bit for bit; by
    # BLAS row by row (the default) they agree to round-off (1e-12 of the increments)
    X, Y, y, R, coords, ctx = plane_problem()
    rows = Rows.whole(X.shape[0], coords=coords)
    up = LocalizedEnKF(Localization(c), tile=tile, ordered=True).prepare(Y, y, R, ctx)
    ref = dense_apply(up, X, coords, ctx.periodic)
    np.testing.assert_array_equal(up.apply(X, rows), ref)
    fast = LocalizedEnKF(Localization(c), tile=tile).prepare(Y, y, R, ctx).apply(X, rows)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12 * np.abs(ref - X).max())
    assert np.abs(ref - X).max() > 0.1


@pytest.mark.parametrize("ordered", [False, True])
@pytest.mark.parametrize("cuts", [[1], [299, 300, 301], list(range(7, 600, 41))])
def test_lenkf_tiles_are_bitwise_split_invariant(ordered, cuts):
    X, Y, y, R, coords, ctx = plane_problem(4)
    up = LocalizedEnKF(Localization(1.1), tile=64, ordered=ordered).prepare(Y, y, R, ctx)
    rows = Rows.whole(X.shape[0], coords=coords)
    edges = [0, *cuts, X.shape[0]]
    parts = [up.apply(X[a:b], rows.block(a, b)) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_array_equal(np.vstack(parts), up.apply(X, rows))


def test_lenkf_sparse_solve_equals_dense_solve():
    # the observation-space solve, sparse through the KD-tree, against the dense matrix (round-off)
    X, Y, y, R, coords, ctx = plane_problem(1)
    loc = Localization(1.5, ctx.periodic)
    up = LocalizedEnKF(loc).prepare(Y, y, R, ctx)
    S = Y - Y.mean(axis=1, keepdims=True)
    C = loc.rho_oo(ctx.obs_coords) * (S @ S.T) + (Y.shape[1] - 1) * R.matrix()
    D = y[:, None] + R.color(ctx.perturbation_normals(*Y.shape)) - Y  # centred draws
    np.testing.assert_allclose(up.Z, np.linalg.solve(C, D), rtol=0, atol=1e-11 * np.abs(up.Z).max())


def test_lenkf_memory_is_bounded_by_the_tile():
    # n = 6000 rows, m = 1500 observations, N = 8: the dense form held (n, m) arrays (72 MB
    # each); the tiles need the output rows (0.4 MB) and a tile. Peak allocation below 3 times
    # the rows, measured by tracemalloc (numpy reports its buffers to it).
    import tracemalloc

    X, Y, y, R, coords, ctx = plane_problem(2, n=6000, m=1500)
    up = LocalizedEnKF(Localization(0.6), tile=256).prepare(Y, y, R, ctx)
    rows = Rows.whole(X.shape[0], coords=coords)
    tracemalloc.start()
    Xa = up.apply(X, rows)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * X.nbytes, f"peak {peak / 1e6:.1f} MB for rows of {X.nbytes / 1e6:.1f} MB"
    assert np.abs(Xa - X).max() > 0.1
