"""The ``issm-bridge`` command: help, refused values, a pool's start/status/stop, one member's run."""

import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from issm_bridge import procs
from issm_bridge.cli import build_parser, main
from issm_bridge.exchange import read_member
from issm_bridge.pool import read_state

COMMANDS = ["check", "start", "status", "stop", "run", "assimilate"]
PARAMS = {"model": {"name": "issm", "options": {"servers": 2}},
          "ensemble": {"size": 4},
          "observations": {"field": "thickness", "every": 4, "std": 5.0},
          "filter": {"scheme": "etkf"},
          "run": {"cycles": 2, "interval": 5.0, "seed": 3, "progress": False}}


def bridge(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "issm_bridge.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: issm-bridge {command}" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [
    (["run", "p.yaml", "--timeout", "-1"], "argument --timeout: must be a positive, finite number of seconds, got '-1'"),
    (["check", "--timeout", "-1"], "argument --timeout: must be a positive, finite number of seconds, got '-1'"),
    (["assimilate", "p.yaml", "--timeout", "inf"], "must be a positive, finite number of seconds, got 'inf'"),
    (["start", "--servers", "0"], "argument --servers: must be at least 1, got '0'"),
    (["start", "--startup-timeout", "soon"], "expected a number of seconds, got 'soon'"),
    (["run", "p.yaml", "--member", "-2"], "argument --member: must be at least 0, got '-2'"),
    (["start", "--engine", "excel"], "argument --engine: invalid choice: 'excel'"),
])
def test_bad_values_are_refused(args, match, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(args)
    assert exit_.value.code == 2
    assert match in capsys.readouterr().err


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["status", "--dir", str(tmp_path)]) == 2
    assert "issm-bridge: error: no pool in" in capsys.readouterr().err
    cfg = tmp_path / "p.yaml"
    cfg.write_text(yaml.safe_dump({**PARAMS, "model": {"name": "lorenz96"}}))
    assert main(["run", str(cfg)]) == 2
    assert "model.name must be issm for issm-bridge (got 'lorenz96')" in capsys.readouterr().err


def test_start_status_run_stop(octave, tmp_path, capsys):
    """`start` in a process of its own (its servers outlive it); the other commands here."""
    pool_dir = tmp_path / "pool"
    started = bridge("start", "--dir", pool_dir, "--servers", 2, "--engine", "octave")
    assert started.returncode == 0, started.stderr
    assert "2 octave server(s) started" in started.stdout
    pids = [s["pid"] for s in read_state(pool_dir)["servers"]]
    try:
        _use_and_stop(pool_dir, pids, tmp_path, capsys)
    finally:  # a failing test leaves no detached server behind
        for p in pids:
            procs.stop_group(p)


def _use_and_stop(pool_dir, pids, tmp_path, capsys):
    assert all(procs.alive(p) for p in pids)  # they outlived the command

    assert main(["status", "--dir", str(pool_dir)]) == 0
    assert capsys.readouterr().out.count("alive") == 2

    cfg = tmp_path / "p.yaml"
    cfg.write_text(yaml.safe_dump(PARAMS))
    out = tmp_path / "member3.mat"
    assert main(["run", str(cfg), "--pool", str(pool_dir), "--member", "3", "--output", str(out)]) == 0
    assert "member 3 from t = 0 to 5" in capsys.readouterr().out
    member = read_member(out, cycle=0, member=3)
    assert (member.t0, member.t1) == (0.0, 5.0) and np.all(np.isfinite(member.fields["thickness"]))
    # continue the member from its file
    assert main(["run", str(cfg), "--pool", str(pool_dir), "--member", "3", "--input", str(out),
                 "--output", str(tmp_path / "m2.mat"), "--t0", "5", "--t1", "10"]) == 0
    later = read_member(tmp_path / "m2.mat", cycle=0, member=3)
    assert not np.array_equal(later.fields["thickness"], member.fields["thickness"])

    procs.signal_group(pids[1], 9)  # a server dies: status says so
    deadline = time.monotonic() + 30  # SIGKILL is delivered asynchronously: wait until it is gone
    while procs.group_members(pids[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs.group_members(pids[1])
    assert main(["status", "--dir", str(pool_dir)]) == 1
    out = capsys.readouterr()
    assert "s1: pid" in out.out and "DEAD" in out.out and "1 server(s) dead" in out.err

    assert main(["stop", "--dir", str(pool_dir)]) == 0
    assert not any(procs.group_members(p) for p in pids)
    assert not (pool_dir / "pool.json").exists()
