"""`fdassim run` in-process: checks before the first write, restart refusals and extensions,
corrupt stores, a failed run's status, one clean message (never a traceback) on 1 and 2 ranks.

The kills and the second process of the locking test are real processes: see test_restart.py."""

import os

import numpy as np
import pytest
import yaml

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import read_store  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

L96 = {
    "model": {"name": "lorenz96", "options": {"n": 12}},
    "ensemble": {"size": 6},
    "observations": {"field": "x", "every": 2, "std": 1.0},
    "filter": {"scheme": "enkf"},
    "inflation": [{"multiplicative": {"lam": 1.04}}],
    "run": {"cycles": 8, "interval": 0.05, "seed": 11, "progress": False},
}


def fdassim(tmp_path, params, *args, name="run", comm=MPI.COMM_SELF):
    """``fdassim run`` on ``params`` writing ``name``.h5 in ``tmp_path``; returns (exit code, store path)."""
    from fdassim.cli import main

    folder = comm.bcast(str(tmp_path) if comm.rank == 0 else None)
    params = dict(params, output=dict({"path": os.path.join(folder, f"{name}.h5")}, **params.get("output", {})))
    cfg = os.path.join(folder, f"{name}-{comm.rank}.yaml")
    with open(cfg, "w") as fh:
        yaml.safe_dump(params, fh)
    return main(["run", cfg, *args]), params["output"]["path"]


def with_(params, **sections):
    """``params`` with some keys of some sections replaced."""
    out = dict(params)
    for section, values in sections.items():
        out[section] = dict(params.get(section, {}), **values) if isinstance(values, dict) else values
    return out


def test_run_restart_refuses_changed_settings_naming_each(tmp_path, capsys):
    code, path = fdassim(tmp_path, L96)
    assert code == 0
    before = read_store(path)
    changed = with_(L96, inflation=[{"multiplicative": {"lam": 1.05}}], filter={"scheme": "etkf"},
                    run={"seed": 12, "progress": True})
    capsys.readouterr()
    assert fdassim(tmp_path, changed, "--restart")[0] == 2
    err = capsys.readouterr().err
    assert "cannot restart" in err and "differ from the stored run's and would change its result" in err
    assert "inflation[0].multiplicative.lam: 1.04 (stored) -> 1.05 (now)" in err
    assert 'filter.scheme: "enkf" (stored) -> "etkf" (now)' in err
    assert "run.seed: 11 (stored) -> 12 (now)" in err
    assert "run.progress" not in err and err.count("fdassim: error:") == 1
    np.testing.assert_array_equal(read_store(path)[sl.ensemble("analysis", "x")], before[sl.ensemble("analysis", "x")])
    # what cannot change the result may change; options written out equal their defaults
    same = with_(L96, run={"progress": True}, output={"commit_seconds": 5.0},
                 filter={"scheme": "enkf", "options": {"covariance": "exact", "innovations": "random"}})
    assert fdassim(tmp_path, same, "--restart")[0] == 0
    assert "is complete (8 cycles): nothing to run" in capsys.readouterr().err


def test_run_restart_extends_a_run_exactly(tmp_path, capsys):
    import h5py

    assert fdassim(tmp_path, with_(L96, run={"cycles": 13}), name="ref")[0] == 0
    code, path = fdassim(tmp_path, L96)
    assert code == 0
    longer = with_(L96, run={"cycles": 13})
    assert fdassim(tmp_path, longer, "--restart")[0] == 0
    assert "extending" in capsys.readouterr().err
    a, b = read_store(str(tmp_path / "ref.h5")), read_store(path)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with h5py.File(path, "r") as h5:
        assert h5.attrs["n_cycles"] == 13 and "cycles: 13" in h5.attrs["config"]
        assert bytes(h5[sl.STATUS][()]).rstrip(b"\0") == b"completed"
    assert fdassim(tmp_path, L96, "--restart")[0] == 2
    assert "run.cycles: the store" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
def test_run_restart_of_a_corrupt_store_is_a_clean_error(tmp_path, capsys, damage):
    code, path = fdassim(tmp_path, L96)
    assert code == 0
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        if damage == "truncated":
            fh.truncate(size // 2)
        else:
            fh.write(b"\0" * size)
    capsys.readouterr()
    assert fdassim(tmp_path, L96, "--restart")[0] == 2
    err = capsys.readouterr().err
    assert "cannot restart from" in err and "it is not a readable run store" in err and "--overwrite" in err
    assert fdassim(tmp_path, L96, "--overwrite")[0] == 0
    assert read_store(path)[sl.diagnostic("rmse_analysis")].shape == (8,)


@pytest.mark.parametrize("change, match", [
    pytest.param({"run": {"interval": 0.07}},
                 r"run.interval: 0.07 is not a whole number of the model's time steps \(model.options.dt = 0.05; "
                 r"cycle 0, .*\); use a multiple of 0.05, such as 0.05", id="interval"),
    pytest.param({"ensemble": {"size": 10 ** 10}},
                 r"ensemble.size: 10000000001 states \(members and truth\) of 12 values need at least .* GiB of "
                 r"memory on host .*, more than the .* GiB available", id="memory"),
    pytest.param({"observations": {"every": None, "indices": [1, 3, 1]}},
                 r"observations.indices: \[1\] listed more than once", id="duplicate-indices"),
])
def test_run_late_checks_fail_before_the_store_exists(tmp_path, capsys, change, match):
    import re

    code, path = fdassim(tmp_path, with_(L96, **change))
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert os.listdir(tmp_path) == ["run-0.yaml"]  # nothing written: no store, no lock, no temporary


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_run_failure_leaves_a_store_that_says_why(tmp_path, capsys):
    import h5py

    code, path = fdassim(tmp_path, with_(L96, model={"name": "lorenz96", "options": {"n": 12, "F": 1e9}}))
    assert code == 2
    assert "failed in cycle" in capsys.readouterr().err
    with h5py.File(path, "r") as h5:
        status = bytes(h5[sl.STATUS][()]).rstrip(b"\0").decode()
    assert status.startswith("failed: MemberFailure: member ") and "NaN or Inf" in status
    from fdassim.report import report

    assert f"status: {status}" in report(path, figures=False)
    assert fdassim(tmp_path, L96, "--overwrite")[0] == 0  # a failed store is replaced on request


def _path_errors(tmp_path, capsys, comm):
    folder = comm.bcast(str(tmp_path) if comm.rank == 0 else None)
    if comm.rank == 0:
        os.mkdir(os.path.join(folder, "adir"))
        with open(os.path.join(folder, "afile"), "w") as fh:
            fh.write("x")
    comm.Barrier()
    cases = [("adir", (), "is a directory; give a file name such as"),
             ("adir", ("--overwrite",), "is a directory; give a file name such as"),
             ("afile/run", (), "afile' is a file, so")]
    for target, args, message in cases:
        params = dict(L96, output={"path": os.path.join(folder, target + ".h5" if "/" in target else target)})
        capsys.readouterr()
        code, _ = fdassim(tmp_path, params, *args, comm=comm)
        assert code == 2
        err = capsys.readouterr().err
        if comm.rank == 0:  # one message, on rank 0 only
            assert err.count("fdassim: error:") == 1 and message in err and "Traceback" not in err, err
        else:
            assert err == ""
    comm.Barrier()
    assert sorted(f for f in os.listdir(folder) if not f.endswith(".yaml")) == ["adir", "afile"]
    assert os.listdir(os.path.join(folder, "adir")) == []  # nothing left behind


def test_run_output_path_errors_are_one_message(tmp_path, capsys):
    _path_errors(tmp_path, capsys, MPI.COMM_SELF)


@pytest.mark.parallel(nprocs=2)
def test_run_output_path_errors_are_one_message_parallel(tmp_path, capsys):
    _path_errors(tmp_path, capsys, MPI.COMM_WORLD)


def test_run_output_path_unwritable_is_a_message(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    target = folder
    if os.access(str(folder), os.W_OK):  # root ignores permissions: try a read-only file system
        target = "/sys"
        if os.access(target, os.W_OK) and not _create_fails(target):
            pytest.skip("no unwritable directory available to this user")
    code, _ = fdassim(tmp_path, dict(L96, output={"path": os.path.join(str(target), "run.h5")}))
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot write in" in err and "choose an output.path in a directory you can write" in err
    assert "Traceback" not in err


def _create_fails(folder):
    try:
        fd = os.open(os.path.join(folder, ".fdassim-probe"), os.O_CREAT | os.O_WRONLY)
    except OSError:
        return True
    os.close(fd)
    os.remove(os.path.join(folder, ".fdassim-probe"))
    return False
