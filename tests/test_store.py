"""The store's mechanics in-process: buffered commits and restart slots, status, locking of the
script way, growth, disk and path checks (serially and on 2 ranks)."""

import os

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

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
    from fdassim.errors import StoreError
    from fdassim.io import Store

    ens = _ensemble(comm)
    path = _shared_path(tmp_path, comm, "buffer.h5")
    times = 0.05 * np.arange(9)
    store = Store.create(path, ens, times, m=3, commit_seconds=1e9)
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
        for k in range(5, 8):
            _write(store, ens, k)
        assert store.status() == "running"
    # the last cycle was committed as it came; closing marks the run completed
    import h5py

    with h5py.File(path, "r") as h5:
        assert int(h5["completed"][()]) == 8 and h5.attrs["n_cycles"] == 8
        np.testing.assert_array_equal(h5["diagnostics/rmse_analysis"][...], np.arange(8.0))
        np.testing.assert_array_equal(h5["observations/y/values"][:, 0], np.arange(8.0))
        # the analysis ensemble of cycle 6, all rows in global order, members in order
        want = 6000.0 + np.arange(12)[:, None] + np.arange(N)[None, :] / 100
        np.testing.assert_array_equal(h5["ensemble/analysis/x"][6], want)
        assert bytes(h5["status"][()]).rstrip(b"\0") == b"completed"
        assert h5["times"].attrs["cycle_axis"] == 0 and "cycle_axis" not in h5["restart/slot0"].attrs
        assert list(h5["restart/cycle"][...]) == [8, 5]  # slot 0: after 3, then 8; slot 1: after 5
        # bytes written, all ranks: each cycle's rows (ensembles 2 x 12 x 5, means 2 x 12, truth 12:
        # 1248 bytes) and rank 0's scalars and observations; the commits (after cycles 2, 4 and 7)
        # wrote the restart state too (12 x 6 values: 576 bytes)
        written = h5["timing/bytes"][...]
        plain = written[[0, 1, 3, 5, 6]]
        assert np.all(plain == plain[0]) and plain[0] >= 1248 + 8 * 8
        np.testing.assert_array_equal(written[[2, 4, 7]], plain[0] + 576)
    assert not os.path.exists(path + ".lock")  # the script way locks too, and releases


def test_store_buffered_commits_and_restart_slots(tmp_path):
    _buffered_commits_and_slots(tmp_path, MPI.COMM_SELF)


@pytest.mark.parallel(nprocs=2)
def test_store_buffered_commits_and_restart_slots_parallel(tmp_path):
    _buffered_commits_and_slots(tmp_path, MPI.COMM_WORLD)


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
        assert int(h5["completed"][()]) == 2  # the cycles before the failure are kept
    with Store.open(path, ens) as store:
        assert store.status() == "running" and store.completed() == 2
        for k in (2, 3):
            _write(store, ens, k)
    with h5py.File(path, "r") as h5:
        assert read_status(h5) == "completed" and int(h5["completed"][()]) == 4


def test_store_grow_keeps_cycles_and_adds_room(tmp_path):
    import h5py

    from fdassim.errors import ConfigError
    from fdassim.grow import grow
    from fdassim.io import Store

    ens = _ensemble(MPI.COMM_SELF)
    path = str(tmp_path / "grow.h5")
    with Store.create(path, ens, 0.05 * np.arange(4), m=3) as store:
        for k in range(3):
            _write(store, ens, k)
    with h5py.File(path, "r") as h5:
        before = {name: h5[name][...] for name in ("ensemble/forecast/x", "restart/slot0", "restart/slot1",
                                                   "coordinates/x", "diagnostics/rmse_analysis")}
    assert grow(path, 0.05 * np.arange(7), attrs={"config": "new"}) == 3
    with h5py.File(path, "r") as h5:
        assert h5.attrs["n_cycles"] == 6 and h5.attrs["config"] == "new" and int(h5["completed"][()]) == 3
        np.testing.assert_array_equal(h5["times"][...], 0.05 * np.arange(7))
        assert h5["ensemble/forecast/x"].shape == (6, 12, N)
        np.testing.assert_array_equal(h5["ensemble/forecast/x"][:3], before["ensemble/forecast/x"])
        assert np.all(np.isnan(h5["ensemble/forecast/x"][3:]))
        for name in ("restart/slot0", "restart/slot1", "coordinates/x"):
            np.testing.assert_array_equal(h5[name][...], before[name])
    with Store.open(path, ens) as store:
        for k in range(3, 6):
            _write(store, ens, k)
    with h5py.File(path, "r") as h5:
        np.testing.assert_array_equal(h5["diagnostics/rmse_analysis"][...], np.arange(6.0))
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
        np.testing.assert_allclose(h5["spread/analysis/x"][...], want, rtol=1e-12)
        np.testing.assert_allclose(h5["mean/forecast/x"][1], 1000.0 + np.arange(12) + 0.02 - 0.5, rtol=1e-15)
        # rows: means and spreads 4 x 12, truth 12 values (480 bytes), less than with the members
        assert h5["timing/bytes"][0] >= 480 + 64 and h5["timing/bytes"][0] < 1248
    assert "written: " in report(path, figures=False) and " MiB per cycle (mean; " in report(path, figures=False)
