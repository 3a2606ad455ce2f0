"""Smoothers on short Lorenz-96 twins (n = 40, F = 8, every variable observed, R = I, every 0.05).

Asserted: the EnKS's forecast and filter are the ETKF filter's, bit for bit, whatever the
lag; each method's cost per window is what its algorithm spends; every statistic is finite
and the smoother beats the filter; a model that cannot be re-run is refused up front.
"""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.analysis import ETKF, ObsError  # noqa: E402
from fdassim.cycle import assimilate  # noqa: E402
from fdassim.ensemble import Ensemble  # noqa: E402
from fdassim.errors import ConfigError  # noqa: E402
from fdassim.inflation import Multiplicative  # noqa: E402
from fdassim.io import Store  # noqa: E402
from fdassim.layout import FieldSpec  # noqa: E402
from fdassim.models.lorenz96 import Lorenz96  # noqa: E402
from fdassim.observations import Identity, Observations  # noqa: E402
from fdassim.smoothers import EnKS, IEnKS, LinIEnKS, SIEnKS, smooth  # noqa: E402
from helpers import read_store  # noqa: E402
from kalman_smoother import LinearModel  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

N, SEED = 20, 4
INFLATION = Multiplicative(1.02)


def _obs():
    return Observations(Identity("x"), ObsError.from_std(1.0))


def _smooth(smoother, cycles, inflation=INFLATION, model=None, store_path=None):
    ens = Ensemble(model or Lorenz96(), N, comm=MPI.COMM_SELF, truth=True)
    times = 0.05 * np.arange(cycles + 1)
    if store_path is None:
        return smooth(ens, smoother, _obs(), times, seed=SEED, inflation=inflation, progress=False)
    with Store.create(store_path, ens, times, 40, smoother=smoother) as store:
        return smooth(ens, smoother, _obs(), times, seed=SEED, inflation=inflation, store=store, progress=False)


def test_enks_forecast_and_filter_are_the_etkf_filter_bitwise_at_every_lag():
    """Paper's finding 1 holds exactly: the EnKS's forecast and filter RMSEs equal the ETKF's at
    every cycle (same seed, inflation 1.02) for lags 1 and 8, while its smoother RMSE falls with
    the lag (averages after 30 cycles)."""
    cycles = 100
    ens = Ensemble(Lorenz96(), N, comm=MPI.COMM_SELF, truth=True)
    filt = assimilate(ens, ETKF(), _obs(), 0.05 * np.arange(cycles + 1), seed=SEED, inflation=INFLATION,
                      progress=False)
    smoother_rmse = []
    for lag in (1, 8):
        res = _smooth(EnKS(lag=lag), cycles)
        assert np.array_equal(res.rmse_forecast, filt.rmse_forecast)
        assert np.array_equal(res.rmse_analysis, filt.rmse_analysis)
        assert np.array_equal(res.spread_analysis, filt.spread_analysis)
        smoother_rmse.append(res.summary(burn_in=30)["rmse_smoother"])
    s = res.summary(burn_in=30)
    assert smoother_rmse[1] < smoother_rmse[0] < s["rmse_analysis"]


@pytest.mark.parametrize("smoother, simulations, propagations", [
    # (smoother, ensemble simulations per window after the first, forecast intervals per window)
    pytest.param(EnKS(lag=4, shift=2), lambda it: 1, lambda it: 2, id="EnKS"),
    pytest.param(SIEnKS(lag=4, shift=2), lambda it: 2, lambda it: 4 + 2, id="SIEnKS"),
    pytest.param(SIEnKS(lag=4, shift=2, mda=True), lambda it: 3, lambda it: 2 * 4 + 2, id="SIEnKS-MDA"),
    pytest.param(LinIEnKS(lag=4, shift=2), lambda it: 2, lambda it: 4 + 2, id="LinIEnKS"),
    pytest.param(IEnKS(lag=4, shift=2), lambda it: it + 1, lambda it: 4 * it + 2, id="IEnKS"),
    # the MDA stages share their first simulation; one more runs the balanced analysis to the
    # next window's new observation times (forecast statistics)
    pytest.param(IEnKS(lag=4, shift=2, mda=True), lambda it: it + 1, lambda it: 4 * (it - 1) + 2 * 2,
                 id="IEnKS-MDA"),
])
def test_smoother_costs_per_window(smoother, simulations, propagations):
    res = _smooth(smoother, cycles=24)
    C = smoother.schedule.count(24)
    assert res.simulations.shape == (C,)
    for c in range(1, C - 1):  # the last window runs no forecast beyond itself
        it = int(res.iterations[c])
        assert res.simulations[c] == simulations(it), c
        assert res.propagations[c] == propagations(it), c
    if isinstance(smoother, IEnKS):
        stages = 2 if smoother.mda else 1
        assert np.all((stages <= res.iterations) & (res.iterations <= stages * smoother.max_iter))
    # the first window runs the whole window for its L new observations
    assert res.propagations[0] >= smoother.lag


SHORT = [
    pytest.param(EnKS(lag=4), INFLATION, id="EnKS"),
    pytest.param(SIEnKS(lag=4), INFLATION, id="SIEnKS"),
    pytest.param(SIEnKS(lag=4, shift=2, mda=True), INFLATION, id="SIEnKS-MDA"),
    pytest.param(SIEnKS(lag=3, finite_size=True, mlef=True), None, id="SIEnKS-N-MLEF"),
    pytest.param(IEnKS(lag=4), INFLATION, id="IEnKS"),
    pytest.param(IEnKS(lag=4, shift=2, mda=True, finite_size=True), None, id="IEnKS-N-MDA"),
    pytest.param(LinIEnKS(lag=4), INFLATION, id="LinIEnKS"),
]


@pytest.mark.parametrize("smoother, inflation", SHORT)
def test_smoother_l96_short_run_smoother_beats_filter(smoother, inflation):
    """200 cycles, averages after 40: finite statistics, smoother RMSE below the filter's, filter RMSE
    below the forecast's and well below the observation error 1 (published filter RMSEs at N = 20
    are 0.18-0.26, smoothers lower; a diverged run is above 1)."""
    res = _smooth(smoother, cycles=200, inflation=inflation)
    s = res.summary(burn_in=40)
    assert all(np.isfinite(v) for v in s.values()), s
    assert s["rmse_smoother"] < s["rmse_analysis"] < s["rmse_forecast"] < 0.5, s


def test_sienks_mlef_iterates_a_nonlinear_observation_operator():
    """H(x) = x + 0.05 x^2 |x| / 8 (values up to ~12: strongly nonlinear): the MLEF iterates (more than
    one Gauss-Newton step per filter step on average) and the run stays well below the observation error."""
    smoother = SIEnKS(lag=2, mlef=True, tol=1e-4)
    ens = Ensemble(Lorenz96(), N, comm=MPI.COMM_SELF, truth=True)
    obs = Observations(lambda state: state["x"] + 0.05 * state["x"] ** 2 * np.abs(state["x"]) / 8,
                       ObsError.from_std(1.0))
    res = smooth(ens, smoother, obs, 0.05 * np.arange(121), seed=SEED, inflation=INFLATION, progress=False)
    s = res.summary(burn_in=20)
    assert s["iterations"] > 1.5 and s["rmse_smoother"] < s["rmse_analysis"] < 0.5, s


def test_smoother_store_holds_what_the_result_holds(tmp_path):
    path = str(tmp_path / "s.h5")
    smoother = SIEnKS(lag=3, shift=1)
    res = _smooth(smoother, cycles=10, store_path=path)
    d = read_store(path, names=("diagnostics", "mean", "ensemble/smoother", "windows"))
    np.testing.assert_array_equal(d[sl.diagnostic("rmse_smoother")], res.rmse_smoother)
    np.testing.assert_array_equal(d[sl.diagnostic("rmse_forecast")], res.rmse_forecast)
    np.testing.assert_array_equal(d[sl.window("simulations")], res.simulations)
    np.testing.assert_array_equal(d[sl.window("propagations")], res.propagations)
    have = np.isfinite(res.rmse_smoother)
    assert have.sum() == 7  # windows 0..7 leave times 0..7; time 0 has no observation slot
    np.testing.assert_allclose(d[sl.mean("smoother", "x")][have], d[sl.ensemble("smoother", "x")][have].mean(axis=2), atol=1e-14)


class _HiddenState(LinearModel):
    """A linear model whose forecast also depends on how many times it ran: not re-runnable."""

    calls = 0

    def forecast(self, state, t0, t1):
        self.calls += 1
        state["x"][...] = self.M @ state["x"] + 1e-3 * self.calls
        return state


def test_smoother_refuses_a_model_that_cannot_be_rerun():
    model = _HiddenState(0.9 * np.eye(3), np.zeros(3), np.eye(3))
    ens = Ensemble(model, 4, comm=MPI.COMM_SELF, truth=True)
    obs = Observations(Identity("x"), ObsError.from_std(1.0))
    with pytest.raises(ConfigError, match=r"smoother.method: SIEnKS re-runs members from the window's start, "
                                          r"but _HiddenState is not re-runnable: forecasting member 0 twice "
                                          r"from the same fields over \[0.0, 2.0\] gave different values of x\."):
        smooth(ens, SIEnKS(lag=2), obs, np.arange(5.0), seed=1, progress=False)
    # the EnKS never re-runs a member: the same model runs
    res = smooth(Ensemble(model, 4, comm=MPI.COMM_SELF, truth=True), EnKS(lag=2), obs, np.arange(5.0), seed=1,
                 progress=False)
    assert np.isfinite(res.rmse_smoother[:2]).all()


class _TwoStep(LinearModel):
    """A two-step linear model: the forecast needs the previous state, kept in a carried field."""

    fields = (FieldSpec("x"), FieldSpec("x_prev", carried=True))

    def new_state(self, comm=None):
        return {"x": np.zeros(self.M.shape[0]), "x_prev": np.zeros(self.M.shape[0])}

    def forecast(self, state, t0, t1):
        x, prev = state["x"].copy(), state["x_prev"].copy()
        state["x"][...] = self.M @ x + 0.1 * (x - prev)
        state["x_prev"][...] = x
        return state


class _TwoStepHidden(_TwoStep):
    """:class:`_TwoStep` with the previous state kept in the model object instead of a carried field."""

    fields = (FieldSpec("x"),)
    prev = None

    def new_state(self, comm=None):
        return {"x": np.zeros(self.M.shape[0])}

    def forecast(self, state, t0, t1):
        x = state["x"].copy()
        prev = x if self.prev is None else self.prev
        state["x"][...] = self.M @ x + 0.1 * (x - prev)
        self.prev = x
        return state


def test_smoother_refusal_names_the_missing_carried_field():
    """The missing piece of a multistep model (its previous state, not declared carried) is caught
    even though its first step from the start repeats exactly: the check re-runs two intervals,
    and the error says to keep that state in a carried field."""
    ens = Ensemble(_TwoStepHidden(0.9 * np.eye(3), np.zeros(3), np.eye(3)), 4, comm=MPI.COMM_SELF)  # batched
    with pytest.raises(ConfigError, match=r"IEnKS re-runs members .* gave different values of x\. Its forecast "
                                          r"must depend only on the member's fields: keep what it needs from one "
                                          r"forecast to the next .* in a carried field, FieldSpec\(name, "
                                          r"carried=True\)"):
        smooth(ens, IEnKS(lag=2), Observations(Identity("x"), ObsError.from_std(1.0)), np.arange(4.0), seed=1,
               progress=False)


def test_smoother_restores_carried_fields_when_it_reruns_members():
    """The re-run check passes only because snapshots restore the carried field too, and the run
    smooths (finite, smoother spread below the filter's)."""
    model = _TwoStep(0.9 * np.eye(3), np.zeros(3), np.eye(3))
    ens = Ensemble(model, 6, comm=MPI.COMM_SELF, truth=True)
    res = smooth(ens, IEnKS(lag=2), Observations(Identity("x"), ObsError.from_std(0.5)), np.arange(9.0), seed=1,
                 progress=False)
    have = np.isfinite(res.spread_smoother)
    assert have.sum() == 6 and np.all(res.spread_smoother[have] < res.spread_analysis[have])
