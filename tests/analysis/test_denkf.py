"""Tests of fdassim.analysis.denkf: the DEnKF of Sakov & Oke (2008)."""

import numpy as np

from lingauss import anomalies, make_lingauss, sampling_tolerance
from fdassim.analysis import AnalysisContext, ObsError, TransformUpdate
from fdassim.analysis.denkf import DEnKF, denkf_transform

N_LARGE = 2000




def denkf_covariance(lg):
    """P^a = (I - KH/2) B (I - KH/2)^T = (I - KH) B + 1/4 K H B H^T K^T (K H B = B H^T K^T)."""
    C = lg.H @ lg.B @ lg.H.T + lg.R.matrix()
    K = np.linalg.solve(C, lg.H @ lg.B).T
    return (lg.B - K @ lg.H @ lg.B) + 0.25 * K @ lg.H @ lg.B @ lg.H.T @ K.T


def test_denkf_exact_prior_mean_matches_kalman_and_covariance_its_formula(lingauss):
    X = lingauss.ensemble(20)
    Xa = DEnKF().analyse(X, lingauss.H @ X, lingauss.y, lingauss.R)
    Pa = denkf_covariance(lingauss)
    np.testing.assert_allclose(Xa.mean(axis=1), lingauss.xa, rtol=0, atol=1e-10 * np.abs(lingauss.xa).max())
    np.testing.assert_allclose(np.cov(Xa), Pa, rtol=0, atol=1e-10 * np.abs(Pa).max())
    # the 1/4 K H B H^T K^T term is there: DEnKF spread exceeds the Kalman one
    assert np.trace(np.cov(Xa)) > np.trace(lingauss.Pa) + 1e-3


def test_denkf_large_sample_matches_kalman_mean_and_its_covariance(lingauss):
    X = lingauss.ensemble(N_LARGE, exact=False)
    Xa = DEnKF().analyse(X, lingauss.H @ X, lingauss.y, lingauss.R)
    tol_mean, tol_cov = sampling_tolerance(lingauss.B, N_LARGE)
    assert np.all(np.abs(Xa.mean(axis=1) - lingauss.xa) <= tol_mean)
    assert np.all(np.abs(np.cov(Xa) - denkf_covariance(lingauss)) <= tol_cov)


def test_denkf_matches_state_space_half_gain_update(lingauss):
    """Any ensemble (N < n here): x^a = x + K dy, A^a = A - K S / 2 with K = A S^T (S S^T + N1 R)^-1."""
    X = lingauss.ensemble(4, exact=False)
    Y = lingauss.H @ X
    A, S = anomalies(X), anomalies(Y)
    N1 = X.shape[1] - 1
    K = A @ S.T @ np.linalg.inv(S @ S.T + N1 * lingauss.R.matrix())
    W = denkf_transform(S, lingauss.y - Y.mean(axis=1), lingauss.R)
    Xa = X @ W
    np.testing.assert_allclose(Xa.mean(axis=1), X.mean(axis=1) + K @ (lingauss.y - Y.mean(axis=1)), atol=1e-12)
    np.testing.assert_allclose(anomalies(Xa), A - 0.5 * K @ S, atol=1e-12)


def test_denkf_many_observations_few_members():
    lg = make_lingauss(n=4, m=15, full_R=True, seed=6)  # m > N: S~ has more rows than columns
    X = lg.ensemble(6, exact=False)
    Y = lg.H @ X
    A, S = anomalies(X), anomalies(Y)
    K = A @ S.T @ np.linalg.inv(S @ S.T + 5 * lg.R.matrix())
    Xa = X @ denkf_transform(S, lg.y - Y.mean(axis=1), lg.R)
    np.testing.assert_allclose(anomalies(Xa), A - 0.5 * K @ S, atol=1e-10)


def test_denkf_prepare_returns_transform_update(lingauss):
    X = lingauss.ensemble(8, exact=False)
    up = DEnKF().prepare(lingauss.H @ X, lingauss.y, lingauss.R, AnalysisContext())
    assert isinstance(up, TransformUpdate) and up.W.shape == (8, 8)


def test_denkf_nonlinear_h_runs():
    rng = np.random.default_rng(5)
    X = 2.0 + 0.3 * rng.standard_normal((4, 30))
    h = lambda X: X[:3] ** 2  # noqa: E731
    y = np.full(3, 2.4**2)
    Xa = DEnKF().analyse(X, h(X), y, ObsError.diagonal(np.full(3, 0.1)))
    assert Xa.shape == X.shape and np.all(np.isfinite(Xa))
    assert np.linalg.norm(h(Xa).mean(axis=1) - y) < np.linalg.norm(h(X).mean(axis=1) - y)
