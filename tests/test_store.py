"""The store's mechanics in-process: buffered commits and restart slots, status, locking of the
script way, growth, disk and path checks (serially and on 2 ranks)."""

import os

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim import store_layout as sl  # noqa: E402

N = 5


def _ensemble(comm):
    from fdassim.ensemble import Ensemble
    from fdassim.models.lorenz96 import Lorenz96

    return Ensemble(Lorenz96(n=12), N, comm=comm, truth=True)


def _cycle_rows(ens, k):
    """Deterministic rows of cycle k for this rank: value = 1000 k + global row + member / 100."""
    rs = ens.row_slice
    rows = np.arange(rs.start, rs.stop)[:, None] + ens.layout.offset
    return 1000.0 * k + rows + np.arange(ens.n_total)[None, :] / 100


def _write(store, ens, k):
    state = _cycle_rows(ens, k)
    store.write_cycle(k, state[:, :N] - 0.5, state[:, :N], state, np.full(3, float(k)),
                      {"rmse_analysis": float(k)}, [0.0, 0.0])


def _shared_path(tmp_path, comm, name):
    return comm.bcast(str(tmp_path / name) if comm.rank == 0 else None)


def _buffered_commits_and_slots(tmp_path, comm):
    """Members every third cycle of 7: stored at cycles 0, 3, 6 (the last); the restart state
    comes from the restart slots after the commits ending on cycles 2 and 4, from the stored
    analysis members after the last (no slot written then)."""
    from fdassim.errors import StoreError
    from fdassim.io import Store

    ens = _ensemble(comm)
    path = _shared_path(tmp_path, comm, "buffer.h5")
    times = 0.05 * np.arange(8)
    store = Store.create(path, ens, times, m=3, commit_seconds=1e9, ensembles_every=3)
    with store:
        for k in range(3):
            _write(store, ens, k)
        assert store.completed() == 0  # kept in memory: nothing committed yet
        store.flush()
        assert store.completed() == 3
        np.testing.assert_array_equal(store.read_state(2), _cycle_rows(ens, 2))
        for k in range(3, 5):
            _write(store, ens, k)
        store.flush()
        # the two slots hold the states after cycles 3 and 5 (alternating per commit)
        np.testing.assert_array_equal(store.read_state(4), _cycle_rows(ens, 4))
        with pytest.raises(StoreError, match=r"holds no restart state after cycle 1 \(it holds"):
            store.read_state(1)
        np.testing.assert_array_equal(store.read_state(3), _cycle_rows(ens, 3))  # stored members
        for k in range(5, 7):
            _write(store, ens, k)
        assert store.status() == "running"
        np.testing.assert_array_equal(store.read_state(6), _cycle_rows(ens, 6))
    # the last cycle was committed as it came; closing marks the run completed
    import h5py

    with h5py.File(path, "r") as h5:
        assert int(h5[sl.COMPLETED][()]) == 7 and h5.attrs["n_cycles"] == 7
        np.testing.assert_array_equal(h5[sl.diagnostic("rmse_analysis")][...], np.arange(7.0))
        np.testing.assert_array_equal(h5[sl.observation("y", "values")][:, 0], np.arange(7.0))
        np.testing.assert_array_equal(h5[sl.ENSEMBLE_CYCLE][...], [0, 3, 6])
        # the analysis members of cycle 6 (the third stored), all rows in global order, members in order
        want = 6000.0 + np.arange(12)[:, None] + np.arange(N)[None, :] / 100
        assert h5[sl.ensemble("analysis", "x")].shape == (3, 12, N)
        np.testing.assert_array_equal(h5[sl.ensemble("analysis", "x")][2], want)
        rows3 = 3000.0 + np.arange(12)[:, None] + np.arange(N)[None, :] / 100
        np.testing.assert_array_equal(h5[sl.ensemble("forecast", "x")][1], rows3 - 0.5)  # cycle 3
        # spreads at every cycle; members near 6000 apart by 0.01: rounding 6000 eps ~ 1e-12 absolute
        np.testing.assert_allclose(h5[sl.spread("analysis", "x")][...], np.std(np.arange(N) / 100, ddof=1),
                                   rtol=1e-9)
        assert bytes(h5[sl.STATUS][()]).rstrip(b"\0") == b"completed"
        assert h5[sl.TIMES].attrs["cycle_axis"] == 0 and "cycle_axis" not in h5[sl.slot(0)].attrs
        assert list(h5[sl.RESTART_CYCLE][...]) == [3, 5]  # the last commit wrote no slot
        # bytes written, all ranks: each cycle's rows (means and spreads 4 x 12, truth 12: 480 bytes;
        # at cycles 0, 3, 6 the members too, 2 x 12 x 5: 960 bytes) and rank 0's scalars and
        # observations; the commits after cycles 2 and 4 wrote the restart state (12 x 6: 576 bytes)
        written = h5[sl.BYTES][...]
        plain = written[[1, 5]]
        assert plain[0] == plain[1] and plain[0] >= 480 + 8 * 8
        np.testing.assert_array_equal(written[[0, 3, 6]], plain[0] + 960)
        np.testing.assert_array_equal(written[[2, 4]], plain[0] + 576)
    assert not os.path.exists(path + ".lock")  # the script way locks too, and releases


def test_store_buffered_commits_and_restart_slots(tmp_path):
    _buffered_commits_and_slots(tmp_path, MPI.COMM_SELF)


@pytest.mark.parallel(nprocs=2)
def test_store_buffered_commits_and_restart_slots_parallel(tmp_path):
    _buffered_commits_and_slots(tmp_path, MPI.COMM_WORLD)


def test_store_members_of_every_cycle_are_the_restart_state(tmp_path):
    """Members stored at every cycle: no restart slots in the file, each commit writes no
    second copy of the state (its 12 x 6 values: 576 bytes), a reopened store restarts from
    the stored analysis members and truth."""
    import h5py

    from fdassim.io import Store

    ens = _ensemble(MPI.COMM_SELF)
    path = str(tmp_path / "every.h5")
    with Store.create(path, ens, 0.05 * np.arange(5), m=3, commit_seconds=0) as store:
        for k in range(2):
            _write(store, ens, k)
    with h5py.File(path, "r") as h5:
        assert sl.slot(0) not in h5 and sl.slot(1) not in h5
        written = h5[sl.BYTES][:2]
        # members 2 x 12 x 5, means 2 x 12, truth 12 (1248 bytes), and rank 0's scalars and
        # observations (under 200 bytes): no restart state although every cycle was committed
        assert written[0] == written[1] and 1248 < written[0] < 1248 + 200
    with Store.open(path, ens) as store:
        np.testing.assert_array_equal(store.read_state(1), _cycle_rows(ens, 1))
        for k in range(2, 4):
            _write(store, ens, k)


def test_store_status_failed_with_the_reason_and_reopened(tmp_path):
    import h5py

    from fdassim.io import Store, read_status

    ens = _ensemble(MPI.COMM_SELF)
    path = str(tmp_path / "fail.h5")
    with pytest.raises(RuntimeError, match="boom"):
        with Store.create(path, ens, 0.05 * np.arange(5), m=3, commit_seconds=1e9) as store:
            _write(store, ens, 0)
            _write(store, ens, 1)
            raise RuntimeError("boom")
    with h5py.File(path, "r") as h5:
        assert read_status(h5) == "failed: RuntimeError: boom"
        assert int(h5[sl.COMPLETED][()]) == 2  # the cycles before the failure are kept
    with Store.open(path, ens) as store:
        assert store.status() == "running" and store.completed() == 2
        for k in (2, 3):
            _write(store, ens, k)
    with h5py.File(path, "r") as h5:
        assert read_status(h5) == "completed" and int(h5[sl.COMPLETED][()]) == 4


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # the test writes no forecast RMSE
@pytest.mark.parametrize("every", [1, 3])
def test_store_grow_keeps_cycles_and_adds_room(tmp_path, every):
    """Grown from 3 to 6 cycles: with members every cycle, 3 new rows; every third cycle,
    the 3-cycle run kept cycles 0 and 2 (the last), the new cycles add 3 and 5."""
    import h5py

    from fdassim.errors import ConfigError
    from fdassim.grow import grow
    from fdassim.io import Store

    ens = _ensemble(MPI.COMM_SELF)
    path = str(tmp_path / "grow.h5")
    with Store.create(path, ens, 0.05 * np.arange(4), m=3, ensembles_every=every, commit_seconds=0) as store:
        for k in range(3):
            _write(store, ens, k)
    kept, rows = ([0, 1, 2, 3, 4, 5], 3) if every == 1 else ([0, 2, 3, 5], 2)
    copied = [sl.ensemble("forecast", "x"), sl.positions("x"), sl.diagnostic("rmse_analysis")]
    copied += [] if every == 1 else [sl.slot(0), sl.slot(1)]
    with h5py.File(path, "r") as h5:
        before = {name: h5[name][...] for name in copied}
    assert grow(path, 0.05 * np.arange(7), attrs={"config": "new"}) == 3
    with h5py.File(path, "r") as h5:
        assert h5.attrs["n_cycles"] == 6 and h5.attrs["config"] == "new" and int(h5[sl.COMPLETED][()]) == 3
        np.testing.assert_array_equal(h5[sl.TIMES][...], 0.05 * np.arange(7))
        assert h5[sl.ensemble("forecast", "x")].shape == (len(kept), 12, N)
        np.testing.assert_array_equal(h5[sl.ensemble("forecast", "x")][:rows], before[sl.ensemble("forecast", "x")])
        assert np.all(np.isnan(h5[sl.ensemble("forecast", "x")][rows:]))
        for name in copied[1:]:
            np.testing.assert_array_equal(h5[name][...][:3], before[name][:3])
    with Store.open(path, ens) as store:
        np.testing.assert_array_equal(store.read_state(2), _cycle_rows(ens, 2))
        for k in range(3, 6):
            _write(store, ens, k)
    with h5py.File(path, "r") as h5:
        np.testing.assert_array_equal(h5[sl.diagnostic("rmse_analysis")][...], np.arange(6.0))
        np.testing.assert_array_equal(h5[sl.ensemble("analysis", "x")][-1, :, :], _cycle_rows(ens, 5)[:, :N])
    import xarray

    with xarray.open_dataset(path, engine="h5netcdf", group="ensemble/analysis") as ds:  # labelled again
        np.testing.assert_array_equal(ds[sl.CYCLE if every == 1 else sl.ENSEMBLE_CYCLE], kept)
        np.testing.assert_array_equal(ds["x"].isel({ds["x"].dims[0]: -1}), _cycle_rows(ens, 5)[:, :N])
    if every == 3:
        from fdassim.report import report

        assert "members: stored at 4 of 6 cycles (output.ensembles_every: 3)" in report(path, figures=False)
    with pytest.raises(ConfigError, match=r"run.cycles: the store .* holds 6 cycles and a run cannot shrink"):
        grow(path, 0.05 * np.arange(5))
    with pytest.raises(ConfigError, match=r"its analysis times differ from this run's \(run.t0 or run.interval"):
        grow(path, 0.1 * np.arange(9))
    assert not [f for f in os.listdir(tmp_path) if ".grow-" in f]


def test_store_refuses_a_second_writer_in_process(tmp_path):
    from fdassim.errors import StoreError
    from fdassim.io import Store

    ens = _ensemble(MPI.COMM_SELF)
    path = str(tmp_path / "busy.h5")
    with Store.create(path, ens, 0.05 * np.arange(3), m=3):
        with pytest.raises(StoreError, match=rf"is being written by another run \(pid {os.getpid()} on host"):
            Store.create(path, ens, 0.05 * np.arange(3), m=3, overwrite=True)


@pytest.mark.parametrize("case", ["directory", "under-a-file"])
def test_store_output_path_errors(tmp_path, case):
    from fdassim.errors import StoreError
    from fdassim.io import Store

    ens = _ensemble(MPI.COMM_SELF)
    if case == "directory":
        path, match = str(tmp_path), r"output.path: .* is a directory; give a file name such as .*run.h5"
    else:
        (tmp_path / "afile").write_text("x")
        path, match = str(tmp_path / "afile" / "run.h5"), r"output.path: .*afile' is a file, so .* cannot be made"
    for overwrite in (False, True):
        with pytest.raises(StoreError, match=match):
            Store.create(path, ens, 0.05 * np.arange(3), m=3, overwrite=overwrite)
    assert sorted(os.listdir(tmp_path)) == (["afile"] if case == "under-a-file" else [])


def test_store_makes_missing_directories_and_refuses_without_space(tmp_path, monkeypatch):
    import shutil

    from fdassim.errors import StoreError
    from fdassim.io import Store

    ens = _ensemble(MPI.COMM_SELF)
    path = str(tmp_path / "new" / "deeper" / "run.h5")
    Store.create(path, ens, 0.05 * np.arange(3), m=3).close()
    assert os.path.isfile(path)
    usage = shutil.disk_usage(str(tmp_path))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(StoreError, match=r"output.path: the store needs .* GiB and .* has 9.31e-07 GiB free; "
                                         r".*output.store_ensembles: false"):
        Store.create(str(tmp_path / "full.h5"), ens, 0.05 * np.arange(3), m=3)
    assert not os.path.exists(tmp_path / "full.h5")


def test_store_open_refuses_another_ensemble(tmp_path):
    from fdassim.ensemble import Ensemble
    from fdassim.errors import ConfigError
    from fdassim.io import Store
    from fdassim.models.lorenz96 import Lorenz96

    path = str(tmp_path / "a.h5")
    Store.create(path, _ensemble(MPI.COMM_SELF), 0.05 * np.arange(3), m=3).close()
    other = Ensemble(Lorenz96(n=12), N + 1, comm=MPI.COMM_SELF, truth=True)
    with pytest.raises(ConfigError, match=rf"cannot restart from .*: its n_members is {N}, this run has {N + 1}"):
        Store.open(path, other)
    assert not os.path.exists(path + ".lock")


def _attrs_from_rank0(tmp_path, comm, monkeypatch):
    import h5py

    import fdassim.io

    # a clock that differs between ranks (as it may by a second): the file gets rank 0's
    monkeypatch.setattr(fdassim.io.time, "strftime", lambda fmt: f"clock of rank {comm.rank}")
    path = _shared_path(tmp_path, comm, "attrs.h5")
    fdassim.io.Store.create(path, _ensemble(comm), 0.05 * np.arange(3), m=3).close()
    comm.Barrier()
    if comm.rank == 0:
        with h5py.File(path, "r") as h5:
            assert h5.attrs["created"] == "clock of rank 0"


def test_store_attributes_are_rank0s(tmp_path, monkeypatch):
    _attrs_from_rank0(tmp_path, MPI.COMM_SELF, monkeypatch)


@pytest.mark.parallel(nprocs=2)
def test_store_attributes_are_rank0s_parallel(tmp_path, monkeypatch):
    _attrs_from_rank0(tmp_path, MPI.COMM_WORLD, monkeypatch)


def test_store_missing_has_its_own_exception(tmp_path):
    from fdassim.errors import StoreError, StoreNotFound
    from fdassim.io import Store

    with pytest.raises(StoreNotFound, match=r"cannot restart: no store at '.*absent.h5' \(run without --restart"):
        Store.open(str(tmp_path / "absent.h5"), _ensemble(MPI.COMM_SELF))
    assert issubclass(StoreNotFound, StoreError) and issubclass(StoreNotFound, FileNotFoundError)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # the test writes no forecast RMSE
def test_store_means_and_spreads_only(tmp_path):
    """output.store_ensembles: false keeps the members' mean and standard deviation (ddof 1) per
    value: the written members differ by 0.01 apart, so their spread is std(0, ..., 0.04)."""
    import h5py

    from fdassim.io import Store
    from fdassim.report import report

    ens = _ensemble(MPI.COMM_SELF)
    path = str(tmp_path / "small.h5")
    with Store.create(path, ens, 0.05 * np.arange(3), m=3, store_ensembles=False) as store:
        for k in range(2):
            _write(store, ens, k)
    with h5py.File(path, "r") as h5:
        assert "ensemble" not in h5
        want = np.std(np.arange(N) / 100, ddof=1)
        np.testing.assert_allclose(h5[sl.spread("analysis", "x")][...], want, rtol=1e-12)
        np.testing.assert_allclose(h5[sl.mean("forecast", "x")][1], 1000.0 + np.arange(12) + 0.02 - 0.5, rtol=1e-15)
        # rows: means and spreads 4 x 12, truth 12 values (480 bytes), less than with the members
        assert h5[sl.BYTES][0] >= 480 + 64 and h5[sl.BYTES][0] < 1248
    text = report(path, figures=False)
    assert "written: " in text and " MiB per cycle (mean; " in text and "members: not stored" in text
