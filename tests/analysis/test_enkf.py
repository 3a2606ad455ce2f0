"""Tests of fdassim.analysis.enkf: the stochastic EnKF, with the exact R (Burgers et al. 1998) and
in Evensen's (2003) matrix-free form C = S + E."""

import math

import numpy as np
import pytest
from scipy.linalg import null_space

from lingauss import anomalies, exact_ensemble, make_lingauss, sampling_tolerance
from fdassim.analysis import AnalysisContext, ObsError, TransformUpdate, kalman_analysis
from fdassim.analysis.base import preserve_mean
from fdassim.analysis.enkf import (EnKF, InnovationCovariance, Innovations,
                                   correlated_obs_error, enkf_exact_transform,
                                   enkf_transform, gaussian_correlation, project_onto_ensemble,
                                   truncated_svd)
from fdassim.errors import ConfigError, ObservationError
from fdassim.streams import Stream, generator

N_LARGE = 2000
EXACT, ENSEMBLE = InnovationCovariance.EXACT, InnovationCovariance.ENSEMBLE




@pytest.mark.parametrize("n, m, N", [(5, 3, 12), (4, 12, 6), (4, 6, 6)], ids=["m<N", "m>N", "m=N"])
@pytest.mark.parametrize("full_R", [False, True], ids=["diagR", "fullR"])
def test_enkf_exact_matches_textbook_update(n, m, N, full_R):
    """x_i + K (y + e_i - H x_i) with K = A S^T (S S^T + N1 R)^-1 and the exact R, to round-off.

    Covers the three solves: Cholesky in whitened observation space (m < N), in ensemble
    space (m >= N), and the SVD for an ill-conditioned system (R scaled by 1e-12: the
    observation errors tiny against the spread).
    """
    lg = make_lingauss(n=n, m=m, full_R=full_R, seed=4)
    X = lg.ensemble(N, exact=False)
    Y = lg.H @ X
    E = anomalies(lg.R.color(np.random.default_rng(7).standard_normal(Y.shape)))
    A, S = anomalies(X), anomalies(Y)
    K = A @ S.T @ np.linalg.inv(S @ S.T + (N - 1) * lg.R.matrix())
    ref = X + K @ (lg.y[:, None] + E - Y)
    np.testing.assert_allclose(X @ enkf_exact_transform(Y, lg.y, E, lg.R), ref, atol=1e-10)
    # R scaled by 1e-12: |S~|_F^2 / N1 > 1e8, the SVD route. The m x m inverse above is then
    # inaccurate (cond 1e12 when m >= N), so the reference is the ridge regression
    # (S~^T S~ + N1 I)^-1 S~^T D~ as the least-squares solution of [S~; sqrt(N1) I] x = [D~; 0].
    tiny = ObsError.full(1e-12 * lg.R.matrix())
    Et = 1e-6 * E
    Li = np.linalg.inv(np.linalg.cholesky(tiny.matrix()))
    St, Dt = Li @ S, Li @ (lg.y[:, None] + Et - Y)
    ridge = np.linalg.lstsq(np.vstack([St, np.sqrt(N - 1) * np.eye(N)]), np.vstack([Dt, np.zeros((N, N))]),
                            rcond=None)[0]
    np.testing.assert_allclose(X @ enkf_exact_transform(Y, lg.y, Et, tiny), X + A @ ridge, atol=1e-9)
    Xa = EnKF().prepare(Y, lg.y, lg.R, AnalysisContext(seed=5)).apply(X)  # the scheme's own E
    E5 = EnKF().perturbations(Y, lg.R, AnalysisContext(seed=5))
    np.testing.assert_allclose(Xa, X + K @ (lg.y[:, None] + E5 - Y), atol=1e-10)


def test_enkf_exact_ignores_perturbations_outside_the_ensemble_subspace():
    """Why project=True is refused with EXACT: projecting E (R^-1 metric) changes nothing."""
    lg = make_lingauss(n=5, m=12, full_R=True, seed=2)  # m > N - 1: the projection does act on E
    X = lg.ensemble(6, exact=False)
    Y = lg.H @ X
    E = EnKF().perturbations(Y, lg.R, AnalysisContext(seed=9))
    Ep = project_onto_ensemble(E, anomalies(Y), lg.R)
    assert np.linalg.norm(E - Ep) > 0.1 * np.linalg.norm(E)
    np.testing.assert_allclose(enkf_exact_transform(Y, lg.y, Ep, lg.R), enkf_exact_transform(Y, lg.y, E, lg.R),
                               atol=1e-12)


def test_enkf_explicit_perturbations_match_textbook_update(lingauss):
    """ENSEMBLE: x_i + K_e (y + e_i - H x_i) with K_e = A S^T ((S + E)(S + E)^T)^-1, to round-off."""
    X = lingauss.ensemble(12, exact=False)
    Y = lingauss.H @ X
    E = anomalies(lingauss.R.color(np.random.default_rng(7).standard_normal(Y.shape)))
    A, S = anomalies(X), anomalies(Y)
    C = S + E
    K = A @ S.T @ np.linalg.inv(C @ C.T)
    ref = X + K @ (lingauss.y[:, None] + E - Y)
    for R in (None, lingauss.R):  # whitening before the SVD changes nothing without truncation
        np.testing.assert_allclose(X @ enkf_transform(Y, lingauss.y, E, R, truncation=1.0), ref, atol=1e-10)


def test_enkf_perturbations_orthogonal_to_s_give_evensen_2003_gain(lingauss):
    """With S E^T = 0, K_e = P_e H^T (H P_e H^T + R_e)^-1, P_e = A A^T / N1, R_e = E E^T / N1."""
    N, m = 12, lingauss.m
    X = lingauss.ensemble(N, exact=False)
    Y = lingauss.H @ X
    A, S = anomalies(X), anomalies(Y)
    Q = null_space(np.vstack([np.ones(N), S]))  # zero-mean directions orthogonal to S's rows
    E = np.random.default_rng(8).standard_normal((m, Q.shape[1])) @ Q.T
    assert np.abs(S @ E.T).max() < 1e-12
    Pe, Re = A @ A.T / (N - 1), E @ E.T / (N - 1)
    H = lingauss.H
    K = Pe @ H.T @ np.linalg.inv(H @ Pe @ H.T + Re)
    ref = X + K @ (lingauss.y[:, None] + E - Y)
    np.testing.assert_allclose(X @ enkf_transform(Y, lingauss.y, E, lingauss.R, truncation=1.0), ref, atol=1e-10)


@pytest.mark.parametrize("truncation, rank", [(0.9, 1), (0.95, 2), (0.999, 3), (1.0, 4)])
def test_enkf_truncated_svd_keeps_requested_variance(truncation, rank):
    rng = np.random.default_rng(0)
    U0 = np.linalg.qr(rng.standard_normal((6, 4)))[0]
    V0 = np.linalg.qr(rng.standard_normal((9, 4)))[0]
    s0 = np.array([10.0, 3.0, 1.0, 0.1])  # cumulative variance 0.909, 0.991, 0.9999, 1
    U, s = truncated_svd(U0 @ np.diag(s0) @ V0.T, truncation)
    assert s.size == rank
    np.testing.assert_allclose(s, s0[:rank], rtol=1e-12)
    np.testing.assert_allclose(np.abs(U.T @ U0[:, :rank]), np.eye(rank), atol=1e-10)


def test_enkf_truncation_uses_the_truncated_pseudo_inverse(lingauss):
    X = lingauss.ensemble(10, exact=False)
    Y = lingauss.H @ X
    E = anomalies(np.random.default_rng(3).standard_normal(Y.shape))
    S, Dp = anomalies(Y), lingauss.y[:, None] + E - Y
    U, s, _ = np.linalg.svd(S + E, full_matrices=False)
    X5 = np.eye(10) + S.T @ U[:, :1] @ U[:, :1].T @ Dp / s[0] ** 2  # one direction kept
    np.testing.assert_allclose(enkf_transform(Y, lingauss.y, E, None, truncation=1e-6), X5, atol=1e-12)
    assert not np.allclose(X5, enkf_transform(Y, lingauss.y, E, None, truncation=1.0))


def test_enkf_zero_spread_and_perturbations_give_identity():
    Y = np.ones((3, 5))
    np.testing.assert_array_equal(enkf_transform(Y, np.zeros(3), np.zeros((3, 5))), np.eye(5))
    np.testing.assert_array_equal(enkf_exact_transform(Y, np.ones(3), np.zeros((3, 5)), ObsError.diagonal(1.0)),
                                  np.eye(5))


def test_enkf_perturbation_columns_are_the_members_draws(lingauss):
    Y = lingauss.H @ lingauss.ensemble(8, exact=False)
    ctx = AnalysisContext(seed=11, cycle=4)
    E = EnKF().perturbations(Y, lingauss.R, ctx)
    # one generator per (seed, stream, cycle) draws member after member: column i is member i's
    Z = generator(11, Stream.OBS_PERTURBATION, 4).standard_normal((8, lingauss.m)).T
    raw = lingauss.R.color(Z)
    np.testing.assert_allclose(E, raw - raw.mean(axis=1, keepdims=True), rtol=0, atol=1e-14)
    # the draws depend on seed and cycle, not on anything else of the context
    np.testing.assert_array_equal(ctx.standard_normal(lingauss.m, 8),
                                  AnalysisContext(11, 4, obs_coords=np.zeros((lingauss.m, 1))).standard_normal(lingauss.m, 8))
    assert not np.array_equal(ctx.standard_normal(lingauss.m, 8), AnalysisContext(11, 5).standard_normal(lingauss.m, 8))


def test_enkf_same_context_gives_same_transform(lingauss):
    Y = lingauss.H @ lingauss.ensemble(8, exact=False)
    ctx = AnalysisContext(seed=3, cycle=1)
    W1 = EnKF().prepare(Y, lingauss.y, lingauss.R, ctx).W
    W2 = EnKF().prepare(Y.copy(), lingauss.y, lingauss.R, AnalysisContext(seed=3, cycle=1)).W
    np.testing.assert_array_equal(W1, W2)
    W3 = EnKF().prepare(Y, lingauss.y, lingauss.R, AnalysisContext(seed=3, cycle=2)).W
    assert not np.allclose(W1, W3)  # another cycle draws other perturbations


def test_enkf_random_perturbations_have_covariance_r():
    R = make_lingauss(m=4, full_R=True, seed=1).R
    N = 4000
    E = EnKF().perturbations(np.zeros((4, N)), R, AnalysisContext(seed=5))
    np.testing.assert_allclose(E.mean(axis=1), 0, atol=1e-12)
    Rm = R.matrix()
    d = np.diag(Rm)
    se = np.sqrt((np.outer(d, d) + Rm**2) / N)  # standard error of a sample covariance
    assert np.all(np.abs(E @ E.T / (N - 1) - Rm) <= 5 * se)


def test_enkf_projection_onto_ensemble_subspace():
    lg = make_lingauss(n=5, m=12, full_R=True, seed=2)  # m > N - 1: S does not span R^m
    X = lg.ensemble(6, exact=False)
    Y = lg.H @ X
    ctx = AnalysisContext(seed=9)
    E = EnKF(covariance=ENSEMBLE, project=True).perturbations(Y, lg.R, ctx)
    E0 = EnKF().perturbations(Y, lg.R, ctx)
    St, Et = lg.R.whiten(anomalies(Y)), lg.R.whiten(E)
    coef = np.linalg.lstsq(St, Et, rcond=None)[0]
    np.testing.assert_allclose(St @ coef, Et, atol=1e-10)  # R^{-1/2} E lies in span(R^{-1/2} S)
    assert np.linalg.norm(E0 - E) > 0.1 * np.linalg.norm(E0)
    # with m <= N - 1 the subspace is all of R^m and the projection changes nothing
    lg3 = make_lingauss(n=5, m=3, full_R=True, seed=2)
    Y3 = lg3.H @ lg3.ensemble(10, exact=False)
    np.testing.assert_allclose(EnKF(covariance=ENSEMBLE, project=True).perturbations(Y3, lg3.R, ctx),
                               EnKF().perturbations(Y3, lg3.R, ctx), atol=1e-12)


def test_enkf_correlated_perturbations_follow_gaussian_correlation():
    L = 2.0
    coords = np.array([[0.0], [0.5 * L], [L], [3 * L]])
    std = np.array([1.0, 2.0, 0.5, 1.0])
    R = ObsError.from_std(std)
    N = 4000
    scheme = EnKF(innovations=Innovations.CORRELATED, correlation_length=L)
    E = scheme.perturbations(np.zeros((4, N)), R, AnalysisContext(seed=2, obs_coords=coords))
    Rc = std[:, None] * np.exp(-((coords - coords.T) ** 2) / L**2) * std[None, :]  # exp(-d^2/L^2)
    np.testing.assert_allclose(gaussian_correlation(coords, L), Rc / np.outer(std, std), atol=1e-15)
    d = np.diag(Rc)
    se = np.sqrt((np.outer(d, d) + Rc**2) / N)
    assert np.all(np.abs(E @ E.T / (N - 1) - Rc) <= 5 * se)
    np.testing.assert_allclose(E.mean(axis=1), 0, atol=1e-12)
    assert np.corrcoef(E)[0, 1] > 0.7  # neighbours half a length apart: rho = exp(-1/4) = 0.78


def test_enkf_correlated_exact_whitens_with_rc_even_when_nearly_singular():
    """15 points 0.07 apart with L = 0.32: R_c is numerically singular (the Cholesky needs
    care), yet the EXACT transform, through the SVD of R_c^{-1/2} S, stays finite."""
    coords, L = np.linspace(0.0, 1.0, 15), 0.32
    std = np.linspace(0.5, 1.5, 15)
    Rc = correlated_obs_error(coords, std, L)
    assert np.linalg.cond(Rc.matrix()) > 1e10
    Y = np.random.default_rng(1).standard_normal((15, 10))
    y, R, ctx = np.zeros(15), ObsError.from_std(std), AnalysisContext(seed=3, obs_coords=coords)
    scheme = EnKF(innovations=Innovations.CORRELATED, correlation_length=L)
    W = scheme.prepare(Y, y, R, ctx).W
    assert np.all(np.isfinite(W))
    np.testing.assert_array_equal(W, preserve_mean(enkf_exact_transform(Y, y, scheme.perturbations(Y, R, ctx), Rc)))
    np.testing.assert_allclose(W.sum(axis=0), 1.0, atol=1e-8)  # each member an affine combination (S~ 1 = 0)


def test_enkf_correlated_needs_obs_coords(lingauss):
    Y = lingauss.H @ lingauss.ensemble(8, exact=False)
    scheme = EnKF(innovations=Innovations.CORRELATED, correlation_length=1.0)
    with pytest.raises(ObservationError, match=r"obs_coords"):
        scheme.prepare(Y, lingauss.y, lingauss.R, AnalysisContext())
    with pytest.raises(ObservationError, match=r"one row per observation \(3\)"):
        scheme.prepare(Y, lingauss.y, lingauss.R, AnalysisContext(obs_coords=np.zeros((5, 2))))
    W = scheme.prepare(Y, lingauss.y, lingauss.R, AnalysisContext(obs_coords=np.arange(3.0))).W
    assert W.shape == (8, 8) and np.all(np.isfinite(W))


@pytest.mark.parametrize("kwargs, match", [
    ({"innovations": "random2"}, r"innovations: 'random2' is not allowed; choose one of 'random', 'correlated'"),
    ({"covariance": 1}, r"covariance: 1 is not allowed; choose one of 'exact', 'ensemble'"),
    ({"covariance": ENSEMBLE, "truncation": 0.0}, r"truncation: must be a finite number > 0 and <= 1, got 0\.0"),
    ({"covariance": ENSEMBLE, "truncation": 1.5}, r"truncation: .* got 1\.5"),
    ({"covariance": ENSEMBLE, "truncation": math.nan}, r"truncation: .* got nan"),
    ({"covariance": ENSEMBLE, "truncation": "0.99"}, r"truncation: expected a number, got '0\.99'"),
    ({"truncation": 0.99}, r"truncation=0\.99 is only used with covariance=InnovationCovariance\.ENSEMBLE"),
    ({"project": True}, r"project=True is only used with covariance=InnovationCovariance\.ENSEMBLE"),
    ({"covariance": ENSEMBLE, "project": "yes"}, r"project: expected true or false .* got 'yes'"),
    ({"project": "yes"}, r"project: expected true or false .* got 'yes'"),
    ({"innovations": Innovations.CORRELATED}, r"correlation_length is required"),
    ({"innovations": Innovations.CORRELATED, "correlation_length": -1.0}, r"correlation_length: must be a finite number > 0, got -1\.0"),
    ({"correlation_length": 3.0}, r"correlation_length=3\.0 is only used with innovations=Innovations\.CORRELATED"),
])
def test_enkf_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EnKF(**kwargs)


@pytest.mark.parametrize("scheme", [
    pytest.param(EnKF(), id="exact"),
    pytest.param(EnKF(covariance=ENSEMBLE), id="ensemble"),
    pytest.param(EnKF(covariance=ENSEMBLE, project=True), id="ensemble-projected"),
    pytest.param(EnKF(covariance=ENSEMBLE, truncation=0.99), id="ensemble-truncated"),
])
def test_enkf_large_sample_matches_kalman(lingauss, scheme):
    X = lingauss.ensemble(N_LARGE, exact=False)
    Xa = scheme.analyse(X, lingauss.H @ X, lingauss.y, lingauss.R, context=AnalysisContext(seed=4))
    tol_mean, tol_cov = sampling_tolerance(lingauss.B, N_LARGE)
    assert np.all(np.abs(Xa.mean(axis=1) - lingauss.xa) <= tol_mean)
    assert np.all(np.abs(np.cov(Xa) - lingauss.Pa) <= tol_cov)


@pytest.mark.parametrize("covariance", [EXACT, ENSEMBLE], ids=["exact", "ensemble"])
def test_enkf_correlated_large_sample_matches_kalman_with_correlated_r(covariance):
    """With correlated draws both forms estimate the Kalman analysis for R_c = diag(s) rho diag(s)."""
    lg = make_lingauss(n=5, m=3, seed=6)
    coords, L = np.array([0.0, 1.0, 2.5]), 1.5
    std = np.sqrt(lg.R.variances())
    Rc = ObsError.full(std[:, None] * gaussian_correlation(coords, L) * std[None, :])
    xa, Pa = kalman_analysis(lg.xb, lg.B, lg.H, lg.y, Rc)
    X = lg.ensemble(N_LARGE, exact=False)
    scheme = EnKF(innovations=Innovations.CORRELATED, correlation_length=L, covariance=covariance)
    Xa = scheme.analyse(X, lg.H @ X, lg.y, lg.R, context=AnalysisContext(seed=4, obs_coords=coords))
    tol_mean, tol_cov = sampling_tolerance(lg.B, N_LARGE)
    assert np.all(np.abs(Xa.mean(axis=1) - xa) <= tol_mean)
    assert np.all(np.abs(np.cov(Xa) - Pa) <= tol_cov)
    # and not for the diagonal R it was given: the correlation is not ignored. The two
    # analyses differ by 0.05 at most, well inside the sampling tolerance, so compare whole
    # matrices: the sample covariance is nearer R_c's (Frobenius 0.05-0.11 over seeds 0-3)
    # than the diagonal R's (0.13-0.16)
    assert np.linalg.norm(np.cov(Xa) - Pa) < 0.8 * np.linalg.norm(np.cov(Xa) - lg.Pa)


# n = m = 40, H = I, prior B = 4 I (std 2), R = I: the Kalman posterior variance is
# 4 / (4 + 1) = 0.8 (std 0.894) for every variable, with gain k = 0.8.
SPREAD_N, SPREAD_B, SPREAD_VA = 40, 4.0, 0.8


def mean_posterior_variance(scheme, N, seeds):
    """Mean over variables and seeds of the analysis sample variance, from priors of exact sample covariance B."""
    n, R, y = SPREAD_N, ObsError.diagonal(np.ones(SPREAD_N)), np.zeros(SPREAD_N)
    out = []
    for seed in seeds:
        X = exact_ensemble(np.zeros(n), SPREAD_B * np.eye(n), N, np.random.default_rng(seed))
        Xa = X @ scheme.prepare(X, y, R, AnalysisContext(seed=seed)).W
        out.append(np.mean(np.var(Xa, axis=1, ddof=1)))
    return float(np.mean(out))


def test_enkf_exact_gives_kalman_spread_at_moderate_n():
    """EXACT, N = 120: unbiased posterior variance; ENSEMBLE is far off (Evensen's cross terms).

    With a prior of exact sample covariance B the gain is the Kalman gain K, the anomalies are
    (I - K H) A + K E and, as E[E E^T] = N1 R and E[A E^T] = 0, the expected analysis
    sample covariance is (I - KH) B (I - KH)^T + K R K^T = (I - KH) B at any N. Its mean
    diagonal v fluctuates with variance (2 k^4 r^2 + 4 k^2 (1 - k)^2 b r) / (n N1) = 1.23 / 4760,
    sd 0.016 per draw, 0.008 for the mean of 4 seeds; the tolerance is 4 sd = 0.032 (measured
    0.804, spread 0.896). The ENSEMBLE form gives 2.08 (spread 1.44).
    """
    N, seeds = 120, range(1, 5)
    v = mean_posterior_variance(EnKF(), N, seeds)
    assert abs(v - SPREAD_VA) < 0.032, v
    assert mean_posterior_variance(EnKF(covariance=ENSEMBLE), N, seeds) > 2 * SPREAD_VA


def test_enkf_ensemble_bias_shrinks_with_n():
    """The ENSEMBLE form's spread bias: measured 0.53, 0.040, 0.007 at N = 120, 1000, 5000.

    (Spread = sqrt of the mean variance, Kalman 0.894; mean of 3 seeds, seed-to-seed sd 0.014,
    0.003, 0.0005: each step down is many sd.) The bias stays positive, shrinking with the
    cross terms S E^T / N1, of relative size sqrt(m / N).
    """
    bias = [math.sqrt(mean_posterior_variance(EnKF(covariance=ENSEMBLE), N, range(1, 4))) - math.sqrt(SPREAD_VA)
            for N in (120, 1000, 5000)]
    assert bias[0] > 0.3 and bias[0] > bias[1] > bias[2] > 0.002, bias


def test_enkf_prepare_returns_transform_update(lingauss):
    Y = lingauss.H @ lingauss.ensemble(8, exact=False)
    assert isinstance(EnKF().prepare(Y, lingauss.y, lingauss.R, AnalysisContext()), TransformUpdate)


def test_enkf_nonlinear_h_moves_mean_toward_observations():
    rng = np.random.default_rng(5)
    X = 2.0 + 0.3 * rng.standard_normal((4, 30))
    h = lambda X: X[:3] ** 2  # noqa: E731
    y = np.full(3, 2.4**2)
    Xa = EnKF().analyse(X, h(X), y, ObsError.diagonal(np.full(3, 0.1)), context=AnalysisContext(seed=1))
    assert Xa.shape == X.shape and np.all(np.isfinite(Xa))
    assert np.linalg.norm(h(Xa).mean(axis=1) - y) < 0.5 * np.linalg.norm(h(X).mean(axis=1) - y)


@pytest.mark.parametrize("r", [1e-12, 1e-16, 1e-20])
def test_enkf_exact_tiny_r_takes_the_svd_path_and_is_right(monkeypatch, r):
    """m = 12 >= N = 6 and R = r I with r tiny: |S~|_F^2 ~ 1e13-1e21 times N1 exceeds the
    Cholesky bound (1e8 N1), so the transform comes from the thin SVD of S~. It must equal
    I + (S^T S + r N1 I)^{-1} S^T D' (mean-centred), computed here as an independent
    least-squares problem on the unwhitened S, to 1e-10 (measured 7.7e-12 at r = 1e-20).
    Cholesky alone raises LinAlgError at r = 1e-16 on this problem."""
    import fdassim.analysis.enkf as enkf_module

    calls = []
    real_svd = enkf_module.svd
    monkeypatch.setattr(enkf_module, "svd", lambda *a, **k: calls.append(1) or real_svd(*a, **k))
    rng = np.random.default_rng(0)
    m, N = 12, 6
    Y, y, E = rng.standard_normal((m, N)), rng.standard_normal(m), 1e-10 * rng.standard_normal((m, N))
    W = enkf_exact_transform(Y, y, E, ObsError.diagonal(np.full(m, r)))
    assert calls, "the SVD branch was not taken"
    S, Dp = anomalies(Y), y[:, None] + E - Y
    stacked = np.vstack([S, math.sqrt(r * (N - 1)) * np.eye(N)])
    M = np.linalg.lstsq(stacked, np.vstack([Dp, np.zeros((N, N))]), rcond=None)[0]
    np.testing.assert_allclose(W, np.eye(N) + M - M.mean(axis=0), rtol=0, atol=1e-10)
    # and a moderate R stays on the Cholesky path
    calls.clear()
    enkf_exact_transform(Y, y, E, ObsError.diagonal(np.ones(m)))
    assert not calls


def test_enkf_ensemble_form_whitening_matters_when_m_ge_n():
    """m = 12 >= N = 6 with a full R: C C^T is singular and the pseudo-inverse is not invariant
    under whitening, so whitened and unwhitened transforms differ (by 0.1-1 here); the
    whitened one does not depend on the units of each observation (to 1e-12), the unwhitened
    one does. With m = 4 < N = 6 and no truncation both agree (to 1e-10)."""
    rng = np.random.default_rng(2)
    N = 6
    for m, differ in ((12, True), (4, False)):
        F = rng.standard_normal((m, m))
        R = ObsError.full(F @ F.T / m + 0.5 * np.eye(m))
        Y, y = rng.standard_normal((m, N)), rng.standard_normal(m)
        E = R.color(rng.standard_normal((m, N)))
        whitened, plain = enkf_transform(Y, y, E, R, truncation=1.0), enkf_transform(Y, y, E, None, truncation=1.0)
        if differ:
            assert np.abs(whitened - plain).max() > 1e-2
            units = np.diag(rng.uniform(0.1, 10.0, m))  # observation k measured in other units
            Ru = ObsError.full(units @ R.matrix() @ units)
            np.testing.assert_allclose(enkf_transform(units @ Y, units @ y, units @ E, Ru, truncation=1.0),
                                       whitened, rtol=0, atol=1e-12)
            assert np.abs(enkf_transform(units @ Y, units @ y, units @ E, None, truncation=1.0) - plain).max() > 1e-2
        else:
            np.testing.assert_allclose(whitened, plain, rtol=0, atol=1e-10)
