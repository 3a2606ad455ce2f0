"""Ensemble runs of the ISSM model (the flowline test glacier under Octave) through fdassim.

A twin experiment reduces the thickness error; a server killed in a forecast, or the whole
run killed in the middle of a cycle and continued with ``--restart``, end with the store of
the uninterrupted run, bit for bit.
"""

import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")

PARAMS = {
    "model": {"name": "issm", "options": {"servers": 2}},
    "ensemble": {"size": 8},
    "observations": {"field": "thickness", "every": 4, "std": 5.0},
    "filter": {"scheme": "etkf"},
    "run": {"cycles": 4, "interval": 5.0, "seed": 3, "progress": False},
}


def _config(tmp_path, name, **options):
    params = {**PARAMS, "model": {"name": "issm", "options": {**PARAMS["model"]["options"], **options}},
              "output": {"path": str(tmp_path / f"{name}.h5")}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path, params["output"]["path"]


def _read(path):
    out = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, obj: out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _assert_same_run(a_path, b_path):
    a, b = _read(a_path), _read(b_path)
    keys = [k for k in a if not k.startswith(("timing", "config", "versions"))]
    assert "ensemble/analysis/thickness" in keys and set(keys) <= set(b)
    for k in keys:
        if a[k].dtype.kind == "f":
            assert np.array_equal(a[k], b[k], equal_nan=True), k
        else:
            assert np.array_equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def reference(octave, tmp_path_factory):
    """The uninterrupted run (in this process, through the `issm-bridge assimilate` command)."""
    from issm_bridge.cli import main

    tmp = tmp_path_factory.mktemp("reference")
    cfg, store = _config(tmp, "reference")
    assert main(["assimilate", str(cfg)]) == 0
    return store


def test_twin_experiment_reduces_the_thickness_error(reference):
    """Eight members, thickness observed at 11 of 41 vertices (error 5 m) every 5 years.

    The prior's thickness error is about 20 m (std of the perturbations); after four
    analyses the ensemble mean must be within a third of the first forecast's error, and
    the spread must not have collapsed far below the error."""
    s = _read(reference)
    truth = s["truth/thickness"]
    err = lambda kind, k: np.sqrt(np.mean((s[f"mean/{kind}/thickness"][k] - truth[k]) ** 2))  # noqa: E731
    first, last = err("forecast", 0), err("analysis", -1)
    assert first > 5.0
    assert last < first / 3
    spread = np.sqrt(np.mean(s["ensemble/analysis/thickness"][-1].var(axis=1, ddof=1)))
    assert 0.2 < spread / last < 5
    assert s["completed"] == 4


def test_a_server_killed_in_a_forecast_changes_nothing(reference, tmp_path, monkeypatch):
    """Member 3's server is killed in the middle of its forecast of the second cycle (round 1)."""
    from issm_bridge.cli import main

    monkeypatch.setenv("ISSM_BRIDGE_FAULT", "kill:3:1")
    cfg, store = _config(tmp_path, "killed-server")
    assert main(["assimilate", str(cfg)]) == 0
    _assert_same_run(reference, store)


def test_a_run_killed_mid_cycle_restarts_to_the_same_result(reference, tmp_path):
    """The whole run killed (SIGKILL) in the middle of the third cycle's forecasts: its servers
    die with it (nothing is left behind), and --restart ends with the uninterrupted run's store."""
    from issm_bridge import procs
    from issm_bridge.exchange import read_mat

    servers = tmp_path / "servers"
    cfg, store = _config(tmp_path, "killed-run", directory=str(servers))
    env = {k: v for k, v in os.environ.items() if k != "ISSM_BRIDGE_FAULT"}
    cmd = [sys.executable, "-m", "issm_bridge.cli", "assimilate", str(cfg)]
    killed = subprocess.run(cmd, env={**env, "FDASSIM_KILL_AT": "forecast:2"}, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -9, killed.stderr
    pids = [int(read_mat(p)["pid"]) for p in servers.glob("servers/*/ready.mat")]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(procs.group_members(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(procs.group_members(p) for p in pids)
    again = subprocess.run(cmd + ["--restart"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    _assert_same_run(reference, store)


def test_two_ranks_give_the_serial_result(reference, tmp_path):
    """Under mpiexec -n 2 each rank runs its members on servers of its own; the store is the
    serial run's, bit for bit (members are dealt over ranks, the analysis is split-invariant)."""
    cfg, store = _config(tmp_path, "two-ranks", servers=1, directory=str(tmp_path / "servers"))
    env = {k: v for k, v in os.environ.items() if k not in ("ISSM_BRIDGE_FAULT", "FDASSIM_KILL_AT")}
    run = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "issm_bridge.cli", "assimilate", str(cfg)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "servers").iterdir()) == ["rank0", "rank1"]
    _assert_same_run(reference, store)
