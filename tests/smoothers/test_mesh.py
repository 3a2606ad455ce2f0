"""A smoother on a Firedrake model (the heat equation with a source parameter): the same code path
as Lorenz-96, members as Functions, serially and with members dealt over 2 ranks."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import HEAT_POINTS, read_store  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402


def _run(path, comm):
    from fdassim.analysis import ObsError
    from fdassim.ensemble import Ensemble
    from fdassim.io import Store
    from fdassim.models.heat import Heat
    from fdassim.observations import Observations
    from fdassim.pointobs import PointValues
    from fdassim.smoothers import SIEnKS, smooth

    smoother = SIEnKS(lag=2, shift=1, mda=True)
    ens = Ensemble(Heat(), 7, comm=comm, truth=True)
    obs = Observations(PointValues("temperature", HEAT_POINTS), ObsError.from_std(0.1), HEAT_POINTS)
    times = 0.2 * np.arange(6)
    with Store.create(path, ens, times, len(HEAT_POINTS), smoother=smoother) as store:
        return smooth(ens, smoother, obs, times, seed=5, store=store, progress=False)


def test_smoother_heat_model_smooths(tmp_path):
    """Finite statistics; the smoother (conditioned on one more observation time) is more certain
    than the filter, which is more certain than the forecast, at every smoothed time."""
    res = _run(str(tmp_path / "heat.h5"), MPI.COMM_SELF)
    have = np.isfinite(res.spread_smoother)
    assert have.sum() == 3 and np.isfinite(res.rmse_smoother[have]).all()
    assert np.all(res.spread_smoother[have] < res.spread_analysis[have])
    assert np.all(res.spread_analysis[have] < res.spread_forecast[have])
    assert np.all(res.simulations == 3)


@pytest.mark.parallel(nprocs=2)
def test_smoother_heat_members_split_is_bitwise_serial(tmp_path_factory):
    comm = MPI.COMM_WORLD
    base = comm.bcast(str(tmp_path_factory.mktemp("heat-smoother")) if comm.rank == 0 else None)
    _run(f"{base}/world.h5", comm)
    _run(f"{base}/serial-{comm.rank}.h5", MPI.COMM_SELF)
    names = ("ensemble", "truth", "observations")
    a, b = read_store(f"{base}/world.h5", names), read_store(f"{base}/serial-{comm.rank}.h5", names)
    for key in (sl.ensemble("smoother", "temperature"), sl.ensemble("smoother", "source"), sl.ensemble("analysis", "source"),
                sl.ensemble("forecast", "temperature"), sl.truth("source"), sl.observation("y", "values")):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_smoother_icepack_shelf_reruns_members_with_their_carried_velocity():
    """Icepack's floating ice shelf (thickness analysed, accumulation a parameter, velocity carried):
    the SIEnKS re-runs members from the window's start (the re-run check passes: the velocity
    guess is restored with the state) and its filter brings the thickness error from the first
    forecast's ~8 m to below the observation error (2 m)."""
    pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
    from fdassim.analysis import ObsError
    from fdassim.ensemble import Ensemble
    from fdassim.observations import Observations
    from fdassim.pointobs import PointValues
    from fdassim.smoothers import SIEnKS, smooth
    from models.test_icepack import shelf

    points = np.array([[x, y] for x in (4e3, 10e3, 16e3) for y in (5e3, 15e3)])
    ens = Ensemble(shelf(), 5, comm=MPI.COMM_SELF, truth=True)
    obs = Observations(PointValues("thickness", points), ObsError.from_std(2.0), points)
    res = smooth(ens, SIEnKS(lag=2), obs, 0.5 * np.arange(5), seed=2, progress=False)
    assert res.rmse_forecast[0] > 4 and np.all(res.rmse_analysis < 2.0)
    assert np.isfinite(res.rmse_smoother[:2]).all() and np.all(res.simulations == 2)
