"""One server: requests and replies, MATLAB errors, dead and hung servers, process groups."""

import logging
import time

import numpy as np
import pytest

from issm_bridge import procs
from issm_bridge.errors import MatlabError, PoolError, ServerDied, ServerTimeout
from issm_bridge.server import Server


@pytest.fixture
def server(octave, tmp_path):
    """A server of the test's own (the tests kill it)."""
    s = Server("t0", tmp_path / "t0", octave).start(60)
    yield s
    s.stop()
    assert procs.group_members(s.pid) == []


def test_calls_return_values(pool):
    s = pool.servers[0]
    assert s.call("6 * 7", timeout=30, nout=1) == 42.0
    got = s.call("struct('a', [1; 2; 3], 'b', 'text')", timeout=30, nout=1)
    assert np.array_equal(got["a"], [1, 2, 3]) and got["b"] == "text"
    assert s.call("x = 1;", timeout=30) is None
    assert s.calls >= 3 and s.matlab_seconds >= 0


def test_console_output_goes_to_logging(pool, caplog):
    s = pool.servers[1]
    with caplog.at_level(logging.INFO, logger="issm_bridge.server"):
        s.call("disp('hello from the server')", timeout=30)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("hello from the server" in r.message for r in caplog.records):
            time.sleep(0.02)
    hits = [r for r in caplog.records if "hello from the server" in r.message]
    assert hits and hits[0].name == "issm_bridge.server.s1" and hits[0].levelno == logging.INFO


def test_malformed_command_is_an_error_and_the_server_goes_on(pool):
    s = pool.servers[0]
    with pytest.raises(MatlabError, match=r"server s0: member 7, cycle 2: MATLAB error.*parse error") as err:
        s.call("x = (1 + ", timeout=30, context="member 7, cycle 2")
    assert err.value.server == "s0"
    assert s.call("1 + 1", timeout=30, nout=1) == 2.0


def test_model_error_carries_message_identifier_and_stack(pool, tmp_path):
    s = pool.servers[0]
    with pytest.raises(MatlabError, match="member 4, cycle 0: no file") as err:
        s.call(f"fdassim_read_member('{tmp_path}/missing.mat', 0, 4)", timeout=30)
    assert err.value.identifier == "issm_bridge:missing"
    assert "fdassim_read_member" in err.value.stack and "fdassim_server" not in err.value.stack
    with pytest.raises(MatlabError, match=r"\[my:id\]: boom 3"):
        s.call("error('my:id', 'boom %d', 3)", timeout=30)


def test_dead_server_is_detected(server):
    procs.signal_group(server.pid, 9, server.started)
    deadline = time.monotonic() + 5
    while server.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.is_alive()
    with pytest.raises(ServerDied, match="server t0: not running"):
        server.call("1", timeout=10)
    assert not server.is_alive()


def test_death_during_a_request_is_detected(server):
    with pytest.raises(ServerDied, match=r"server t0: the process ended \(member 2\)"):
        server.call("system(sprintf('kill -9 %d', fdassim_getpid()))", timeout=30, context="member 2")
    server.restart(60)
    assert server.call("2", timeout=10, nout=1) == 2.0 and server.restarts == 1


def test_hung_server_is_stopped_after_its_timeout(server):
    tic = time.monotonic()
    with pytest.raises(ServerTimeout, match=r"no answer within 1 s \(member 5\); stopped"):
        server.call("pause(60)", timeout=1.0, context="member 5")
    assert time.monotonic() - tic < 10
    assert procs.group_members(server.pid) == []


def test_stop_stops_what_the_server_started(server):
    """A child the server started (as ISSM's mpiexec would be) is in its group and stops with it."""
    server.call("system('sleep 300 &');", timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the background shell may not have exec'd sleep yet
        members = procs.group_members(server.pid)
        commands = [procs.command(p) for p in members]
        if any(c.startswith("sleep 300") for c in commands):
            break
        time.sleep(0.02)
    assert server.pid in members and any(c.startswith("sleep 300") for c in commands)
    server.stop()
    assert procs.group_members(server.pid) == []


def test_one_client_per_server(server, octave):
    from issm_bridge.server import ServerRecord

    with pytest.raises(PoolError, match="server t0 .* is in use by another process"):
        Server.attach(ServerRecord("t0", str(server.directory), server.pid, server.started, "octave", octave.path))


def test_startup_failure_names_the_output(octave, tmp_path):
    s = Server("bad", tmp_path / "bad", octave, startup=("error('no ISSM here')",))
    with pytest.raises(ServerDied, match="(?s)exited while starting.*no ISSM here"):
        s.start(60)
