"""Tests of fdassim.analysis.ensrf: the serial EnSRF of Whitaker & Hamill (2002)."""

import numpy as np
import pytest

from lingauss import anomalies, make_lingauss, sampling_tolerance
from fdassim.analysis import AnalysisContext, ObsError, TransformUpdate
from fdassim.analysis.ensrf import EnSRF, ensrf_transform

N_LARGE = 2000




def test_ensrf_exact_prior_matches_kalman(lingauss):
    X = lingauss.ensemble(20)
    Xa = EnSRF().analyse(X, lingauss.H @ X, lingauss.y, lingauss.R)
    np.testing.assert_allclose(Xa.mean(axis=1), lingauss.xa, rtol=0, atol=1e-10 * np.abs(lingauss.xa).max())
    np.testing.assert_allclose(np.cov(Xa), lingauss.Pa, rtol=0, atol=1e-10 * np.abs(lingauss.Pa).max())


def test_ensrf_large_sample_matches_kalman(lingauss):
    X = lingauss.ensemble(N_LARGE, exact=False)
    Xa = EnSRF().analyse(X, lingauss.H @ X, lingauss.y, lingauss.R)
    tol_mean, tol_cov = sampling_tolerance(lingauss.B, N_LARGE)
    assert np.all(np.abs(Xa.mean(axis=1) - lingauss.xa) <= tol_mean)
    assert np.all(np.abs(np.cov(Xa) - lingauss.Pa) <= tol_cov)


def test_ensrf_single_observation_matches_whitaker_hamill():
    """One scalar observation: mean by K d, anomalies by -alpha K H A (Whitaker & Hamill 2002), in state space."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 9))
    h = rng.standard_normal(6)
    Y = (h @ X)[None, :]
    r, y = 0.7, np.array([1.3])
    A, N1 = anomalies(X), X.shape[1] - 1
    s = anomalies(Y)[0]
    hph = s @ s / N1
    K = A @ s / N1 / (hph + r)  # P H^T / (H P H^T + r)
    alpha = 1 / (1 + np.sqrt(r / (hph + r)))
    Xa = X @ ensrf_transform(Y, y, ObsError.diagonal([r]))
    np.testing.assert_allclose(Xa.mean(axis=1), X.mean(axis=1) + K * (y[0] - Y.mean()), atol=1e-12)
    np.testing.assert_allclose(anomalies(Xa), A - alpha * np.outer(K, s), atol=1e-12)
    # the reduced gain makes the analysis covariance exactly (I - K H) P
    P = A @ A.T / N1
    np.testing.assert_allclose(np.cov(Xa), P - np.outer(K, h @ P), atol=1e-12)


@pytest.mark.parametrize("full_R", [False, True], ids=["diagR", "fullR"])
def test_ensrf_observation_order_does_not_change_moments(full_R):
    lg = make_lingauss(n=6, m=4, full_R=full_R, seed=2)
    X = lg.ensemble(5, exact=False)  # N < n: a rank-deficient ensemble
    Y = lg.H @ X
    p = np.array([2, 0, 3, 1])
    R = lg.R.matrix()
    Rp = ObsError.full(R[np.ix_(p, p)]) if full_R else ObsError.diagonal(lg.R.var[p])
    Xa = X @ ensrf_transform(Y, lg.y, lg.R)
    Xp = X @ ensrf_transform(Y[p], lg.y[p], Rp)
    assert not np.allclose(Xa, Xp)  # the members differ ...
    np.testing.assert_allclose(Xp.mean(axis=1), Xa.mean(axis=1), atol=1e-12)  # ... their moments do not
    np.testing.assert_allclose(np.cov(Xp), np.cov(Xa), atol=1e-12)


def test_ensrf_full_r_equals_whitened_diagonal_problem():
    """Whitening is the documented treatment of a full R: same W as R^{-1/2}-transformed data with R = I."""
    lg = make_lingauss(n=5, m=3, full_R=True, seed=3)
    X = lg.ensemble(8, exact=False)
    Y = lg.H @ X
    Lc = np.linalg.cholesky(lg.R.matrix())
    W_full = ensrf_transform(Y, lg.y, lg.R)
    W_white = ensrf_transform(np.linalg.solve(Lc, Y), np.linalg.solve(Lc, lg.y), ObsError.diagonal(np.ones(3)))
    np.testing.assert_allclose(W_full, W_white, atol=1e-12)


def test_ensrf_does_not_modify_inputs(lingauss):
    X = lingauss.ensemble(7, exact=False)
    Y = lingauss.H @ X
    Y0, y0 = Y.copy(), lingauss.y.copy()
    up = EnSRF().prepare(Y, lingauss.y, lingauss.R, AnalysisContext())
    assert isinstance(up, TransformUpdate)
    np.testing.assert_array_equal(Y, Y0)
    np.testing.assert_array_equal(lingauss.y, y0)


def test_ensrf_nonlinear_h_runs():
    rng = np.random.default_rng(5)
    X = 2.0 + 0.3 * rng.standard_normal((4, 30))
    h = lambda X: X[:3] ** 2  # noqa: E731
    y = np.full(3, 2.4**2)
    Xa = EnSRF().analyse(X, h(X), y, ObsError.diagonal(np.full(3, 0.1)))
    assert Xa.shape == X.shape and np.all(np.isfinite(Xa))
    assert np.linalg.norm(h(Xa).mean(axis=1) - y) < np.linalg.norm(h(X).mean(axis=1) - y)
