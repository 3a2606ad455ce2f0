"""What every scheme of the registry promises (fdassim.analysis.base, "What every scheme promises").

Parametrized over ``fdassim.config.SCHEMES``, so a scheme added there is covered: mean
preservation at an offset of 1e8, an observation without prior spread carries no information,
non-finite rows raise one error. Variants with other code paths (EnKF's Evensen form,
perturbed-obs regression filter, EnKF-N's primal solver, the LETKF's local EnKF-N) are
added by hand.
"""

import dataclasses
import math

import numpy as np
import pytest

from fdassim.analysis import AnalysisContext, ObsError, Rows
from fdassim.analysis.enkf import EnKF, InnovationCovariance
from fdassim.analysis.enkf_n import EnKFN
from fdassim.analysis.etkf import ETKF
from fdassim.analysis.lenkf import LocalizedEnKF
from fdassim.analysis.letkf import LETKF, FiniteSize
from fdassim.analysis.localization import Localization
from fdassim.analysis.regression import Increments, RegressionFilter
from fdassim.config import SCHEMES, _load_class
from fdassim.errors import InputError

n, N = 30, 10
COORDS = np.arange(n, dtype=float)
OBS = np.arange(0, n, 3)  # 10 observations of every third variable
H = np.eye(n)[OBS]
CTX = AnalysisContext(seed=3, cycle=1, obs_coords=COORDS[OBS])
ROWS = Rows.whole(n, coords=COORDS)


def build(name):
    """The scheme with its defaults; a required localization gets a Gaspari-Cohn radius of 5."""
    cls = _load_class(SCHEMES[name])
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    unknown = required - {"localization"}
    assert not unknown, f"{name}: add a value for the required option(s) {unknown} to this test"
    return cls(**{k: Localization(5.0) for k in required})


SCHEME_CASES = [pytest.param(build(name), id=name) for name in SCHEMES] + [
    pytest.param(EnKF(covariance=InnovationCovariance.ENSEMBLE), id="enkf-ensemble"),
    pytest.param(EnKFN(dual=False), id="enkf_n-primal"),
    pytest.param(RegressionFilter(Increments.PERTURBED, Localization(5.0)), id="eakf-perturbed-localized"),
    pytest.param(LETKF(Localization(5.0), finite_size=FiniteSize()), id="letkf-finite-size"),
]


def problem(seed=1, offset=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N))
    y = H @ X.mean(axis=1) + rng.standard_normal(OBS.size)
    return X + offset, H @ X + offset, y + offset, ObsError.from_std(np.full(OBS.size, 0.8))


@pytest.mark.parametrize("scheme", SCHEME_CASES)
def test_scheme_preserves_the_mean_at_an_offset_of_1e8(scheme):
    """A state offset by c = 1e8 (spread 1) gives the analysis of the centred state plus c.

    One unit in the last place of 1e8 is 1.5e-8; measured errors after the fix are at most 4e-8
    (mean and anomalies; 5e-7 for Evensen's form, whose pseudo-inverse amplifies the input's
    rounding), we allow 1e-6 (67 units). Before the fix DEnKF and the serial EnSRF
    were wrong by more than the spread (errors ~1), as the error grows like (c / spread)^2.
    """
    c = 1e8
    ref = scheme.analyse(*problem(), rows=ROWS, context=CTX)
    out = scheme.analyse(*problem(offset=c), rows=ROWS, context=CTX) - c
    np.testing.assert_allclose(out.mean(axis=1), ref.mean(axis=1), rtol=0, atol=1e-6)
    anomalies = out - out.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(anomalies, ref - ref.mean(axis=1, keepdims=True), rtol=0, atol=1e-6)
    assert np.abs(ref - problem()[0]).max() > 0.1  # the analysis did change the ensemble


@pytest.mark.parametrize("scheme", SCHEME_CASES)
def test_scheme_ignores_an_observation_without_prior_spread(scheme):
    """Observation 0 reads a variable with no spread: whatever its value, the analysis is the same.

    Exact in arithmetic (its gain is zero); we allow round-off, 1e-12. The regression filter
    raised an error here before.
    """
    X, Y, y, R = problem()
    X[OBS[0]] = 2.0  # a row with no spread: its predicted observations are equal
    Y = H @ X
    a = scheme.analyse(X, Y, y, R, rows=ROWS, context=CTX)
    y2 = y.copy()
    y2[0] += 50.0
    b = scheme.analyse(X, Y, y2, R, rows=ROWS, context=CTX)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a[OBS[0]], X[OBS[0]], rtol=0, atol=1e-14)  # the row without spread stays


@pytest.mark.parametrize("scheme", SCHEME_CASES)
def test_scheme_apply_rejects_non_finite_rows(scheme):
    """Every update goes through the one check (base.check_rows): the same message, naming the
    members and the global rows (here a block starting at row 5)."""
    X, Y, y, R = problem()
    update = scheme.prepare(Y, y, R, CTX)
    bad = X[5:].copy()
    bad[2, 2] = np.nan
    bad[4, 2] = np.inf
    with pytest.raises(InputError, match=r"^X has NaN or Inf values in member\(s\) \[2\] at row\(s\) \[7, 9\] of the state$"):
        update.apply(bad, ROWS.block(5, n))


def test_localized_enkf_with_infinite_radius_equals_the_enkf():
    """Both centre the observation perturbations (one helper): the same analysis to round-off."""
    X, Y, y, R = problem(seed=4)
    a = LocalizedEnKF(Localization(math.inf)).analyse(X, Y, y, R, context=CTX)
    b = EnKF().analyse(X, Y, y, R, context=CTX)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scheme", [EnKF(), LocalizedEnKF(Localization(math.inf))], ids=["enkf", "lenkf-inf"])
def test_stochastic_analysis_mean_is_the_deterministic_one(scheme):
    """With centred perturbations the stochastic EnKF's mean is xbar + K (y - ybar), the ETKF's
    (same sample gain, linear H), to round-off; uncentred ones shift it by K times their mean."""
    X, Y, y, R = problem(seed=5)
    a = scheme.analyse(X, Y, y, R, context=CTX).mean(axis=1)
    np.testing.assert_allclose(a, ETKF().analyse(X, Y, y, R, context=CTX).mean(axis=1), rtol=0, atol=1e-12)


def test_perturbed_regression_mean_is_the_eakf_one_for_one_observation():
    X, Y, y, R = problem(seed=6)
    one = (X, Y[:1], y[:1], ObsError.from_std(0.8))
    a = RegressionFilter(Increments.PERTURBED).analyse(*one, context=CTX).mean(axis=1)
    np.testing.assert_allclose(a, RegressionFilter().analyse(*one, context=CTX).mean(axis=1), rtol=0, atol=1e-12)
