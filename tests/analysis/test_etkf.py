"""Tests of fdassim.analysis.etkf: the ETKF with the symmetric square root."""

import numpy as np
import pytest
from scipy.linalg import sqrtm

from lingauss import anomalies, make_lingauss, sampling_tolerance
from fdassim.analysis import AnalysisContext, ObsError, TransformUpdate
from fdassim.analysis.etkf import ETKF, etkf_transform, etkf_weights, mean_anomaly_transform

N_LARGE = 2000




def test_etkf_exact_prior_matches_kalman(lingauss):
    X = lingauss.ensemble(20)  # sample mean and covariance equal xb and B exactly
    Xa = ETKF().analyse(X, lingauss.H @ X, lingauss.y, lingauss.R)
    scale = np.abs(lingauss.Pa).max()
    np.testing.assert_allclose(Xa.mean(axis=1), lingauss.xa, rtol=0, atol=1e-10 * np.abs(lingauss.xa).max())
    np.testing.assert_allclose(np.cov(Xa), lingauss.Pa, rtol=0, atol=1e-10 * scale)


def test_etkf_large_sample_matches_kalman(lingauss):
    X = lingauss.ensemble(N_LARGE, exact=False)
    Xa = ETKF().analyse(X, lingauss.H @ X, lingauss.y, lingauss.R)
    tol_mean, tol_cov = sampling_tolerance(lingauss.B, N_LARGE)
    assert np.all(np.abs(Xa.mean(axis=1) - lingauss.xa) <= tol_mean)
    assert np.all(np.abs(np.cov(Xa) - lingauss.Pa) <= tol_cov)


@pytest.mark.parametrize("m, N", [(3, 8), (12, 6)], ids=["m<N", "m>N"])
def test_etkf_weights_match_direct_formula(m, N):
    """The SVD route equals the textbook N x N formulas with explicit R^-1 and a matrix square root."""
    lg = make_lingauss(n=5, m=m, full_R=True, seed=4)
    X = lg.ensemble(N, exact=False)
    Y = lg.H @ X + 0.1 * np.sin(X[:m % 5 + 1].sum(axis=0))  # any Y, not only linear
    S = anomalies(Y)
    dy = lg.y - Y.mean(axis=1)
    Rinv = np.linalg.inv(lg.R.matrix())
    Pa = np.linalg.inv((N - 1) * np.eye(N) + S.T @ Rinv @ S)  # Hunt et al. (2007), ensemble space
    w, T = etkf_weights(S, dy, lg.R)
    np.testing.assert_allclose(w, Pa @ S.T @ Rinv @ dy, atol=1e-12)
    np.testing.assert_allclose(T, np.real(sqrtm((N - 1) * Pa)), atol=1e-10)


def test_etkf_anomaly_transform_is_symmetric_and_mean_preserving(lingauss):
    X = lingauss.ensemble(9, exact=False)
    Y = lingauss.H @ X
    S, dy = anomalies(Y), lingauss.y - Y.mean(axis=1)
    w, T = etkf_weights(S, dy, lingauss.R)
    N = X.shape[1]
    np.testing.assert_array_equal(T, T.T)
    np.testing.assert_allclose(T @ np.ones(N), np.ones(N), atol=1e-12)  # T 1 = 1
    assert abs(w.sum()) < 1e-12  # w is in the range of S^T, orthogonal to 1
    Xa = X @ etkf_transform(S, dy, lingauss.R)
    A = anomalies(X)
    np.testing.assert_allclose(Xa.mean(axis=1), X.mean(axis=1) + A @ w, atol=1e-12)  # mean from w only
    np.testing.assert_allclose(anomalies(Xa), A @ T, atol=1e-12)  # anomalies from T only


def test_etkf_zero_innovation_keeps_the_mean(lingauss):
    X = lingauss.ensemble(7, exact=False)
    Y = lingauss.H @ X
    Xa = ETKF().analyse(X, Y, Y.mean(axis=1), lingauss.R)
    np.testing.assert_allclose(Xa.mean(axis=1), X.mean(axis=1), atol=1e-12)
    assert np.trace(np.cov(Xa)) < np.trace(np.cov(X))  # observations still shrink the spread


def test_etkf_mean_anomaly_transform_reconstructs_the_ensemble():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 6))
    w = rng.standard_normal(6)
    T = rng.standard_normal((6, 6))
    A = anomalies(X)
    Xa = X @ mean_anomaly_transform(w, T)  # = xbar 1^T + A (w 1^T + T), for any w and T
    np.testing.assert_allclose(Xa, (X.mean(axis=1) + A @ w)[:, None] + A @ T, atol=1e-12)


def test_etkf_prepare_returns_transform_update(lingauss):
    X = lingauss.ensemble(8, exact=False)
    up = ETKF().prepare(lingauss.H @ X, lingauss.y, lingauss.R, AnalysisContext())
    assert isinstance(up, TransformUpdate) and up.W.shape == (8, 8)


def test_etkf_nonlinear_h_moves_mean_toward_observations():
    rng = np.random.default_rng(5)
    X = 2.0 + 0.3 * rng.standard_normal((4, 30))
    h = lambda X: X[:3] ** 2  # noqa: E731  squares of the first three variables
    y = h(np.full((4, 1), 2.4))[:, 0]
    R = ObsError.diagonal(np.full(3, 0.1))
    Xa = ETKF().analyse(X, h(X), y, R)
    assert Xa.shape == X.shape and np.all(np.isfinite(Xa))
    assert np.linalg.norm(h(Xa).mean(axis=1) - y) < 0.5 * np.linalg.norm(h(X).mean(axis=1) - y)
