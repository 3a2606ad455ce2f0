"""Ensemble-space Gauss-Newton (IEnKS, MLEF) and the SIEnKS filter transform against exact answers."""

import numpy as np
import pytest

from fdassim.analysis import ETKF, EnKFN, ObsError, kalman_analysis
from fdassim.analysis.enkf_n import enkf_n_weights
from fdassim.analysis.etkf import mean_anomaly_transform
from fdassim.errors import FdassimError
from fdassim.smoothers import Term, filter_transform, gauss_newton

from lingauss import anomalies, exact_ensemble


def _problem(n=4, m=3, N=9, seed=0):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n))
    B = G @ G.T / n + 0.5 * np.eye(n)
    E0 = exact_ensemble(rng.standard_normal(n), B, N, rng)
    H = rng.standard_normal((m, n))
    R = ObsError.diagonal(rng.uniform(0.3, 1.0, m))
    y = H @ E0.mean(axis=1) + rng.standard_normal(m)
    return E0, B, H, R, y


def test_gauss_newton_linear_first_step_is_the_etkf_and_the_second_confirms_it():
    """One term, linear H: one step gives the ETKF transform (round-off, 1e-12); the second
    evaluation's step is round-off, so a tolerance of 1e-8 stops there."""
    E0, _, H, R, y = _problem()
    N = E0.shape[1]
    res = gauss_newton(lambda W: [H @ E0 @ W], [Term(y, R)], N, tol=1e-8)
    W_etkf = ETKF().prepare(H @ E0, y, R, None).W
    np.testing.assert_allclose(res.W, W_etkf, atol=1e-12)
    assert res.iterations == 2 and res.converged
    one = gauss_newton(lambda W: [H @ E0 @ W], [Term(y, R)], N, max_iter=1)
    np.testing.assert_allclose(one.W, W_etkf, atol=1e-12)
    assert one.iterations == 1 and not one.converged


def test_gauss_newton_linear_smoother_equals_the_kalman_analysis_of_the_initial_state():
    """Two observation times of a linear model M: the analysis of E0 has the exact Kalman mean and
    covariance given y_1 = H M x0 + e, y_2 = H M^2 x0 + e (exact prior moments, N > n: 1e-10)."""
    E0, B, H, R, y1 = _problem(seed=1)
    n, N = E0.shape
    M = np.eye(n) + 0.1 * np.random.default_rng(5).standard_normal((n, n))
    y2 = y1[::-1] + 0.3
    Hs = [H @ M, H @ M @ M]
    res = gauss_newton(lambda W: [Hk @ E0 @ W for Hk in Hs], [Term(y1, R), Term(y2, R)], N, tol=1e-10)
    Ea = E0 @ res.W
    Rcat = ObsError.diagonal(np.concatenate([R.var, R.var]))
    xa, Pa = kalman_analysis(E0.mean(axis=1), B, np.vstack(Hs), np.concatenate([y1, y2]), Rcat)
    np.testing.assert_allclose(Ea.mean(axis=1), xa, atol=1e-10)
    A = anomalies(Ea)
    np.testing.assert_allclose(A @ A.T / (N - 1), Pa, atol=1e-10)


def test_gauss_newton_weights_temper_the_error_covariance():
    """A term of weight beta is the term with R / beta; two halves of one observation are the whole (1e-12)."""
    E0, _, H, R, y = _problem(seed=2)
    N = E0.shape[1]
    f = lambda W: [H @ E0 @ W]  # noqa: E731
    a = gauss_newton(f, [Term(y, R, 0.25)], N, max_iter=1)
    b = gauss_newton(f, [Term(y, ObsError.diagonal(R.var / 0.25))], N, max_iter=1)
    np.testing.assert_allclose(a.W, b.W, atol=1e-12)
    halves = gauss_newton(lambda W: [H @ E0 @ W] * 2, [Term(y, R, 0.5), Term(y, R, 0.5)], N, max_iter=1)
    whole = gauss_newton(f, [Term(y, R)], N, max_iter=1)
    np.testing.assert_allclose(halves.W, whole.W, atol=1e-12)


def test_gauss_newton_finite_size_converges_to_the_enkf_n():
    """Linear H, finite-size prior: the fixed point is the EnKF-N's minimiser and its transform
    (the same cost, N ln(eps_N + |w|^2) / 2; tolerance 1e-8 against its dual solution)."""
    E0, _, H, R, y = _problem(seed=3)
    N = E0.shape[1]
    res = gauss_newton(lambda W: [H @ E0 @ W], [Term(y, R)], N, finite_size=True, tol=1e-13, max_iter=100)
    Y = H @ E0
    w, T, zeta = enkf_n_weights(anomalies(Y), y - Y.mean(axis=1), R)
    assert res.converged
    np.testing.assert_allclose(res.w, w, atol=1e-8)
    np.testing.assert_allclose(res.W, mean_anomaly_transform(w, T), atol=1e-8)


def test_gauss_newton_nonlinear_operator_stops_by_its_rule_or_its_cap():
    """H(x) = x + 0.1 x^3: the cap stops at max_iter without convergence; with room it converges
    (step below tol), to the fixed point further iterations keep (1e-8), where the cost is
    lower than at the prior mean."""
    E0, _, H, R, y = _problem(seed=4)
    N = E0.shape[1]
    Hx = lambda X: H @ (X + 0.1 * X**3)  # noqa: E731
    capped = gauss_newton(lambda W: [Hx(E0 @ W)], [Term(y, R)], N, tol=1e-12, max_iter=2)
    assert capped.iterations == 2 and not capped.converged
    res = gauss_newton(lambda W: [Hx(E0 @ W)], [Term(y, R)], N, tol=1e-9, max_iter=50)
    assert res.converged and 3 <= res.iterations < 50
    tight = gauss_newton(lambda W: [Hx(E0 @ W)], [Term(y, R)], N, tol=1e-14, max_iter=80)
    assert np.linalg.norm(tight.w - res.w) < 1e-8

    def cost(w):
        d = R.whiten(y - Hx(E0.mean(axis=1) + anomalies(E0) @ w))
        return 0.5 * (N - 1) * w @ w + 0.5 * d @ d

    assert cost(res.w) < cost(np.zeros(N))


def test_gauss_newton_linearised_transform_maps_the_last_ensemble_to_the_analysis():
    """For a linear model the last evaluated ensemble at any time, transformed by `linearised`,
    is the analysis run to that time (round-off, 1e-10)."""
    E0, _, H, R, y = _problem(seed=6)
    n, N = E0.shape
    M = np.eye(n) + 0.2 * np.random.default_rng(1).standard_normal((n, n))
    last = {}

    def f(W):
        last["E"] = M @ E0 @ W
        return [H @ last["E"]]

    res = gauss_newton(f, [Term(y, R)], N, max_iter=3, tol=0.0)
    np.testing.assert_allclose(last["E"] @ res.linearised, M @ E0 @ res.W, atol=1e-10)


def test_gauss_newton_rejects_evaluations_of_the_wrong_shape():
    E0, _, H, R, y = _problem()
    with pytest.raises(FdassimError, match=r"evaluate returned 2 observed ensembles for 1 terms"):
        gauss_newton(lambda W: [H @ E0, H @ E0], [Term(y, R)], E0.shape[1])
    with pytest.raises(FdassimError, match=r"an observed ensemble has shape \(2, 9\), expected \(3, 9\)"):
        gauss_newton(lambda W: [(H @ E0)[:2]], [Term(y, R)], E0.shape[1])


def test_filter_transform_is_bitwise_the_filters_and_weights_divide_r():
    E0, _, H, R, y = _problem(seed=7)
    Y = H @ E0
    assert np.array_equal(filter_transform(Y, y, R), ETKF().prepare(Y, y, R, None).W)
    assert np.array_equal(filter_transform(Y, y, R, finite_size=True), EnKFN().prepare(Y, y, R, None).W)
    np.testing.assert_allclose(filter_transform(Y, y, R, weight=0.4),
                               filter_transform(Y, y, ObsError.diagonal(R.var / 0.4)), atol=1e-12)
