"""A run killed at any point continues with ``fdassim run --restart`` and ends exactly like an
uninterrupted run: killed in the middle of a forecast and in the middle of a write, serially
and on 2 ranks."""

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")

from helpers import HEAT_POINTS, read_store  # noqa: E402

L96 = {
    "model": {"name": "lorenz96"},
    "ensemble": {"size": 10},
    "observations": {"field": "x", "every": 2, "std": 1.0},
    "filter": {"scheme": "enkf"},
    "inflation": [{"multiplicative": {"lam": 1.04}}],
    "run": {"cycles": 12, "interval": 0.05, "seed": 11, "progress": False},
}
HEAT = {
    "model": {"name": "heat"},
    "ensemble": {"size": 6},
    "observations": {"field": "temperature", "points": HEAT_POINTS.tolist(), "std": 0.1},
    "filter": {"scheme": "enkf"},
    "run": {"cycles": 5, "interval": 0.2, "seed": 11, "progress": False},
}


def _env(**extra):
    # an explicit copy of os.environ: a process that has initialised MPI keeps singleton
    # variables in its C environment, which would break an mpiexec it spawns
    env = dict(os.environ)
    env.pop("FDASSIM_KILL_AT", None)
    env.update(extra)
    return env


def fdassim(params: dict, tmp_path, name: str, *args, ranks: int = 1, kill_at: str | None = None):
    """Run ``fdassim run`` on ``params`` writing ``name``.h5; return the process and the store path."""
    params = dict(params, output={"path": str(tmp_path / f"{name}.h5")})
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(params))
    cmd = [sys.executable, "-m", "fdassim.cli", "run", str(cfg), *args]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    env = _env(FDASSIM_KILL_AT=kill_at) if kill_at else _env()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return proc, params["output"]["path"]


def assert_same_run(path_a, path_b):
    a, b = read_store(path_a), read_store(path_b)
    keys = [k for k in a if not k.startswith("timing")]
    assert keys and set(keys) <= set(b)
    for key in keys:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("params, kill_at, ranks", [
    pytest.param(L96, "forecast:5", 1, id="l96-forecast"),
    pytest.param(L96, "write:7", 1, id="l96-write"),
    pytest.param(HEAT, "forecast:2", 1, id="heat-forecast"),
    pytest.param(HEAT, "write:3", 2, id="heat-write-2ranks"),
])
def test_restart_after_kill_reproduces_uninterrupted_run(tmp_path, params, kill_at, ranks):
    ref, ref_path = fdassim(params, tmp_path, "ref", ranks=ranks)
    assert ref.returncode == 0, ref.stderr
    killed, path = fdassim(params, tmp_path, "killed", ranks=ranks, kill_at=kill_at)
    assert killed.returncode != 0, "the fault did not fire"
    import h5py

    with h5py.File(path, "r") as h5:  # the store survived the kill, committed up to the cycle before
        assert int(h5["completed"][()]) == int(kill_at.split(":")[1])
    again, _ = fdassim(params, tmp_path, "killed", "--restart", ranks=ranks)
    assert again.returncode == 0, again.stderr
    assert_same_run(ref_path, path)
    # the printed summary covers the whole run, cycles before the kill included
    summary = [line for line in ref.stdout.splitlines() if "time-averaged" in line]
    assert summary and summary == [line for line in again.stdout.splitlines() if "time-averaged" in line]


def test_restart_without_store_starts_from_the_beginning(tmp_path):
    proc, path = fdassim(L96, tmp_path, "fresh", "--restart")
    assert proc.returncode == 0, proc.stderr
    assert "starting from the beginning" in proc.stderr
    assert read_store(path)["diagnostics/rmse_analysis"].shape == (12,)


def test_restart_refuses_a_store_of_another_ensemble(tmp_path):
    ok, _ = fdassim(L96, tmp_path, "a")
    assert ok.returncode == 0, ok.stderr
    other = dict(L96, ensemble={"size": 12})
    proc, _ = fdassim(other, tmp_path, "a", "--restart")
    assert proc.returncode == 2
    assert "its n_members is 10, this run has 12" in proc.stderr


def test_run_refuses_to_overwrite_a_store(tmp_path):
    ok, path = fdassim(L96, tmp_path, "done")
    assert ok.returncode == 0, ok.stderr
    before = read_store(path)["ensemble/analysis/x"]
    again, _ = fdassim(L96, tmp_path, "done")
    assert again.returncode == 2
    assert "exists: continue that run with --restart, start it again with --overwrite" in again.stderr
    np.testing.assert_array_equal(read_store(path)["ensemble/analysis/x"], before)  # nothing lost
    forced, _ = fdassim(L96, tmp_path, "done", "--overwrite")
    assert forced.returncode == 0, forced.stderr


def test_run_with_bad_params_fails_before_any_work(tmp_path):
    bad = dict(L96, ensemble={"size": -3})
    proc, path = fdassim(bad, tmp_path, "bad")
    assert proc.returncode == 2
    assert "ensemble.size: must be at least 2, got -3" in proc.stderr
    assert not os.path.exists(path)


def test_run_from_observation_file_reproduces_the_twin(tmp_path):
    """Observations read from a file (no truth) give the twin run's analysis exactly when the
    file holds the twin's observations: the truth only ever enters through y."""
    ok, twin_path = fdassim(L96, tmp_path, "twin")
    assert ok.returncode == 0, ok.stderr
    twin = read_store(twin_path)
    np.savez(tmp_path / "obs.npz", y=twin["observations/y"])
    real = dict(L96, run=dict(L96["run"], twin=False),
                observations=dict(L96["observations"], file=str(tmp_path / "obs.npz")))
    proc, path = fdassim(real, tmp_path, "real")
    assert proc.returncode == 0, proc.stderr
    d = read_store(path)
    assert "truth/x" not in d and np.all(np.isnan(d["diagnostics/rmse_analysis"]))
    np.testing.assert_array_equal(d["ensemble/analysis/x"], twin["ensemble/analysis/x"])
    np.testing.assert_array_equal(d["observations/y"], twin["observations/y"])
