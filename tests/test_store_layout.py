"""The store's layout: made with h5netcdf, written in parallel with h5py, read back by xarray
with named dimensions and coordinates."""

import numpy as np
import pytest

from fdassim import store_layout as sl

xr = pytest.importorskip("xarray", reason="xarray reads the store (a dependency: make install)")
pytest.importorskip("h5netcdf", reason="h5netcdf makes the store (a dependency: make install)")

FIELDS = (("thickness", 7), ("friction", 5))
TIMES = 0.5 * np.arange(6)  # t_0 and K = 5 analysis times


def _shape(every=2, truth=True, carried=None, windows=None):
    return sl.RunShape(fields=FIELDS, n_cycles=5, n_members=3, has_truth=truth, space_dim=2, n_obs=4,
                       ensemble_cycles=sl.kept_cycles(5, every), n_carried=carried, windows=windows)


def _expected(shape):
    """Deterministic values for every variable, from its name (what each rank writes its part of)."""
    out = {}
    for v in sl.variables(shape):
        if v.dtype.startswith("S"):
            continue  # the status: text, written by the store itself
        sizes = {**sl.dimensions(shape)[""], **sl.dimensions(shape).get(v.group, {})}
        n = int(np.prod([sizes[d] for d in v.dims], dtype=int))
        seed = sum(map(ord, v.name))
        out[v.name] = (np.arange(n, dtype=float) + seed).reshape([sizes[d] for d in v.dims])
    return out


def _write(path, shape, comm):
    """Make the store with h5netcdf and write each variable's rows with h5py, each rank its
    share of the first axis (as the cycle writes its rows of a field)."""
    import h5netcdf
    import h5py

    kw = dict(driver="mpio", comm=comm) if comm.size > 1 else {}
    with h5netcdf.File(path, "w", **kw) as nc:
        sl.create(nc, shape, TIMES, rank=comm.rank)
    expected = _expected(shape)
    fixed = {"cycle", "time", "member", "ensemble_cycle", "ensemble_time", "initial_time"}
    with h5py.File(path, "r+", **kw) as h5:
        for name, values in expected.items():
            if name in fixed:
                continue
            if values.ndim == 0:
                if comm.rank == 0:
                    h5[name][()] = values
                continue
            lo, hi = [len(values) * r // comm.size for r in (comm.rank, comm.rank + 1)]
            if hi > lo:
                h5[name][lo:hi] = values[lo:hi]
    return expected


def test_kept_cycles_every_k_and_the_last():
    assert sl.kept_cycles(10, 1) == tuple(range(10))
    assert sl.kept_cycles(10, 4) == (3, 7, 9)
    assert sl.kept_cycles(10, 0) == ()
    assert sl.kept_cycles(3, 10) == (2,)


@pytest.mark.parametrize("every, carried, windows", [(1, None, None), (2, 6, None), (0, None, 2), (2, 6, 2)])
def test_store_round_trips_through_xarray(tmp_path, every, carried, windows):
    from mpi4py import MPI

    shape = _shape(every, carried=carried, windows=windows)
    path = str(tmp_path / "run.h5")
    expected = _write(path, shape, MPI.COMM_SELF)
    _check(path, shape, expected)


@pytest.mark.parallel(nprocs=2)
def test_store_written_on_two_ranks_round_trips_through_xarray(tmp_path_factory):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    path = comm.bcast(str(tmp_path_factory.mktemp("layout") / "run.h5") if comm.rank == 0 else None)
    shape = _shape(2)
    expected = _write(path, shape, comm)
    comm.Barrier()
    if comm.rank == 0:
        _check(path, shape, expected)


def _check(path, shape, expected):
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        K, N = shape.n_cycles, shape.n_members
        assert ds.sizes["cycle"] == K and ds.sizes["member"] == N
        np.testing.assert_array_equal(ds["time"], TIMES[1:])
        assert float(ds["initial_time"]) == TIMES[0]
        np.testing.assert_array_equal(ds["member"], np.arange(N))
        for f, n in shape.fields:
            # positions are coordinates of the field's values
            for a in "xy":
                assert f"{f}_{a}" in ds.coords and ds[f"{f}_{a}"].dims == (f"{f}_index",)
            assert ds[sl.mean(f, "analysis")].dims == ("cycle", f"{f}_index")
            assert ds[sl.truth(f)].sizes[f"{f}_index"] == n
            assert "time" in ds[sl.mean(f, "analysis")].coords
            if shape.ensemble_cycles:
                a = ds[sl.ensemble(f, "analysis")]
                assert a.dims == ("ensemble_cycle", f"{f}_index", "member")
                np.testing.assert_array_equal(a["ensemble_cycle"], shape.ensemble_cycles)
                np.testing.assert_array_equal(a["ensemble_time"], TIMES[1:][list(shape.ensemble_cycles)])
            else:
                assert sl.ensemble(f, "analysis") not in ds and "ensemble_cycle" not in ds.dims
        # every value written by whichever rank lands where the layout says
        for name, values in expected.items():
            if "/" not in name and name not in ("cycle", "time", "member", "ensemble_cycle", "ensemble_time",
                                                "initial_time"):
                np.testing.assert_array_equal(ds[name].values, values, err_msg=name)
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        assert tree["observations"]["y"].dims == ("cycle", "observation")
        restart = tree["restart"]
        assert ("slot0" in restart) != shape.restart_in_ensembles  # no copy of the kept analyses
        if not shape.restart_in_ensembles:
            assert restart["slot0"].shape == (shape.n_state, shape.n_total)
            np.testing.assert_array_equal(restart["slot1"].values, expected["restart/slot1"])
        if shape.n_carried is not None:
            assert restart["carried0"].dims == ("member_or_truth", "carried_value")
            np.testing.assert_array_equal(restart["carried1"].values, expected["restart/carried1"])
        if shape.windows is not None:
            np.testing.assert_array_equal(tree["smoother"]["iterations"].values, expected["smoother/iterations"])
            assert tree["smoother"][sl.mean("thickness", "smoothed")].dims == ("cycle", "thickness_index")
        else:
            assert "smoother" not in tree


def test_bytes_per_cycle_counts_what_a_cycle_writes():
    shape = _shape(2)
    n, N = 12, 3
    small = 8 * (n * 5 + 4 + 3 + 1 + 4)  # means, spreads, truth; diagnostics, timings, bytes, y
    restart = 8 * n * (N + 1)
    assert sl.bytes_per_cycle(shape, 0) == small + restart  # ensembles not kept at cycle 0
    assert sl.bytes_per_cycle(shape, 1) == small + restart + 8 * 2 * n * N
    every = _shape(1)  # the analysis ensembles are the restart: no slots
    assert not any(v.name.startswith("restart/slot") for v in sl.variables(every))
    assert sl.bytes_per_cycle(every, 0) == small + 8 * 2 * n * N
    carried = _shape(1, carried=6)  # the carried fields are in no ensemble: their slots stay
    assert sl.bytes_per_cycle(carried, 0) == small + 8 * 2 * n * N + 8 * 6 * (N + 1)

