"""Observation files: NetCDF or HDF5, one group per quantity, read with xarray.

A quantity ``q`` is the group ``/q`` of the file, holding::

    value     (time, obs)     the observed values (finite)
    time      (time,)         their times: analysis times of the run
    position  (obs, space)    where they are (Firedrake fields), or
    index     (obs,)          which values of an array field are observed
    std       (obs,) or ()    their error standard deviations (optional: else params.yaml's std)
    covariance (obs, obs)     or their full error covariance (optional)

Any NetCDF-4 or HDF5 file with these variables works (HDF5 datasets without dimension names
are read with dimensions named by position). :func:`read_quantity` checks everything before
any work: shapes, finite values, times on the analysis grid, positions inside the domain, and
names the file, the variable, the index and the problem. :func:`write_observation_file`
writes such a file (from a twin run's store, say).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["ObservationFile", "read_quantity", "write_observation_file"]

ENGINE = "h5netcdf"


@dataclass(frozen=True)
class ObservationFile:
    """What a file holds for one quantity (checked by :func:`read_quantity`)."""

    values: np.ndarray            # (T, m)
    times: np.ndarray             # (T,)
    positions: np.ndarray | None  # (m, d)
    index: np.ndarray | None      # (m,) int
    std: np.ndarray | None        # (m,)
    covariance: np.ndarray | None  # (m, m)


def _open(path: str, group: str):
    import xarray as xr

    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such observation file")
    try:
        return xr.open_dataset(path, group=group, engine=ENGINE, phony_dims="sort", decode_times=False)
    except OSError as exc:
        if "group" in str(exc).lower() or "not found" in str(exc).lower():
            raise ConfigError(f"{path}: no group {group!r} (one group per observed quantity)") from None
        raise ConfigError(f"{path}: not a NetCDF-4/HDF5 file: {exc}") from None
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: cannot read group {group!r}: {exc}") from None


def _first_bad(a: np.ndarray) -> str:
    i = tuple(int(v) for v in np.argwhere(~np.isfinite(a))[0])
    return f"[{', '.join(map(str, i))}] is {float(a[i])!r}"


def read_quantity(path: str, group: str) -> ObservationFile:
    """Read and check group ``group`` of the observation file ``path``.

    Raises
    ------
    ConfigError
        Naming the file, the variable, the index and the problem: a missing group or
        variable, a wrong shape, a NaN/Inf, a non-positive error.
    """
    with _open(path, group) as ds:
        where = f"{path}:/{group}"
        names = set(ds.variables)
        for need in ("value", "time"):
            if need not in names:
                raise ConfigError(f"{where}: no variable {need!r} (has {', '.join(sorted(names)) or 'none'})")
        values = np.asarray(ds["value"].values, dtype=float)
        times = np.asarray(ds["time"].values, dtype=float)
        get = {k: np.asarray(ds[k].values) for k in ("position", "index", "std", "covariance") if k in names}
    if values.ndim != 2:
        raise ConfigError(f"{where}/value: expected (time, obs), got shape {values.shape}")
    T, m = values.shape
    if times.shape != (T,):
        raise ConfigError(f"{where}/time: expected ({T},) to match value's {T} times, got shape {times.shape}")
    for name, a in (("value", values), ("time", times)):
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"{where}/{name}{_first_bad(a)}: values must be finite")
    if ("position" in get) == ("index" in get):
        raise ConfigError(f"{where}: give exactly one of position (obs, space) or index (obs,)")
    positions = index = None
    if "position" in get:
        positions = get["position"].astype(float)
        if positions.ndim != 2 or positions.shape[0] != m:
            raise ConfigError(f"{where}/position: expected ({m}, space) to match value's {m} observations, "
                              f"got shape {positions.shape}")
        if not np.all(np.isfinite(positions)):
            raise ConfigError(f"{where}/position{_first_bad(positions)}: positions must be finite")
    else:
        index = get["index"]
        if index.shape != (m,) or not np.issubdtype(index.dtype, np.integer):
            raise ConfigError(f"{where}/index: expected ({m},) integers, got shape {index.shape} of {index.dtype}")
    std = cov = None
    if "std" in get and "covariance" in get:
        raise ConfigError(f"{where}: give std or covariance, not both")
    if "std" in get:
        std = np.broadcast_to(get["std"].astype(float), (m,)).copy() if get["std"].ndim == 0 else get["std"].astype(float)
        if std.shape != (m,):
            raise ConfigError(f"{where}/std: expected ({m},) or a scalar, got shape {std.shape}")
        bad = ~(np.isfinite(std) & (std > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"{where}/std[{i}] is {float(std[i])!r}: standard deviations must be positive and finite")
    if "covariance" in get:
        cov = get["covariance"].astype(float)
        if cov.shape != (m, m):
            raise ConfigError(f"{where}/covariance: expected ({m}, {m}), got shape {cov.shape}")
    return ObservationFile(values, times, positions, index, std, cov)


def write_observation_file(path: str, quantities: dict[str, dict], mode: str = "w") -> None:
    """Write an observation file: ``{name: {"value": (T, m), "time": (T,), "position": (m, d)
    or "index": (m,), optional "std": (m,) or scalar, or "covariance": (m, m)}}``.

    Examples
    --------
    >>> write_observation_file("obs.nc", {"surface": {"value": y, "time": [2.0, 4.0],
    ...                                               "position": xy, "std": 5.0}})  # doctest: +SKIP
    """
    import xarray as xr

    for i, (name, q) in enumerate(quantities.items()):
        value = np.asarray(q["value"], dtype=float)
        data = {"value": (("time", "obs"), value), "time": (("time",), np.asarray(q["time"], dtype=float))}
        if "position" in q:
            data["position"] = (("obs", "space"), np.asarray(q["position"], dtype=float))
        if "index" in q:
            data["index"] = (("obs",), np.asarray(q["index"], dtype="i8"))
        if "std" in q:
            std = np.asarray(q["std"], dtype=float)
            data["std"] = ((), std) if std.ndim == 0 else (("obs",), std)
        if "covariance" in q:
            data["covariance"] = (("obs", "obs_b"), np.asarray(q["covariance"], dtype=float))
        xr.Dataset(data).to_netcdf(path, group=name, mode=mode if i == 0 else "a", engine=ENGINE)
