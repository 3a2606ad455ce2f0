"""The store as xarray reads it: named dimensions and coordinates, every value where the run
wrote it (a Firedrake run with two observed quantities, serially and on 2 ranks with an
uneven member split), and ensembles kept every k cycles."""

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
xr = pytest.importorskip("xarray", reason="xarray reads the store (a dependency: make install)")
from mpi4py import MPI  # noqa: E402

from helpers import read_store, run_twin, split_paths  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

N, CYCLES, DT = 5, 3, 0.2  # 5 members: 3 and 2 on 2 ranks


def test_kept_cycles_every_k_and_the_last():
    assert sl.kept_cycles(7, 3) == (0, 3, 6)
    assert sl.kept_cycles(8, 3) == (0, 3, 6, 7)
    assert sl.kept_cycles(4, 1) == (0, 1, 2, 3)
    assert sl.kept_cycles(4, 0) == ()
    assert sl.kept_cycles(2, 10) == (0, 1)


def _observations():
    from fdassim.analysis.base import ObsError
    from fdassim.observations import NodalValues, Observations, PointValues, Quantity, Schedule

    pts = np.array([[0.3, 0.3], [0.7, 0.2], [0.5, 0.8]])
    return Observations([
        Quantity("temperature", NodalValues("temperature", every=4), ObsError.from_std(0.1)),
        Quantity("source", PointValues("source", pts), ObsError.from_std(0.2), Schedule(times=(0.4,))),
    ])


def _run(path, comm):
    from fdassim.analysis.etkf import ETKF
    from fdassim.models.heat import Heat

    return run_twin(Heat(), ETKF(), path, comm=comm, N=N, cycles=CYCLES, interval=DT, observations=_observations())


def _check_xarray(path, result):
    """Open the store with xarray and compare it with the run (``result``) and the raw file."""
    raw = read_store(path)
    times = DT * np.arange(1, CYCLES + 1)
    with xr.open_dataset(path, engine="h5netcdf") as root:
        np.testing.assert_allclose(root["time"], times, rtol=1e-15)
        assert root["time"].dims == ("cycle",) and list(root["cycle"].values) == list(range(CYCLES))
        assert list(root["member"].values) == list(range(N))
        assert {"temperature_x", "temperature_y", "source_x", "source_y"} <= set(root.coords)
    with xr.open_dataset(path, engine="h5netcdf", group="ensemble/analysis") as ens, \
            xr.open_dataset(path, engine="h5netcdf", group="mean/analysis") as mean, \
            xr.open_dataset(path, engine="h5netcdf", group="truth") as truth:
        for f in ("temperature", "source"):
            a = ens[f]
            assert a.dims == ("cycle", f"{f}_index", "member") and a.shape[2] == N
            # coordinates in the group opened alone: the analysis times, the nodes' positions
            np.testing.assert_allclose(a["time"], times, rtol=1e-15)
            for axis, c in enumerate((f"{f}_x", f"{f}_y")):
                assert a[c].dims == (f"{f}_index",)
                np.testing.assert_array_equal(a[c], raw[sl.positions(f)][:, axis])
            np.testing.assert_array_equal(a, raw[sl.ensemble("analysis", f)])
            np.testing.assert_array_equal(mean[f], raw[sl.mean("analysis", f)])
            # the stored mean is the members' mean (to rounding: numpy's pairwise sum)
            np.testing.assert_allclose(mean[f], a.mean("member"), rtol=1e-13, atol=1e-13)
            assert truth[f].dims == ("cycle", f"{f}_index")
    with xr.open_dataset(path, engine="h5netcdf", group="diagnostics") as diag:
        np.testing.assert_array_equal(diag["rmse_analysis"], result.rmse_analysis)
        np.testing.assert_array_equal(diag["n_obs"], result.n_obs)
        np.testing.assert_allclose(diag["time"], times, rtol=1e-15)
    tree = xr.open_datatree(path, engine="h5netcdf")
    try:
        src = tree["observations/source"]
        assert src["values"].dims == ("time_source", "obs_source")
        np.testing.assert_allclose(src["time"], [0.4], rtol=1e-15)
        np.testing.assert_array_equal(src["values"], raw[sl.observation("source", "values")])
        temp = tree["observations/temperature"]
        assert temp["values"].sizes["time_temperature"] == CYCLES
        np.testing.assert_array_equal(temp["values"], raw[sl.observation("temperature", "values")])
        assert "slot0" not in tree["restart"]  # the members of every cycle are the restart states
    finally:
        tree.close()


def test_store_of_a_run_round_trips_through_xarray(tmp_path):
    path = str(tmp_path / "heat.h5")
    _check_xarray(path, _run(path, MPI.COMM_SELF))
    netcdf4 = pytest.importorskip("netCDF4", reason="the NetCDF-C library's reader (optional)")
    with netcdf4.Dataset(path) as nc:  # the NetCDF-C library reads the same dimensions
        assert nc["ensemble/analysis"]["source"].dimensions == ("cycle", "source_index", "member")
        assert nc["observations/temperature"]["values"].dimensions == ("time_temperature", "obs_temperature")
        assert len(nc.dimensions["member"]) == N


@pytest.mark.parallel(nprocs=2)
def test_store_of_a_run_on_two_ranks_round_trips_through_xarray(tmp_path_factory):
    """Members 3 and 2 on the ranks: the same values as the serial run's, bitwise (the RMSE
    and spread diagnostics to 1e-13: their sums over members are reduced across ranks)."""
    world, serial = split_paths(tmp_path_factory, "xarray")
    result = _run(world, MPI.COMM_WORLD)
    _run(serial, MPI.COMM_SELF)
    if MPI.COMM_WORLD.rank == 0:
        _check_xarray(world, result)
        a, b = read_store(world), read_store(serial)
        assert a.keys() == b.keys()
        for key in a:
            if key.startswith("diagnostics/") and key != sl.diagnostic("n_obs"):
                np.testing.assert_allclose(a[key], b[key], rtol=1e-13, err_msg=key)
            else:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
