"""A hand-made wrong variant of each scheme fails a check against truth: the checks can fail.

Each scheme has one check against an answer computed independently of its code (the exact
Kalman moments, the Schur-localized Kalman gain, the R-localized Kalman analysis of each
row, the primal EnKF-N cost). Each mutant is one plausible mistake, made by replacing one
function of the scheme's module (``monkeypatch``): the test asserts that the scheme passes
its check and that the mutant fails it.

| scheme | mutant | check that catches it |
|---|---|---|
| ETKF | Cholesky square root instead of the symmetric one (moves the mean) | exact Kalman moments |
| EnSRF | no square root in the reduced-gain factor alpha | exact Kalman moments |
| EAKF (regression filter) | no square root in the spread contraction | exact Kalman moments |
| DEnKF | full gain on the anomalies instead of half | Sakov & Oke (2008) moments |
| EnKF, localized EnKF | observation perturbations not centred | mean = (localized) Kalman mean |
| EnKF-N | the dual minimiser's refinement skipped (bracket midpoint) | primal = dual analysis |
| LETKF | N instead of N - 1 in the local transforms | per-row R-localized ETKF |

Measured: the schemes are within 2e-15 of their checks (EnKF-N's primal and dual within
6e-11), every mutant is off by at least 0.04 (0.4 for the DEnKF's covariance).
"""

import math
import types

import numpy as np
import pytest

from lingauss import anomalies, make_lingauss

from fdassim.analysis import AnalysisContext, ObsError, Rows
from fdassim.analysis import denkf, enkf_n, ensrf, etkf, letkf, local_transforms, regression
from fdassim.analysis.denkf import DEnKF
from fdassim.analysis.enkf import EnKF
from fdassim.analysis.enkf_n import EnKFN
from fdassim.analysis.ensrf import EnSRF
from fdassim.analysis.etkf import ETKF, etkf_transform
from fdassim.analysis.lenkf import LocalizedEnKF
from fdassim.analysis.letkf import LETKF
from fdassim.analysis.localization import Localization
from fdassim.analysis.regression import RegressionFilter

TOL = 1e-10  # the checks are exact in arithmetic; these problems lose < 1e-13 to round-off

# ---------------------------------------------------------------- checks against truth


def check_kalman_moments(scheme):
    """Analysis mean and covariance (N - 1) equal the Kalman filter's from the prior sample moments.

    The prior ensemble has exactly the mean and covariance of the problem (n = 5, m = 3,
    N = 12, diagonal R), so every deterministic square-root filter reproduces ``xa`` and
    ``Pa`` of :func:`fdassim.analysis.kalman_analysis` to round-off.
    """
    lg = make_lingauss(seed=11)
    X = lg.ensemble(12)
    Xa = scheme.analyse(X, lg.H @ X, lg.y, lg.R, context=AnalysisContext(seed=1))
    A = anomalies(Xa)
    np.testing.assert_allclose(Xa.mean(axis=1), lg.xa, rtol=0, atol=TOL)
    np.testing.assert_allclose(A @ A.T / 11, lg.Pa, rtol=0, atol=TOL)


def check_denkf_moments(scheme):
    r"""DEnKF: Kalman mean; covariance :math:`(I - KH)B + \frac14 K H B H^T K^T` (Sakov & Oke 2008, eq. 11)."""
    lg = make_lingauss(seed=12)
    X = lg.ensemble(12)
    Xa = scheme.analyse(X, lg.H @ X, lg.y, lg.R, context=AnalysisContext(seed=1))
    K = np.linalg.solve(lg.H @ lg.B @ lg.H.T + lg.R.matrix(), lg.H @ lg.B).T
    A = anomalies(Xa)
    np.testing.assert_allclose(Xa.mean(axis=1), lg.xa, rtol=0, atol=TOL)
    np.testing.assert_allclose(A @ A.T / 11, lg.Pa + 0.25 * K @ lg.H @ lg.B @ lg.H.T @ K.T, rtol=0, atol=TOL)


# a line of 24 points, every other one observed, for the localized schemes
LINE = np.arange(24, dtype=float)
OBS = np.arange(0, 24, 2)
LOC = Localization(4.0)


def line_problem(seed=13, N=8):
    rng = np.random.default_rng(seed)
    X = np.cumsum(rng.standard_normal((LINE.size, N)), axis=0) / 3 + rng.standard_normal((LINE.size, 1))
    r = rng.uniform(0.3, 1.0, OBS.size)
    y = X[OBS].mean(axis=1) + np.sqrt(r) * rng.standard_normal(OBS.size)
    return X, X[OBS], y, ObsError.diagonal(r)


CTX = AnalysisContext(seed=4, cycle=2, obs_coords=LINE[OBS])
ROWS = Rows.whole(LINE.size, coords=LINE)


def check_localized_kalman_mean(scheme):
    r"""The stochastic analysis mean is the (Schur-localized) Kalman mean.

    .. math::
        \bar x + (\rho_{xo} \circ A S^T)(\rho_{oo} \circ S S^T + (N-1) R)^{-1}(y - \bar y)


    With perturbations centred over members their term averages out exactly; the localization
    infinite (the global EnKF) or finite, the taper computed here from the coordinates.
    """
    X, Y, y, R = line_problem()
    A, S = anomalies(X), anomalies(Y)
    loc = scheme.localization if isinstance(scheme, LocalizedEnKF) else Localization(math.inf)
    rxo = np.ones((LINE.size, OBS.size)) if loc.is_infinite else loc.rho_xo(LINE, LINE[OBS])
    roo = np.ones((OBS.size, OBS.size)) if loc.is_infinite else loc.rho_oo(LINE[OBS])
    K = (rxo * (A @ S.T)) @ np.linalg.inv(roo * (S @ S.T) + (X.shape[1] - 1) * R.matrix())
    mean = X.mean(axis=1) + K @ (y - Y.mean(axis=1))
    out = scheme.analyse(X, Y, y, R, rows=ROWS, context=CTX)
    np.testing.assert_allclose(out.mean(axis=1), mean, rtol=0, atol=TOL)


def check_r_localized_rows(scheme):
    r"""Row :math:`i` of the LETKF is that row times the ETKF transform with :math:`R_i = R / \rho_i`.

    Hunt et al. (2007), section 2.3: each row's local analysis sees the observations within
    the taper's support with their error variances divided by the Gaspari-Cohn weight
    :math:`\rho_i(k)`; computed here with the global ETKF on those observations.
    """
    X, Y, y, R = line_problem()
    S, dy = anomalies(Y), y - Y.mean(axis=1)
    rho = LOC.rho_xo(LINE, LINE[OBS])
    expected = np.empty_like(X)
    for i in range(LINE.size):
        near = rho[i] > 0
        W = etkf_transform(S[near], dy[near], ObsError.diagonal(R.variances()[near] / rho[i, near]))
        expected[i] = X[i] @ W
    np.testing.assert_allclose(scheme.analyse(X, Y, y, R, rows=ROWS, context=CTX), expected, rtol=0, atol=TOL)


def check_primal_equals_dual(scheme):
    """EnKF-N through the scalar dual equals the primal minimisation (to their tolerances, 1e-7)."""
    lg = make_lingauss(n=5, m=3, seed=14)
    X = lg.ensemble(8, exact=False)
    args = (X, lg.H @ X, lg.y, lg.R)
    primal = EnKFN(dual=False).analyse(*args, context=CTX)
    np.testing.assert_allclose(scheme.analyse(*args, context=CTX), primal, rtol=0, atol=1e-7)


# ---------------------------------------------------------------- mutants


def cholesky_root(mp):
    orig = etkf.etkf_weights

    def weights(S, dy, R):
        w, T = orig(S, dy, R)
        return w, np.linalg.cholesky(T @ T.T)  # a square root of the same matrix, not symmetric

    mp.setattr(etkf, "etkf_weights", weights)


def no_sqrt(module):
    def patch(mp):
        mp.setattr(module, "math", types.SimpleNamespace(sqrt=lambda x: x))
    return patch


def full_anomaly_gain(mp):
    orig = denkf.denkf_transform

    def transform(S, dy, R):
        W = orig(S, dy, R)  # I + G d 1^T - G S / 2, with G S 1 = 0
        N = W.shape[0]
        Gd = W.mean(axis=1) - 1.0 / N
        return 2.0 * W - np.eye(N) - Gd[:, None]  # I + G d 1^T - G S

    mp.setattr(denkf, "denkf_transform", transform)


def uncentred_perturbations(mp):
    mp.setattr(AnalysisContext, "perturbation_normals", lambda self, m, N: self.standard_normal(m, N))


def unrefined_dual(mp):
    mp.setattr(enkf_n, "_newton_bisection", lambda f, lo, hi, tol: 0.5 * (lo + hi))


def n_for_n_minus_1(mp):
    def local(Sh, dh):
        N = Sh.shape[2]  # the mistake: N where the formulas have N - 1
        lam, V, c = local_transforms._eig(Sh, dh)
        w = (V @ (c / (lam + N))[:, :, None])[:, :, 0]
        T = local_transforms._sym_function(V, np.sqrt(N / (lam + N)))
        return local_transforms.mean_anomaly_transforms(w, T)

    mp.setattr(letkf, "local_etkf", local)


CASES = {
    "etkf": (ETKF(), check_kalman_moments, cholesky_root),
    "ensrf": (EnSRF(), check_kalman_moments, no_sqrt(ensrf)),
    "eakf": (RegressionFilter(), check_kalman_moments, no_sqrt(regression)),
    "denkf": (DEnKF(), check_denkf_moments, full_anomaly_gain),
    "enkf": (EnKF(), check_localized_kalman_mean, uncentred_perturbations),
    "lenkf": (LocalizedEnKF(LOC), check_localized_kalman_mean, uncentred_perturbations),
    "enkf_n": (EnKFN(), check_primal_equals_dual, unrefined_dual),
    "letkf": (LETKF(LOC), check_r_localized_rows, n_for_n_minus_1),
}


@pytest.mark.parametrize("name", CASES)
def test_scheme_passes_its_check(name):
    scheme, check, _ = CASES[name]
    check(scheme)


@pytest.mark.parametrize("name", CASES)
def test_mutant_fails_the_check(name, monkeypatch):
    scheme, check, mutate = CASES[name]
    mutate(monkeypatch)
    with pytest.raises(AssertionError):
        check(scheme)
