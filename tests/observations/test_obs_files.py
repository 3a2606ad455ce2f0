"""Observation files (NetCDF via xarray, or plain HDF5): read back what was written; a bad
file is an error naming the file, the variable, the index and the problem."""

import numpy as np
import pytest

pytest.importorskip("xarray", reason="xarray is not installed (make install)")

from fdassim.errors import ConfigError  # noqa: E402
from fdassim.observations.files import read_quantity, write_observation_file  # noqa: E402

Y = np.arange(12.0).reshape(3, 4)
XY = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])


def test_file_round_trip_netcdf(tmp_path):
    path = str(tmp_path / "obs.nc")
    write_observation_file(path, {"surface": {"value": Y, "time": [2.0, 4.0, 6.0], "position": XY, "std": 5.0},
                                  "bed": {"value": Y[:1], "time": [2.0], "position": XY,
                                          "covariance": np.eye(4)}})
    s = read_quantity(path, "surface")
    np.testing.assert_array_equal(s.values, Y)
    np.testing.assert_array_equal(s.times, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(s.positions, XY)
    np.testing.assert_array_equal(s.std, np.full(4, 5.0))
    b = read_quantity(path, "bed")
    np.testing.assert_array_equal(b.covariance, np.eye(4))
    assert b.std is None and b.index is None


def test_file_plain_hdf5_without_dimension_names(tmp_path):
    import h5py

    path = str(tmp_path / "obs.h5")
    with h5py.File(path, "w") as f:
        f["x/value"], f["x/time"], f["x/index"] = Y, [0.1, 0.2, 0.3], np.arange(0, 8, 2)
    q = read_quantity(path, "x")
    np.testing.assert_array_equal(q.values, Y)
    np.testing.assert_array_equal(q.index, [0, 2, 4, 6])


@pytest.mark.parametrize("change, match", [
    (dict(value=np.where(np.arange(12).reshape(3, 4) == 6, np.nan, Y)),
     r"obs.nc:/surface/value\[1, 2\] is nan: values must be finite"),
    (dict(time=[2.0, 4.0]), r"obs.nc:/surface/time: expected \(3,\) to match value's 3 times, got shape \(2,\)"),
    (dict(position=XY[:3]), r"obs.nc:/surface/position: expected \(4, space\) to match value's 4 observations"),
    (dict(std=np.array([1.0, -1.0, 1.0, 1.0])), r"obs.nc:/surface/std\[1\] is -1.0: standard deviations must be "
                                                r"positive"),
    (dict(value=Y[0]), r"obs.nc:/surface/value: expected \(time, obs\), got shape \(4,\)"),
])
def test_file_bad_content_names_file_variable_index(tmp_path, change, match):
    import h5py

    path = str(tmp_path / "obs.nc")  # written with h5py: xarray refuses to write inconsistent shapes
    q = dict(value=Y, time=[2.0, 4.0, 6.0], position=XY, std=np.ones(4))
    q.update(change)
    with h5py.File(path, "w") as f:
        for k, v in q.items():
            f[f"surface/{k}"] = v
    with pytest.raises(ConfigError, match=match):
        read_quantity(path, "surface")


def test_file_missing_group_variable_or_file(tmp_path):
    path = str(tmp_path / "obs.nc")
    write_observation_file(path, {"surface": {"value": Y, "time": [1.0, 2.0, 3.0], "position": XY}})
    with pytest.raises(ConfigError, match=r"obs.nc: no group 'bed'"):
        read_quantity(path, "bed")
    with pytest.raises(ConfigError, match=r"nothere.nc: no such observation file"):
        read_quantity(str(tmp_path / "nothere.nc"), "bed")
    write_observation_file(path, {"surface": {"value": Y, "time": [1.0, 2.0, 3.0]}})
    with pytest.raises(ConfigError, match=r"obs.nc:/surface: give exactly one of position \(obs, space\) or index"):
        read_quantity(path, "surface")
