"""The assimilation cycle, serially: it equals the array implementation, and it assimilates."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import read_store, run_twin  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    from fdassim.analysis.enkf import EnKF
    from fdassim.models.heat import Heat

    path = str(tmp_path_factory.mktemp("heat") / "run.h5")
    result = run_twin(Heat(), EnKF(), path, comm=MPI.COMM_SELF, N=24, cycles=8)
    return result, read_store(path)


def test_cycle_heat_twin_reduces_error_below_forecast(heat_run):
    result, _ = heat_run
    # a single realization need not improve at every cycle (the source is only seen through
    # the temperature); on average the analysis beats the forecast, and the error falls
    assert result.rmse_analysis.mean() < 0.9 * result.rmse_forecast.mean()
    assert result.rmse_analysis[-1] < 0.5 * result.rmse_forecast[0]


def test_cycle_analysis_equals_scheme_on_stored_arrays(heat_run):
    """The parallel machinery (transposes, row blocks) adds nothing: redo each analysis on the
    stored forecast arrays with the scheme alone and get the stored analysis to round-off."""
    from fdassim.analysis.base import AnalysisContext, ObsError, Rows
    from fdassim.analysis.enkf import EnKF
    from fdassim.pointobs import PointValues
    from helpers import HEAT_POINTS

    _, d = heat_run
    Xf = np.concatenate([d[sl.ensemble("forecast", "temperature")], d[sl.ensemble("forecast", "source")]], axis=1)
    Xa = np.concatenate([d[sl.ensemble("analysis", "temperature")], d[sl.ensemble("analysis", "source")]], axis=1)
    y = d[sl.observation("y", "values")]
    # predicted observations of the stored forecast members: P1 point evaluation is linear in
    # the nodal values, so evaluate the basis once on a unit vector per node
    from fdassim.models.heat import Heat

    model = Heat()
    state = model.member(model.domain(MPI.COMM_SELF), 0).state
    H = PointValues("temperature", HEAT_POINTS)
    n_t = d[sl.ensemble("forecast", "temperature")].shape[1]
    basis = np.empty((HEAT_POINTS.shape[0], n_t))
    for j in range(n_t):
        state["temperature"].dat.data[:] = 0.0
        state["temperature"].dat.data[j] = 1.0
        basis[:, j] = H(state)
    for k in range(y.shape[0]):
        Y = basis @ Xf[k, :n_t]
        expect = EnKF().analyse(Xf[k], Y, y[k], ObsError.from_std(0.1), Rows.whole(Xf.shape[1]),
                                AnalysisContext(seed=5, cycle=k, obs_coords=HEAT_POINTS))
        np.testing.assert_allclose(Xa[k], expect, rtol=0, atol=1e-10 * np.abs(expect).max())


def test_cycle_stores_truth_means_and_coordinates(heat_run):
    _, d = heat_run
    K = d[sl.observation("y", "values")].shape[0]
    assert d[sl.truth("source")].shape == (K, 81) and np.all(np.isfinite(d[sl.truth("source")]))
    np.testing.assert_allclose(d[sl.mean("analysis", "source")], d[sl.ensemble("analysis", "source")].mean(axis=2), rtol=1e-13)
    c = d[sl.positions("temperature")]
    assert c.shape == (81, 2) and c.min() == 0.0 and c.max() == 1.0


def test_cycle_member_failure_names_member_and_cycle(tmp_path):
    from fdassim.analysis.etkf import ETKF
    from fdassim.errors import MemberFailure
    from fdassim.models.heat import Heat, HeatMember

    class ExplodingMember(HeatMember):
        def forecast(self, t0, t1):
            super().forecast(t0, t1)
            if t0 > 0.3:  # every member, from cycle 2
                self.state["temperature"].dat.data[3] = np.nan

    class Exploding(Heat):
        def member(self, domain, index):
            return ExplodingMember(self, domain)

    with pytest.raises(MemberFailure, match=r"member 0 failed in cycle 2: the forecast returned NaN or Inf"):
        run_twin(Exploding(), ETKF(), str(tmp_path / "x.h5"), comm=MPI.COMM_SELF, N=4, cycles=4)


def _initial_ensemble(model, N, seed):
    """The cycle's initial members of an array model, drawn as the ensemble draws them."""
    from fdassim.streams import Stream, generator

    X0 = np.empty((model.n, N))
    for i in range(N):
        s = model.new_state()
        model.initial_state(s, generator(seed, Stream.INITIAL, 0, member=i))
        X0[:, i] = s["x"]
    return X0


def test_cycle_lorenz96_equals_serial_reference_loop(tmp_path):
    """The cycle (members dealt, transposed, stored) and fdassim.twin's plain array loop give
    bitwise the same analyses from the same initial ensemble and observations."""
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.etkf import ETKF
    from fdassim.inflation import Multiplicative
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Identity, Observations
    from fdassim.twin import run_filter

    model, N, K, seed = Lorenz96(), 20, 60, 5
    obs = Observations(Identity("x"), ObsError.from_std(1.0), model.coords[:, None])
    path = str(tmp_path / "l96.h5")
    result = run_twin(model, ETKF(), path, comm=MPI.COMM_SELF, N=N, cycles=K, interval=0.05, seed=seed,
                      observations=obs, inflation=Multiplicative(1.02))
    d = read_store(path)
    X0 = _initial_ensemble(model, N, seed)
    truth = np.vstack([np.zeros(model.n), d[sl.truth("x")]])
    times = 0.05 * np.arange(K + 1)
    ref = run_filter(model, ETKF(), Multiplicative(1.02), X0, d[sl.observation("y", "values")], np.eye(model.n),
                     ObsError.from_std(np.ones(model.n)), seed, times=times, truth=truth)
    np.testing.assert_array_equal(d[sl.ensemble("analysis", "x")][-1], ref.Xa)
    np.testing.assert_allclose(result.rmse_analysis, ref.rmse_a, rtol=1e-12)
    assert result.summary(burn_in=30)["rmse_analysis"] < 0.5  # tracking (obs error 1) after 30 cycles


def test_cycle_passes_the_models_ring_to_localization(tmp_path):
    """Lorenz-96 states a ring (its Geometry): Localization(4.0) without `periodic` through the
    cycle gives bitwise the serial loop's analysis with the explicit ring, periodic=(40,)."""
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.lenkf import LocalizedEnKF
    from fdassim.analysis.localization import Localization
    from fdassim.inflation import Multiplicative
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Observations, Subset
    from fdassim.twin import run_filter

    model, N, K, seed = Lorenz96(), 10, 8, 5
    idx = tuple(range(0, 40, 2))
    obs = Observations(Subset(idx), ObsError.from_std(1.0), model.coords[list(idx), None])
    path = str(tmp_path / "l96.h5")
    run_twin(model, LocalizedEnKF(Localization(4.0)), path, comm=MPI.COMM_SELF, N=N, cycles=K, interval=0.05,
             seed=seed, observations=obs, inflation=Multiplicative(1.05))
    d = read_store(path)
    X0 = _initial_ensemble(model, N, seed)
    truth = np.vstack([np.zeros(model.n), d[sl.truth("x")]])

    class Line(Lorenz96):  # the same model without its geometry: the ring must come from the option
        geometry = None

    ref = run_filter(Line(), LocalizedEnKF(Localization(4.0, periodic=(40,))), Multiplicative(1.05), X0,
                     d[sl.observation("y", "values")], np.eye(model.n)[list(idx)], ObsError.from_std(np.ones(len(idx))), seed,
                     times=0.05 * np.arange(K + 1), truth=truth, coords=model.coords,
                     obs_coords=model.coords[list(idx)])
    np.testing.assert_array_equal(d[sl.ensemble("analysis", "x")][-1], ref.Xa)


@pytest.mark.parametrize("product", ["ordered", "petsc"])
def test_cycle_transform_product_choice_changes_only_round_off(tmp_path, product):
    """The cycle applies a transform with the product it is given: ORDERED (no BLAS) and PETSc
    dense matrices give the default TILED analyses to round-off, amplified over 10 Lorenz-96
    cycles (0.5 time units) to at most 1e-10 (measured ~1e-14)."""
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.etkf import ETKF
    from fdassim.analysis.product import Product
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Identity, Observations

    model = Lorenz96()
    obs = Observations(Identity("x"), ObsError.from_std(1.0), model.coords[:, None])
    runs = {}
    for p in ("tiled", product):
        path = str(tmp_path / f"{p}.h5")
        run_twin(model, ETKF(), path, comm=MPI.COMM_SELF, N=10, cycles=10, interval=0.05, observations=obs,
                 product=Product(p))
        runs[p] = read_store(path)[sl.ensemble("analysis", "x")]
    np.testing.assert_allclose(runs[product], runs["tiled"], rtol=0, atol=1e-10)
    assert not np.array_equal(runs["tiled"][0], runs["tiled"][-1])
