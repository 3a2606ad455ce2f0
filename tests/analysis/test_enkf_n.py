"""Tests of fdassim.analysis.enkf_n: the finite-size EnKF-N with implicit adaptive inflation."""

import math

import numpy as np
import pytest

from lingauss import anomalies, make_lingauss
from fdassim.analysis import AnalysisContext, ObsError, TransformUpdate
from fdassim.analysis.base import preserve_mean
from fdassim.analysis.enkf_n import EnKFN, EnKFNUpdate, enkf_n_dual, enkf_n_transform, enkf_n_weights
from fdassim.analysis.enkf_n import dual_cost as dual_cost_eig
from fdassim.analysis.etkf import ETKF, ensemble_svd
from fdassim.errors import ConfigError



def whitened(lg, X):
    """S~ = R^{-1/2} S and d~ = R^{-1/2} (y - mean(Y)), written with a dense inverse Cholesky factor."""
    Y = lg.H @ X
    Li = np.linalg.inv(np.linalg.cholesky(lg.R.matrix()))
    return Li @ anomalies(Y), Li @ (lg.y - Y.mean(axis=1)), anomalies(Y), lg.y - Y.mean(axis=1)


def dual_cost(zeta, St, d, N, eps):
    """Bocquet et al. (2015) dual cost, the m x m form, independent of the implementation's SVD route."""
    m = d.size
    return (0.5 * d @ np.linalg.solve(np.eye(m) + St @ St.T / zeta, d) + 0.5 * eps * zeta
            + 0.5 * N * math.log(N / zeta) - 0.5 * N)


@pytest.mark.parametrize("n, m, N", [(5, 3, 8), (4, 12, 6)], ids=["m<N", "m>N"])
@pytest.mark.parametrize("full_R", [False, True], ids=["diagR", "fullR"])
def test_enkf_n_primal_and_dual_agree(n, m, N, full_R):
    lg = make_lingauss(n=n, m=m, full_R=full_R, seed=5)
    X = lg.ensemble(N, exact=False)
    _, _, S, dy = whitened(lg, X)
    w1, T1, z1 = enkf_n_weights(S, dy, lg.R, dual=True)
    w2, T2, z2 = enkf_n_weights(S, dy, lg.R, dual=False)
    # Brent on log(zeta) to 1e-13 and Newton to gtol 1e-12: agreement far below 1e-7
    assert abs(z1 - z2) <= 1e-7 * z1
    np.testing.assert_allclose(w1, w2, atol=1e-7)
    np.testing.assert_allclose(T1, T2, atol=1e-7)


def test_enkf_n_dual_minimum_is_global_and_a_primal_stationary_point(lingauss):
    N = 7
    X = lingauss.ensemble(N, exact=False)
    St, d, S, dy = whitened(lingauss, X)
    eps = 1 + 1 / N
    w, _, zeta = enkf_n_weights(S, dy, lingauss.R)
    grid = np.geomspace(1e-6, N / eps, 4000)
    assert dual_cost(zeta, St, d, N, eps) <= min(dual_cost(z, St, d, N, eps) for z in grid) + 1e-12
    assert zeta == pytest.approx(N / (eps + w @ w), rel=1e-12)  # zeta_a = N / (eps_N + |w_a|^2)
    grad = -St.T @ (d - St @ w) + N * w / (eps + w @ w)  # gradient of the primal cost
    assert np.abs(grad).max() < 1e-8


@pytest.mark.parametrize("n, m, N", [(5, 3, 8), (4, 12, 6)], ids=["m<N", "m>N"])
def test_enkf_n_vectorised_dual_cost_matches_dense_form(n, m, N):
    """The eigenbasis form, on an array of zeta at once, is the m x m form less 1/2 |d~|^2."""
    lg = make_lingauss(n=n, m=m, full_R=True, seed=1)
    St, d, S, dy = whitened(lg, lg.ensemble(N, exact=False))
    sig, _, c = ensemble_svd(S, dy, lg.R)
    eps = 1 + 1 / N
    zeta = np.geomspace(1e-6, N / eps, 50)
    ref = np.array([dual_cost(z, St, d, N, eps) for z in zeta]) - 0.5 * d @ d
    got = dual_cost_eig(zeta, sig**2, c, N, eps)
    assert got.shape == zeta.shape
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_enkf_n_dual_solves_the_stationarity_condition_to_round_off():
    """zeta_a = N / (eps_N + |w(zeta_a)|^2), |w(zeta)|^2 = sum c_j^2 / (zeta + lam_j)^2, to 1e-12,
    unless the minimum is at the bound N / eps_N, over innovations from 0 to 100 observation stds."""
    rng = np.random.default_rng(12)
    at_bound = 0
    for trial in range(200):
        m, N = int(rng.integers(1, 30)), int(rng.integers(2, 40))
        S = rng.standard_normal((m, N)) * rng.uniform(0.01, 5.0)
        S -= S.mean(axis=1, keepdims=True)
        dy = rng.standard_normal(m) * rng.choice([0.0, 0.1, 1.0, 10.0, 100.0])
        R = ObsError.diagonal(rng.uniform(0.1, 2.0, m))
        sig, _, c = ensemble_svd(S, dy, R)
        eps = 1 + 1 / N
        zeta = enkf_n_dual(sig**2, c, N, eps)
        fixed = N / (eps + np.sum(c**2 / (zeta + sig**2) ** 2))
        if fixed >= N / eps * (1 - 1e-12) and zeta == N / eps:
            at_bound += 1
            continue
        assert zeta == pytest.approx(fixed, rel=1e-12), (trial, m, N)
    assert 0 < at_bound < 200  # both cases occur


def test_enkf_n_anomaly_transform_is_inverse_hessian_square_root(lingauss):
    N = 9
    X = lingauss.ensemble(N, exact=False)
    St, _, S, dy = whitened(lingauss, X)
    w, T, zeta = enkf_n_weights(S, dy, lingauss.R)
    q = 1 + 1 / N + w @ w
    Ha = St.T @ St + N / q * np.eye(N) - 2 * N / q**2 * np.outer(w, w)  # Hessian of the primal cost
    np.testing.assert_allclose(T, T.T, atol=0)
    np.testing.assert_allclose(T @ T, (N - 1) * np.linalg.inv(Ha), atol=1e-10)
    np.testing.assert_allclose(T @ np.ones(N), math.sqrt((N - 1) / zeta) * np.ones(N), atol=1e-12)


def test_enkf_n_update_carries_the_inflation(lingauss):
    X = lingauss.ensemble(8, exact=False)
    Y = lingauss.H @ X
    up = EnKFN().prepare(Y, lingauss.y, lingauss.R, AnalysisContext())
    assert isinstance(up, EnKFNUpdate) and isinstance(up, TransformUpdate)
    W, inflation = enkf_n_transform(anomalies(Y), lingauss.y - Y.mean(axis=1), lingauss.R)
    np.testing.assert_array_equal(up.W, preserve_mean(W))  # the update stores W mean-preserving
    assert up.inflation == inflation == pytest.approx(math.sqrt(7 / up.zeta), rel=1e-14)


def test_enkf_n_inflation_grows_with_the_innovation():
    """D_k(zeta) - D_1(zeta) = -(k^2 - 1)/2 sum c_j^2/(zeta + lam_j) increases with zeta, so the
    minimiser zeta_a cannot increase with the innovation scale k: inflation is non-decreasing."""
    lg = make_lingauss(n=6, m=6, seed=3)
    X = lg.ensemble(8, exact=False)
    Y = lg.H @ X
    S, dy = anomalies(Y), lg.y - Y.mean(axis=1)
    infl = [enkf_n_transform(S, k * dy, lg.R)[1] for k in (0.0, 1.0, 3.0, 10.0, 30.0)]
    assert infl[0] == pytest.approx(math.sqrt(7 * (1 + 1 / 8) / 8), rel=1e-9)  # zeta at its bound N/eps_N
    assert all(a <= b + 1e-9 for a, b in zip(infl, infl[1:]))
    assert infl[-1] > 3.0  # a far-off observation is explained by a much wider prior


def test_enkf_n_large_perfect_ensemble_is_close_to_etkf(lingauss):
    """For N large and an exact prior, |w_a|^2 = O(m/N), so zeta_a = N - 1 + O(m) and the inflation is 1 + O(m/N)."""
    N = 2000
    X = lingauss.ensemble(N)
    Y = lingauss.H @ X
    up = EnKFN().prepare(Y, lingauss.y, lingauss.R, AnalysisContext())
    assert abs(up.inflation - 1) < 5e-3  # m/N = 1.5e-3
    Xn, Xe = up.apply(X), ETKF().analyse(X, Y, lingauss.y, lingauss.R)
    scale = np.abs(lingauss.Pa).max()
    np.testing.assert_allclose(Xn.mean(axis=1), Xe.mean(axis=1), atol=1e-2 * np.abs(lingauss.xa).max())
    np.testing.assert_allclose(np.cov(Xn), np.cov(Xe), atol=1e-2 * scale)


def test_enkf_n_eps_option(lingauss):
    X = lingauss.ensemble(8, exact=False)
    Y = lingauss.H @ X
    ctx = AnalysisContext()
    W0 = EnKFN().prepare(Y, lingauss.y, lingauss.R, ctx).W
    np.testing.assert_array_equal(EnKFN(eps_N=1 + 1 / 8).prepare(Y, lingauss.y, lingauss.R, ctx).W, W0)
    assert not np.allclose(EnKFN(eps_N=3.0).prepare(Y, lingauss.y, lingauss.R, ctx).W, W0)


@pytest.mark.parametrize("kwargs, match", [
    ({"eps_N": 0.0}, r"EnKFN: eps_N: must be a finite number > 0, got 0\.0"),
    ({"eps_N": -1}, r"eps_N: .* got -1"),
    ({"eps_N": math.inf}, r"eps_N: .* got inf"),
    ({"eps_N": True}, r"eps_N: expected a number, got True"),
    ({"eps_N": "1.1"}, r"eps_N: expected a number, got '1\.1'"),
    ({"dual": "no"}, r"dual: expected true or false .* got 'no'"),
])
def test_enkf_n_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EnKFN(**kwargs)


def test_enkf_n_nonlinear_h_runs():
    rng = np.random.default_rng(5)
    X = 2.0 + 0.3 * rng.standard_normal((4, 30))
    h = lambda X: X[:3] ** 2  # noqa: E731
    y = np.full(3, 2.4**2)
    up = EnKFN().prepare(h(X), y, ObsError.diagonal(np.full(3, 0.1)), AnalysisContext())
    Xa = up.apply(X)
    assert Xa.shape == X.shape and np.all(np.isfinite(Xa)) and math.isfinite(up.inflation)
    assert np.linalg.norm(h(Xa).mean(axis=1) - y) < np.linalg.norm(h(X).mean(axis=1) - y)


def test_enkf_n_approximate_hessian_is_etkf_transform_at_zeta(lingauss):
    """Without the rank-one term, T = sqrt(N1) (S~^T S~ + zeta I)^{-1/2}: the ETKF's square
    root with prior weight zeta; same mean weights, and a smaller spread than the exact one."""
    from scipy.linalg import sqrtm

    from fdassim.analysis.enkf_n import enkf_n_weights

    X = lingauss.ensemble(12, exact=False)
    Y = lingauss.H @ X
    S = anomalies(Y)
    dy = lingauss.y - Y.mean(axis=1)
    w, T, zeta = enkf_n_weights(S, dy, lingauss.R, exact_hessian=False)
    w_exact, T_exact, zeta_exact = enkf_n_weights(S, dy, lingauss.R)
    np.testing.assert_allclose(w, w_exact, rtol=1e-12)
    assert zeta == zeta_exact
    St = lingauss.R.whiten(S)
    expect = np.real(sqrtm(np.linalg.inv(St.T @ St + zeta * np.eye(12)))) * np.sqrt(11)
    np.testing.assert_allclose(T, expect, rtol=1e-9, atol=1e-12)
    assert np.trace(T @ T) < np.trace(T_exact @ T_exact)


def test_enkf_n_dual_zero_innovation_is_at_the_upper_bound():
    """With d = 0 the dual cost eps_N zeta / 2 + N/2 ln(N / zeta) decreases up to N / eps_N:
    the minimum is that bound, exactly (no Newton step: the slope is negative at both ends of
    the last scan interval), and the implied inflation is sqrt(N1 eps_N / N) < 1."""
    rng = np.random.default_rng(3)
    S = anomalies(rng.standard_normal((6, 9)))
    sig, _, c = ensemble_svd(S, np.zeros(6), ObsError.diagonal(np.ones(6)))
    N, eps = 9, 1 + 1 / 9
    zeta = enkf_n_dual(sig**2, c, N, eps)
    assert zeta == N / eps
    grid = (N / eps) * np.geomspace(1e-9, 1.0, 500)
    assert np.all(dual_cost_eig(grid[:-1], sig**2, c, N, eps) > dual_cost_eig(zeta, sig**2, c, N, eps))


def test_enkf_n_dual_huge_innovation_is_at_the_lower_bound():
    """Spread 1e-6 against an innovation of 1e4 observation stds: the cost still increases at
    the scan's lower end, 1e-9 N / eps_N, which is returned (to 1e-12; the documented bound of
    inflation ~3e4), and it is lower than anywhere else on the scan range."""
    rng = np.random.default_rng(4)
    N, eps = 8, 1 + 1 / 8
    S = 1e-6 * anomalies(rng.standard_normal((5, N)))
    sig, _, c = ensemble_svd(S, np.full(5, 1e4), ObsError.diagonal(np.ones(5)))
    zeta = enkf_n_dual(sig**2, c, N, eps)
    assert zeta == pytest.approx(1e-9 * N / eps, rel=1e-12)
    grid = (N / eps) * np.geomspace(1e-9, 1.0, 500)
    assert np.all(dual_cost_eig(grid[1:], sig**2, c, N, eps) > dual_cost_eig(zeta, sig**2, c, N, eps))


def test_enkf_n_dual_is_never_worse_than_its_scan():
    """Over 300 random problems (innovations 0 to 1e3 stds, spreads 1e-4 to 10) the returned
    zeta's cost is at most the scan's best and at most that of a 2000-point grid (+1e-12 |cost|)."""
    rng = np.random.default_rng(21)
    for trial in range(300):
        m, N = int(rng.integers(1, 20)), int(rng.integers(2, 30))
        S = anomalies(rng.standard_normal((m, N))) * 10.0 ** rng.uniform(-4, 1)
        dy = rng.standard_normal(m) * rng.choice([0.0, 0.1, 1.0, 10.0, 1e3])
        sig, _, c = ensemble_svd(S, dy, ObsError.diagonal(rng.uniform(0.1, 2.0, m)))
        eps = 1 + 1 / N
        zeta = enkf_n_dual(sig**2, c, N, eps)
        grid = (N / eps) * np.geomspace(1e-9, 1.0, 2000)
        best = dual_cost_eig(grid, sig**2, c, N, eps).min()
        got = float(dual_cost_eig(zeta, sig**2, c, N, eps))
        assert got <= best + 1e-12 * max(1.0, abs(best)), (trial, got, best)
