"""Relations theory predicts between the transform schemes, and what they all share.

ETKF, serial EnSRF and DEnKF use the same Kalman gain for the mean, and so does the
stochastic EnKF with the exact R (its perturbations are centred); for linear H the ETKF and
the serial EnSRF also give the same analysis covariance (both are exact square roots of
(I - KH) P for the sample P), whatever the ensemble. All schemes validate their inputs the
same way and produce a transform that depends only on (Y, y, R, context).
"""

import numpy as np
import pytest

from lingauss import make_lingauss
from fdassim.analysis import AnalysisContext, ObsError, Rows
from fdassim.analysis.denkf import DEnKF
from fdassim.analysis.enkf import EnKF, InnovationCovariance
from fdassim.analysis.enkf_n import EnKFN
from fdassim.analysis.ensrf import EnSRF
from fdassim.analysis.etkf import ETKF
from fdassim.errors import InputError, ObservationError

SCHEMES = [pytest.param(EnKF(), id="EnKF"), pytest.param(EnKF(covariance=InnovationCovariance.ENSEMBLE), id="EnKF-ens"),
           pytest.param(ETKF(), id="ETKF"), pytest.param(EnSRF(), id="EnSRF"),
           pytest.param(DEnKF(), id="DEnKF"), pytest.param(EnKFN(), id="EnKFN")]

SIZES = pytest.mark.parametrize("n, m, N", [(5, 3, 4), (5, 3, 8), (4, 10, 6)], ids=["N<n", "N>n", "m>N"])


@SIZES
@pytest.mark.parametrize("full_R", [False, True], ids=["diagR", "fullR"])
def test_etkf_and_ensrf_give_same_mean_and_covariance(n, m, N, full_R):
    lg = make_lingauss(n=n, m=m, full_R=full_R, seed=7)
    X = lg.ensemble(N, exact=False)
    Y = lg.H @ X
    Xe = ETKF().analyse(X, Y, lg.y, lg.R)
    Xs = EnSRF().analyse(X, Y, lg.y, lg.R)
    scale = np.abs(X).max()
    np.testing.assert_allclose(Xs.mean(axis=1), Xe.mean(axis=1), atol=1e-10 * scale)
    np.testing.assert_allclose(np.cov(Xs), np.cov(Xe), atol=1e-10 * scale**2)


@SIZES
def test_schemes_share_the_mean_update(n, m, N):
    lg = make_lingauss(n=n, m=m, full_R=True, seed=8)
    X = lg.ensemble(N, exact=False)
    Y = lg.H @ X
    means = [s.analyse(X, Y, lg.y, lg.R).mean(axis=1) for s in (ETKF(), EnSRF(), DEnKF(), EnKF())]
    # the mean update of each is the Kalman update with the sample covariance (for the EnKF
    # with the exact R: the mean of D - Y is y - mean(Y), as E is centred)
    A, S = X - X.mean(axis=1, keepdims=True), Y - Y.mean(axis=1, keepdims=True)
    K = A @ S.T @ np.linalg.inv(S @ S.T + (N - 1) * lg.R.matrix())
    ref = X.mean(axis=1) + K @ (lg.y - Y.mean(axis=1))
    for mean in means:
        np.testing.assert_allclose(mean, ref, atol=1e-10 * np.abs(X).max())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_zero_innovation_keeps_the_mean(scheme, lingauss):
    """With y equal to the predicted mean, the mean weights vanish (EnKF: its E is centred)."""
    X = lingauss.ensemble(9, exact=False)
    Y = lingauss.H @ X
    Xa = scheme.analyse(X, Y, Y.mean(axis=1), lingauss.R, context=AnalysisContext(seed=2))
    np.testing.assert_allclose(Xa.mean(axis=1), X.mean(axis=1), atol=1e-10)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_same_context_give_same_transform(scheme, lingauss):
    Y = lingauss.H @ lingauss.ensemble(8, exact=False)
    W1 = scheme.prepare(Y, lingauss.y, lingauss.R, AnalysisContext(seed=4, cycle=3)).W
    W2 = scheme.prepare(Y.copy(), lingauss.y.copy(), lingauss.R, AnalysisContext(seed=4, cycle=3)).W
    np.testing.assert_array_equal(W1, W2)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_row_blocks_give_the_whole_analysis(scheme, lingauss):
    X = lingauss.ensemble(8, exact=False)
    up = scheme.prepare(lingauss.H @ X, lingauss.y, lingauss.R, AnalysisContext(seed=1))
    rows = Rows.whole(X.shape[0])
    whole = up.apply(X, rows)
    parts = np.vstack([up.apply(X[:2], rows.block(0, 2)), up.apply(X[2:], rows.block(2, X.shape[0]))])
    np.testing.assert_array_equal(parts, whole)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_run_with_nonlinear_h(scheme):
    rng = np.random.default_rng(6)
    X = 1.0 + 0.5 * rng.standard_normal((6, 10))
    h = lambda X: np.vstack([X[:3] ** 2, np.sin(X[3:5])])  # noqa: E731
    R = ObsError.full(np.eye(5) * 0.2 + 0.05)
    y = h(np.full((6, 1), 1.3))[:, 0]
    Xa = scheme.analyse(X, h(X), y, R, context=AnalysisContext(seed=3))
    assert Xa.shape == X.shape and np.all(np.isfinite(Xa))
    assert not np.allclose(Xa, X)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_schemes_reject_bad_inputs(scheme, lingauss):
    X = lingauss.ensemble(8, exact=False)
    Y, y, R = lingauss.H @ X, lingauss.y, lingauss.R
    ctx = AnalysisContext()
    with pytest.raises(ObservationError, match=r"y has 2 observations but Y predicts 3"):
        scheme.prepare(Y, y[:2], R, ctx)
    with pytest.raises(InputError, match=r"Y has 7 members but the ensemble has 8"):
        scheme.analyse(X, Y[:, :7], y, R)
    Xbad = X.copy()
    Xbad[1, 2] = np.nan
    with pytest.raises(InputError, match=r"X has NaN or Inf values in member\(s\) \[2\]"):
        scheme.analyse(Xbad, Y, y, R)
    Ybad = Y.copy()
    Ybad[0, 5] = np.inf
    with pytest.raises(InputError, match=r"Y \(predicted observations\) has NaN or Inf values in member\(s\) \[5\]"):
        scheme.prepare(Ybad, y, R, ctx)
    with pytest.raises(ObservationError, match=r"R is for 4 observations but there are 3"):
        scheme.prepare(Y, y, ObsError.diagonal(np.ones(4)), ctx)
    with pytest.raises(ObservationError, match=r"R must be an ObsError"):
        scheme.prepare(Y, y, np.eye(3), ctx)
    with pytest.raises(InputError, match=r"has 1 member\(s\); an ensemble needs at least 2"):
        scheme.prepare(Y[:, :1], y, R, ctx)


def test_schemes_non_positive_observation_error_is_rejected():
    with pytest.raises(ObservationError, match=r"variance must be positive and finite: entry 1 is \S*0\.0"):
        ObsError.diagonal([1.0, 0.0, 2.0])
    with pytest.raises(ObservationError, match=r"not positive definite"):
        ObsError.full(np.array([[1.0, 2.0], [2.0, 1.0]]))
