"""Ensemble runs of the ISSM model (the flowline test glacier under Octave) through fdassim.

A twin experiment reduces the thickness and friction errors; a server killed in a forecast,
the whole run killed in the middle of a cycle and continued with ``--restart``, and a run on
2 ranks end with the store of the uninterrupted serial run, bit for bit (a small run, 4
members over 3 cycles, for those).
"""

import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml
from fdassim import store_layout as sl

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")

PARAMS = {
    "model": {"name": "issm", "options": {"servers": 2}},
    "ensemble": {"size": 4},
    "observations": {"field": "thickness", "every": 4, "std": 5.0},
    "filter": {"scheme": "etkf"},
    "run": {"cycles": 3, "interval": 5.0, "seed": 3, "progress": False},
}
#: the twin experiment: 16 members, thickness observed at every other vertex
TWIN = {**PARAMS, "ensemble": {"size": 16}, "observations": {"field": "thickness", "every": 2, "std": 5.0},
        "inflation": [{"multiplicative": {"lam": 1.1}}]}


def _config(tmp_path, name, params=PARAMS, **options):
    params = {**params, "model": {"name": "issm", "options": {**params["model"]["options"], **options}},
              # a commit every cycle: the restart slots and /restart/cycle then do not depend on how
              # long a cycle took (a restarted server makes one slower), and the stores compare whole
              "output": {"path": str(tmp_path / f"{name}.h5"), "commit_seconds": 0}}
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
    assert sl.ensemble("analysis", "thickness") in keys and set(keys) <= set(b)
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


def test_twin_experiment_reduces_the_errors(octave, tmp_path):
    """16 members; the thickness observed at 21 of 41 vertices (error 5 m) every 5 years.

    The first forecast's thickness error is about 6 m (the prior's 20 m, damped by 5 years
    of flow). With 21 observations of error 5 m over a field correlated over 5 vertices, the
    analysis can reach about 5 / sqrt(2.5) ~ 3 m: after three analyses the thickness error
    must be below the observation error and half the first forecast's, and the friction
    (a parameter, never observed) must be better than the prior's; the spread must not have
    collapsed far below the error."""
    from issm_bridge.cli import main

    cfg, store = _config(tmp_path, "twin", TWIN)
    assert main(["assimilate", str(cfg)]) == 0
    s = _read(store)
    err = lambda f, kind, k: np.sqrt(np.mean((s[sl.mean(kind, f)][k] - s[sl.truth(f)][k]) ** 2))  # noqa: E731
    first, last = err("thickness", "forecast", 0), err("thickness", "analysis", -1)
    assert first > 5.0
    assert last < 5.0 and last < first / 2
    assert err("friction", "analysis", -1) < 0.9 * err("friction", "forecast", 0)
    spread = np.sqrt(np.mean(s[sl.ensemble("analysis", "thickness")][-1].var(axis=1, ddof=1)))
    assert 0.3 < spread / last < 3
    assert s["completed"] == 3


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
    from issm_bridge.cli import main

    assert main(["assimilate", str(cfg), "--restart"]) == 0
    _assert_same_run(reference, store)


@pytest.mark.parallel(nprocs=2)
def test_two_ranks_give_the_serial_result(octave, tmp_path_factory):
    """Under mpiexec -n 2 each rank runs its members on a server of its own; the members,
    truth and observations are the serial run's bit for bit (members are dealt over ranks,
    the analysis is split-invariant); the diagnostics, sums over ranks, to round-off."""
    from mpi4py import MPI

    from fdassim.config import parse
    from fdassim.run import run

    comm = MPI.COMM_WORLD
    base = comm.bcast(str(tmp_path_factory.mktemp("ranks")) if comm.rank == 0 else None)
    params = {**PARAMS, "model": {"name": "issm", "options": {"servers": 1}}}
    # a commit every cycle, as in _config: timed commits would make the restart slots depend on speed
    run(parse({**params, "output": {"path": f"{base}/world.h5", "commit_seconds": 0}}), comm=comm)
    run(parse({**params, "output": {"path": f"{base}/serial-{comm.rank}.h5", "commit_seconds": 0}}),
        comm=MPI.COMM_SELF)
    a, b = _read(f"{base}/world.h5"), _read(f"{base}/serial-{comm.rank}.h5")
    for key in a:
        if key.startswith(("ensemble", "truth", "mean", "observations", "restart")):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        elif key.startswith("diagnostics"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, err_msg=key)
