"""Lorenz-96 twin experiments: every analysis scheme tracks the truth far below the observation error.

Setting of Sakov & Oke (2008) and DAPPER's ``sakov2008``: n = 40, F = 8, RK4 with dt = 0.05,
every variable observed (H = I) with unit error variance (R = I) every step. The observation
error is 1.0 and climatology gives 3.6, so a time-averaged analysis RMSE below 0.3 means the
filter works; each test states the RMSE it reaches (3000 cycles, 500 burn-in, unless
stated; measured with single-threaded BLAS: other rounding gives other chaotic trajectories
and RMSEs within about 0.02) and the published figure for a similar configuration. Published figures (expected
``rmse.a`` listed in DAPPER's ``mods/Lorenz96/sakov2008.py``):

- Sakov & Oke (2008), Table 1: stochastic EnKF N=40 infl 1.06: 0.22; DEnKF N=40 infl 1.01:
  0.18; square-root (ETKF) N=24 infl 1.013: 0.18.
- Bocquet, Raanes & Hannart (2015), Fig. 3: ETKF N=20 infl 1.04: 0.20; EnKF-N N=20 (no
  inflation): 0.24. DAPPER's EnKF-N N=24: 0.21.
- DAPPER, localized: serial EAKF N=7 infl 1.07 localization radius 6: 0.23; LETKF N=7
  infl 1.04 radius 4: 0.22.

References
----------
Sakov, P. and Oke, P. R. (2008). A deterministic formulation of the ensemble Kalman filter:
an alternative to ensemble square root filters. Tellus A 60, 361-371.
https://doi.org/10.1111/j.1600-0870.2007.00299.x

Bocquet, M., Raanes, P. N. and Hannart, A. (2015). Expanding the validity of the ensemble
Kalman filter without the intrinsic need for inflation. Nonlin. Processes Geophys. 22,
645-662. https://doi.org/10.5194/npg-22-645-2015
"""

import math

import numpy as np
import pytest

from fdassim.analysis.base import ObsError
from fdassim.analysis.denkf import DEnKF
from fdassim.analysis.enkf import EnKF, InnovationCovariance
from fdassim.analysis.enkf_n import EnKFN
from fdassim.analysis.ensrf import EnSRF
from fdassim.analysis.etkf import ETKF
from fdassim.analysis.lenkf import LocalizedEnKF
from fdassim.analysis.letkf import LETKF, FiniteSize
from fdassim.analysis.localization import Localization
from fdassim.analysis.regression import RegressionFilter
from fdassim.errors import ConfigError, InputError, MemberFailure
from fdassim.inflation import RTPS, Inflation, Multiplicative
from fdassim.models.lorenz96 import Lorenz96
from fdassim.twin import run_filter, simulate

MODEL = Lorenz96()  # n = 40, F = 8, dt = 0.05
CYCLES, BURN_IN = 3000, 500
H = np.eye(MODEL.n)
R = ObsError.diagonal(np.ones(MODEL.n))
COORDS = MODEL.coords  # 0..39; periodic localization through Localization(periodic=(40,))


@pytest.fixture(scope="module")
def twin():
    """Truth and observations for CYCLES cycles from a spun-up state."""
    times = np.arange(CYCLES + 1) * MODEL.dt
    truth, obs = simulate(MODEL, MODEL.initial_condition(seed=1), times, H, R, seed=2)
    return times, truth, obs


def assimilate(twin, scheme, N, inflation, cycles=CYCLES, burn_in=BURN_IN, seed=4):
    """Run the filter from an ensemble of unit spread around the truth."""
    times, truth, obs = twin
    X0 = truth[0][:, None] + np.random.default_rng(3).standard_normal((MODEL.n, N))
    return run_filter(MODEL, scheme, inflation, X0, obs[:cycles], H, R, seed, times=times[:cycles + 1],
                      truth=truth[:cycles + 1], burn_in=burn_in, coords=COORDS, obs_coords=COORDS)


def check(result, bound):
    """RMSE below ``bound``, and a spread of the same size as the error (not collapsed)."""
    assert result.rmse < bound, str(result)
    assert 0.5 < result.spread / result.rmse < 2.0, str(result)


def periodic(radius):
    return Localization(radius, periodic=(float(MODEL.n),))


# ---------------------------------------------------------------- global schemes
def test_etkf_l96(twin):
    # reached 0.185 (spread 0.200); published ETKF N=24 infl 1.013: 0.18, N=20 infl 1.04: 0.20
    check(assimilate(twin, ETKF(), 20, Multiplicative(1.02)), 0.25)


@pytest.mark.slow
def test_ensrf_l96(twin):
    # reached 0.186 (spread 0.200); published square-root filters N=20-24: 0.18-0.20
    check(assimilate(twin, EnSRF(), 20, Multiplicative(1.02)), 0.25)


def test_denkf_l96(twin):
    # reached 0.189 (spread 0.208) at N=20; published DEnKF N=40 infl 1.01: 0.18
    check(assimilate(twin, DEnKF(), 20, Multiplicative(1.02)), 0.25)


@pytest.mark.slow
def test_enkf_stochastic_l96(twin):
    # the default EnKF (perturbed observations, exact R): reached 0.217 (spread 0.226); published
    # stochastic EnKF N=40 infl 1.06: 0.22 (Sakov & Oke 2008); DAPPER's PertObs on the
    # benchmark's truth: see benchmarks/README.md. Evensen's ENSEMBLE form diverges here (NaN
    # within 10 cycles).
    check(assimilate(twin, EnKF(), 40, Multiplicative(1.06)), 0.26)


@pytest.mark.slow
def test_enkf_ensemble_form_l96(twin):
    # Evensen's (S + E)(S + E)^T form needs N >> m = 40: with infl 1.04 it reached 0.218 (spread
    # 0.183) at N=200 and 0.228 at N=150 over 3000 cycles, and diverged at N=120 (cycle 64)
    # and N=100. 1000 cycles here, N=200 (10-20 ms per cycle): reached 0.233 (spread
    # 0.183).
    result = assimilate(twin, EnKF(covariance=InnovationCovariance.ENSEMBLE), 200, Multiplicative(1.04),
                        cycles=1000, burn_in=200)
    check(result, 0.3)


@pytest.mark.slow
def test_enkf_n_l96(twin):
    # reached 0.238 (spread 0.299) with no inflation; published EnKF-N N=24: 0.21 (DAPPER),
    # N=20: 0.24 (Bocquet et al. 2015); DAPPER on the same truth agrees (benchmarks/README.md)
    check(assimilate(twin, EnKFN(), 24, Inflation()), 0.3)


def test_rtps_etkf_l96(twin):
    # reached 0.191 (spread 0.202) with RTPS alpha = 0.2. With every variable observed the
    # analysis shrinks the spread a lot, so alpha is much smaller than the 0.9-0.95 of Whitaker
    # & Hamill (2012) (alpha = 0.7 over-inflates: 0.34)
    check(assimilate(twin, ETKF(), 20, RTPS(0.2)), 0.25)


# ---------------------------------------------------------------- localized schemes, small N
@pytest.mark.slow
def test_localized_enkf_l96(twin):
    # reached 0.235 (spread 0.213) at N=15 < n with Gaspari-Cohn half-width 10; for comparison
    # DAPPER's LETKF N=7 infl 1.04 radius 4: 0.22 (a deterministic filter)
    check(assimilate(twin, LocalizedEnKF(periodic(10.0)), 15, Multiplicative(1.05)), 0.3)


def test_letkf_l96(twin):
    # DAPPER's sakov2008 setting LETKF N=7, infl 1.04, loc_rad 4 (its GC half-width is 1.82 x
    # loc_rad): published 0.22. 1000 cycles: reached 0.218 (spread 0.236) with one local
    # analysis per variable, the ring taken from the model's geometry
    result = assimilate(twin, LETKF(Localization(1.82 * 4)), 7, Multiplicative(1.04), cycles=1000, burn_in=200)
    check(result, 0.3)


def test_letkf_local_enkf_n_matches_tuned_inflation_partial_obs():
    # Every other variable observed (m = 20), N = 20, GC half-width 1.82 x 4. Over 3000 cycles
    # (benchmarks/l96_adaptive_inflation.py) the best fixed prior inflation was 1.02 (RMSE
    # 0.309; 1.01: 0.321, 1.03: 0.322, 1.0 diverges) and the local EnKF-N, with no factor, 0.307.
    # Here 1000 cycles: reached 0.317 (1.02) and 0.314 (EnKF-N); we ask at most 3 % above the
    # tuned factor (without inflation the filter diverges: RMSE above 2).
    K, idx = 1000, np.arange(0, MODEL.n, 2)
    Hp, Rp = np.eye(MODEL.n)[idx], ObsError.diagonal(np.ones(idx.size))
    times = np.arange(K + 1) * MODEL.dt
    truth, obs = simulate(MODEL, MODEL.initial_condition(seed=1), times, Hp, Rp, seed=2)
    X0 = truth[0][:, None] + np.random.default_rng(3).standard_normal((MODEL.n, 20))

    def run(scheme, inflation):
        return run_filter(MODEL, scheme, inflation, X0, obs, Hp, Rp, 4, times=times, truth=truth, burn_in=200,
                          obs_coords=idx.astype(float))

    tuned = run(LETKF(Localization(1.82 * 4)), Multiplicative(1.02))
    adaptive = run(LETKF(Localization(1.82 * 4), finite_size=FiniteSize()), Inflation())
    assert adaptive.rmse < 1.03 * tuned.rmse, f"EnKF-N {adaptive}; tuned 1.02: {tuned}"
    assert 0.5 < adaptive.spread / adaptive.rmse < 2.0, str(adaptive)


@pytest.mark.slow
def test_regression_eakf_l96(twin):
    # 1500 cycles, 300 burn-in (about 20 ms per cycle). Reached 0.248 (spread 0.295; 0.22-0.25
    # in other runs, as rounding differences grow chaotically); published serial EAKF N=7 infl 1.07 radius 6: 0.23 (DAPPER)
    result = assimilate(twin, RegressionFilter(localization=periodic(6.0)), 8, Multiplicative(1.07),
                        cycles=1000, burn_in=200)
    check(result, 0.3)


# ---------------------------------------------------------------- controls and the twin API
def test_no_inflation_diverges_l96(twin):
    # the control: ETKF N=20 without inflation loses the truth (reached 1.49, spread 0.17,
    # over 1000 cycles),
    # so the bounds above are not met by default
    result = assimilate(twin, ETKF(), 20, Inflation(), cycles=1000, burn_in=200)
    assert result.rmse > 1.0, str(result)


def test_simulate_observation_noise(twin):
    times, truth, obs = twin
    assert truth.shape == (CYCLES + 1, MODEL.n) and obs.shape == (CYCLES, MODEL.n)
    np.testing.assert_allclose(truth[1], MODEL.integrate(truth[0], 0.0, MODEL.dt), rtol=1e-14)
    noise = obs - truth[1:]
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1.0) < 0.01


def test_run_filter_is_reproducible(twin):
    a = assimilate(twin, DEnKF(), 10, Multiplicative(1.05), cycles=50, burn_in=10)
    b = assimilate(twin, DEnKF(), 10, Multiplicative(1.05), cycles=50, burn_in=10)
    np.testing.assert_array_equal(a.rmse_a, b.rmse_a)
    np.testing.assert_array_equal(a.Xa, b.Xa)
    assert a.rmse == pytest.approx(np.mean(a.rmse_a[10:]))
    assert a.rmse_f.shape == a.spread_f.shape == (50,)


def test_run_filter_progress_bar(twin, capsys):
    times, truth, obs = twin
    X0 = truth[0][:, None] + np.random.default_rng(3).standard_normal((MODEL.n, 10))
    run_filter(MODEL, ETKF(), Inflation(), X0, obs[:5], H, R, 1, times=times[:6], truth=truth[:6],
               progress=True)
    assert "ETKF" in capsys.readouterr().err


def test_run_filter_rejects_bad_burn_in(twin):
    with pytest.raises(ConfigError, match=r"burn_in must be in \[0, 10\) \(the number of cycles\), got 10"):
        assimilate(twin, ETKF(), 10, Inflation(), cycles=10, burn_in=10)


def test_run_filter_rejects_mismatched_times(twin):
    times, truth, obs = twin
    X0 = np.tile(truth[0][:, None], (1, 5)) + 0.1
    with pytest.raises(InputError, match=r"times must have shape \(11,\) and truth \(11, 40\)"):
        run_filter(MODEL, ETKF(), Inflation(), X0, obs[:10], H, R, 1, times=times[:10], truth=truth[:11])


def test_run_filter_reports_failed_member(twin):
    class Exploding(Lorenz96):
        def integrate(self, x, t0, t1):
            out = super().integrate(x, t0, t1)
            out[:, 3] = math.nan
            return out

    times, truth, obs = twin
    X0 = truth[0][:, None] + np.random.default_rng(3).standard_normal((MODEL.n, 6))
    with pytest.raises(MemberFailure, match="member 3 failed in cycle 0: forecast has NaN or Inf"):
        run_filter(Exploding(), ETKF(), Inflation(), X0, obs[:5], H, R, 1, times=times[:6], truth=truth[:6])
