"""Nothing is left behind: stop, Ctrl-C, SIGTERM, a normal exit and a killed Python.

Each test runs a Python process that starts a pool of two Octave servers and prints their
pids (each its process group's id), ends it one way, and lists the process groups.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from issm_bridge import procs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from issm_bridge.pool import Pool, Task
pool = Pool.start(2, engine="octave", directory={directory!r})
print(" ".join(str(s.pid) for s in pool.servers), flush=True)
sys.stdin.readline()                  # go on once the test has seen the servers running
if {mode!r} == "exit":
    sys.exit(0)                       # no close(): atexit stops the servers
if {mode!r} == "idle":
    import time; time.sleep(600)      # killed while the servers wait for requests
pool.run([Task("system('sleep 300 &'); pause(600)", "a long forecast", 0)] * 2, timeout=900)
"""


@pytest.fixture
def spawn(tmp_path, octave):
    """Start the script in a mode; whatever a failing test leaves running is killed after it."""
    started = []

    def run(mode):
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT), directory=str(tmp_path),
                                                                     mode=mode)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        pids = [int(p) for p in proc.stdout.readline().split()]
        started.append((proc, pids))
        # the script waits for a line before it goes on, so that a fast exit cannot stop the
        # servers before they are seen running (this raced under load)
        assert len(pids) == 2 and all(procs.group_members(p) for p in pids)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        return proc, pids

    yield run
    for proc, pids in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for p in pids:
            procs.stop_group(p)


def _gone(pids, within=15.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(procs.group_members(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _busy(pids, within=15.0):
    """Wait until both servers run the long command (its `sleep 300` child is in their groups)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        groups = [[procs.command(q) for q in procs.group_members(p)] for p in pids]
        if all(any(c.startswith("sleep 300") for c in g) for g in groups):
            return
        time.sleep(0.05)
    raise AssertionError("the servers never started the long command")


def test_exit_without_close_stops_the_servers(spawn):
    proc, pids = spawn("exit")
    assert proc.wait(60) == 0
    assert _gone(pids, within=5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signal_during_a_forecast_stops_the_servers(spawn, sig):
    proc, pids = spawn("busy")
    _busy(pids)
    proc.send_signal(sig)
    assert proc.wait(60) != 0
    assert _gone(pids, within=5)  # the servers, their commands and what those started


@pytest.mark.parametrize("mode", ["idle", "busy"])
def test_killed_python_leaves_nothing(spawn, mode):
    """SIGKILL runs no Python code: each server's watcher sees its owner gone and kills its group."""
    proc, pids = spawn(mode)
    if mode == "busy":
        _busy(pids)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert _gone(pids, within=10)
