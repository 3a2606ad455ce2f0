"""A run killed at any point continues with ``fdassim run --restart`` and ends exactly like an
uninterrupted run: killed in the middle of a forecast, of a write and of growing the store,
serially and on 2 ranks. A store is locked while a run writes it: a second process is refused,
naming the first. These tests run real processes (``fdassim`` under ``mpiexec`` for 2 ranks)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")

from helpers import HEAT_POINTS, read_store  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

L96 = {
    "model": {"name": "lorenz96"},
    "ensemble": {"size": 10},
    "observations": {"field": "x", "every": 2, "std": 1.0},
    "filter": {"scheme": "enkf"},
    "inflation": [{"multiplicative": {"lam": 1.04}}],
    "run": {"cycles": 12, "interval": 0.05, "seed": 11, "progress": False},
    "output": {"commit_seconds": 0},  # commit every cycle: a kill at cycle k leaves k cycles
}
HEAT = {  # with the state a restart must recover beyond the fields: AR(1) noise, the previous ensemble
    "model": {"name": "heat"},
    "ensemble": {"size": 6,
                 "initial_perturbations": {"source": {"model": "gaussian", "std": 0.2, "length": 0.4}},
                 "model_noise": {"rho": 0.8, "fields": {"temperature": {"model": "evensen", "std": 0.05,
                                                                        "length": 0.3}}}},
    "observations": {"field": "temperature", "points": HEAT_POINTS.tolist(), "std": 0.1},
    "filter": {"scheme": "enkf"},
    "parameters": [{"beta": {"field": "source"}}],  # bounds from the current and previous ensembles
    "run": {"cycles": 5, "interval": 0.2, "seed": 11, "progress": False},
    "output": {"commit_seconds": 0},
}
PETSC_UNUSED = "options you set that were not used"


def _env(**extra):
    # an explicit copy of os.environ: a process that has initialised MPI keeps singleton
    # variables in its C environment, which would break an mpiexec it spawns
    env = dict(os.environ)
    env.pop("FDASSIM_KILL_AT", None)
    env.pop("PETSC_OPTIONS", None)  # fdassim must not hand its own arguments to PETSc
    env.update(extra)
    return env


def _command(params: dict, tmp_path, name: str, *args, ranks: int = 1):
    params = dict(params, output=dict(params.get("output", {}), path=str(tmp_path / f"{name}.h5")))
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(params))
    cmd = [sys.executable, "-m", "fdassim.cli", "run", str(cfg), *args]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    return cmd, params["output"]["path"]


def inproc(params: dict, tmp_path, name: str, *args):
    """``fdassim run`` in this process (serial; the same code, so the same result bit for bit as a
    separate process): (exit code, store path). For set-ups and references: a process of its own
    costs the start-up of Firedrake."""
    from fdassim.cli import main

    cmd, path = _command(params, tmp_path, name, *args)
    return main(cmd[cmd.index("run"):]), path


def fdassim(params: dict, tmp_path, name: str, *args, ranks: int = 1, kill_at: str | None = None):
    """Run ``fdassim run`` on ``params`` writing ``name``.h5 in a process of its own; return the
    process and the store path."""
    cmd, path = _command(params, tmp_path, name, *args, ranks=ranks)
    env = _env(FDASSIM_KILL_AT=kill_at) if kill_at else _env()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return proc, path


def assert_same_run(path_a, path_b):
    a, b = read_store(path_a), read_store(path_b)
    keys = [k for k in a if not k.startswith("timing")]
    assert keys and set(keys) <= set(b)
    for key in keys:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("params, kill_at, ranks", [
    pytest.param(L96, "forecast:5", 1, id="l96-forecast"),
    pytest.param(L96, "write:7", 1, id="l96-write"),
    # members every third cycle (0, 3, 6, 9, 11): the state after cycle 7 is in a restart slot
    pytest.param(dict(L96, output={"commit_seconds": 0, "ensembles_every": 3}), "write:8", 1, id="l96-every3"),
    pytest.param(HEAT, "forecast:2", 1, id="heat-forecast"),
    pytest.param(HEAT, "write:3", 2, id="heat-write-2ranks"),
])
def test_restart_after_kill_reproduces_uninterrupted_run(tmp_path, capsys, params, kill_at, ranks):
    # the reference on as many ranks (the diagnostics' sums over rows depend on the split)
    if ranks == 1:
        code, ref_path = inproc(params, tmp_path, "ref")
        assert code == 0
        ref_out = capsys.readouterr().out
    else:
        ref, ref_path = fdassim(params, tmp_path, "ref", ranks=ranks)
        assert ref.returncode == 0, ref.stderr
        ref_out = ref.stdout
    killed, path = fdassim(params, tmp_path, "killed", ranks=ranks, kill_at=kill_at)
    assert killed.returncode != 0, "the fault did not fire"
    import h5py

    with h5py.File(path, "r") as h5:  # the store survived the kill, committed up to the cycle before
        assert int(h5[sl.COMPLETED][()]) == int(kill_at.split(":")[1])
    if ranks == 1:  # the killed run continued with other settings: refused, naming each, store untouched
        changed = dict(params, run=dict(params["run"], seed=12), filter={"scheme": "etkf"})
        capsys.readouterr()
        assert inproc(changed, tmp_path, "killed", "--restart")[0] == 2
        err = capsys.readouterr().err
        assert "ended without finishing" in err  # the dead run's lock file, taken over (and released)
        assert "run.seed: 11 (stored) -> 12 (now)" in err and 'filter.scheme: "enkf" (stored) -> "etkf" (now)' in err
        with h5py.File(path, "r") as h5:
            assert int(h5[sl.COMPLETED][()]) == int(kill_at.split(":")[1])
    again, _ = fdassim(params, tmp_path, "killed", "--restart", ranks=ranks)
    assert again.returncode == 0, again.stderr
    if ranks > 1:
        assert "ended without finishing" in again.stderr  # the dead run's lock file, taken over
    assert PETSC_UNUSED not in again.stdout + again.stderr
    assert_same_run(ref_path, path)
    # the printed summary covers the whole run, cycles before the kill included
    summary = [line for line in ref_out.splitlines() if "time-averaged" in line]
    assert summary and summary == [line for line in again.stdout.splitlines() if "time-averaged" in line]


def test_restart_after_kill_with_buffered_commits(tmp_path):
    """Cycles kept in memory between commits are lost by a kill and computed again."""
    params = dict(L96, output={"commit_seconds": 3600})  # one commit, at the end
    code, ref_path = inproc(params, tmp_path, "ref")
    assert code == 0
    killed, path = fdassim(params, tmp_path, "killed", kill_at="write:11")
    assert killed.returncode != 0, "the fault did not fire"
    import h5py

    with h5py.File(path, "r") as h5:
        assert int(h5[sl.COMPLETED][()]) == 0 and bytes(h5[sl.STATUS][()]).rstrip(b"\0") == b"running"
    assert inproc(params, tmp_path, "killed", "--restart")[0] == 0
    assert_same_run(ref_path, path)


def test_restart_killed_while_growing_keeps_the_store(tmp_path):
    import h5py

    code, path = inproc(L96, tmp_path, "grow")
    assert code == 0
    longer = dict(L96, run=dict(L96["run"], cycles=16))
    killed, _ = fdassim(longer, tmp_path, "grow", "--restart", kill_at="grow:16")
    assert killed.returncode != 0, "the fault did not fire"
    with h5py.File(path, "r") as h5:  # the old store, whole
        assert h5.attrs["n_cycles"] == 12 and int(h5[sl.COMPLETED][()]) == 12
    assert [f for f in os.listdir(tmp_path) if ".grow-" in f]  # the half-made copy
    assert inproc(longer, tmp_path, "grow", "--restart")[0] == 0
    assert not [f for f in os.listdir(tmp_path) if ".grow-" in f]  # removed by the next run
    assert inproc(longer, tmp_path, "ref16")[0] == 0
    assert_same_run(str(tmp_path / "ref16.h5"), path)


def test_second_writer_is_refused_naming_the_running_one(tmp_path, capsys):
    """Two real processes (a run, and this test's): while one run writes a store, a second run,
    an --overwrite and a --restart of it are refused with the first's process id; after the
    first is killed, its lock is free and the store says it was interrupted."""
    import time

    from fdassim.report import report

    long = dict(L96, run=dict(L96["run"], cycles=200000), output={"commit_seconds": 0.5})
    cmd, path = _command(long, tmp_path, "busy")
    first = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (os.path.exists(path) and os.path.exists(path + ".lock")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        for args in ((), ("--overwrite",), ("--restart",)):
            capsys.readouterr()
            assert inproc(long, tmp_path, "busy", *args)[0] == 2
            err = capsys.readouterr().err
            assert f"is being written by another run (pid {first.pid} on host" in err, err
        assert f"status: running (pid {first.pid}" in report(path, figures=False)
        assert first.poll() is None  # the first run went on undisturbed
    finally:
        first.kill()
        first.communicate()
    assert "status: interrupted after" in report(path, figures=False)
    from fdassim.lock import StoreLock

    with StoreLock(path) as lock:  # free again; the dead run's record is recognised
        assert lock.stale["pid"] == first.pid


def test_two_runs_started_at_once_on_a_new_store(tmp_path):
    """Two real processes started together on one new output.path: one runs, the other is
    refused naming the first's process id, and exits with 2 (not 0)."""
    import time

    long = dict(L96, run=dict(L96["run"], cycles=200000), output={"commit_seconds": 0.5})
    cmd, path = _command(long, tmp_path, "race")
    procs = [subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        deadline = time.monotonic() + 180
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "neither run was refused"
            time.sleep(0.2)
        refused = next(p for p in procs if p.poll() is not None)
        running = next(p for p in procs if p is not refused)
        err = refused.communicate()[1]
        assert refused.returncode == 2, err
        assert f"is being written by another run (pid {running.pid} on host" in err, err
        assert running.poll() is None  # the first goes on
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


def test_restart_without_store_starts_from_the_beginning(tmp_path, capsys):
    code, path = inproc(L96, tmp_path, "fresh", "--restart")
    assert code == 0
    assert "starting from the beginning" in capsys.readouterr().err
    assert read_store(path)[sl.diagnostic("rmse_analysis")].shape == (12,)


def test_run_refuses_to_overwrite_a_store(tmp_path, capsys):
    code, path = inproc(L96, tmp_path, "done")
    assert code == 0
    before = read_store(path)[sl.ensemble("analysis", "x")]
    assert inproc(L96, tmp_path, "done")[0] == 2
    assert "exists: continue that run with --restart, start it again with --overwrite" in capsys.readouterr().err
    np.testing.assert_array_equal(read_store(path)[sl.ensemble("analysis", "x")], before)  # nothing lost
    forced, _ = fdassim(L96, tmp_path, "done", "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert PETSC_UNUSED not in forced.stdout + forced.stderr


def test_run_with_bad_params_fails_before_any_work(tmp_path, capsys):
    bad = dict(L96, ensemble={"size": -3})
    code, path = inproc(bad, tmp_path, "bad")
    assert code == 2
    assert "ensemble.size: must be at least 2, got -3" in capsys.readouterr().err
    assert not os.path.exists(path)


def test_run_from_observation_file_reproduces_the_twin(tmp_path):
    """Observations read from a file (no truth) give the twin run's analysis exactly when the
    file holds the twin's observations: the truth only ever enters through y."""
    code, twin_path = inproc(L96, tmp_path, "twin")
    assert code == 0
    twin = read_store(twin_path)
    from fdassim.observations.files import write_observation_file

    write_observation_file(str(tmp_path / "obs.nc"), {"x": {
        "value": twin[sl.observation("x", "values")], "time": twin[sl.observation("x", "time")],
        "index": np.arange(0, 40, 2), "std": 1.0}})
    real = dict(L96, run=dict(L96["run"], twin=False),
                observations={"field": "x", "file": str(tmp_path / "obs.nc")})
    code, path = inproc(real, tmp_path, "real")
    assert code == 0
    d = read_store(path)
    assert sl.truth("x") not in d and np.all(np.isnan(d[sl.diagnostic("rmse_analysis")]))
    np.testing.assert_array_equal(d[sl.ensemble("analysis", "x")], twin[sl.ensemble("analysis", "x")])
    np.testing.assert_array_equal(d[sl.observation("x", "values")], twin[sl.observation("x", "values")])
