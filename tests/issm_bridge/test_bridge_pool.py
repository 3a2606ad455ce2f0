"""The pool: tasks dealt over servers, errors kept to their task, dead servers restarted."""

import pytest

from issm_bridge import procs
from issm_bridge.errors import MatlabError, PoolError, ServerDied
from issm_bridge.pool import Pool, Task, positive_seconds

SUICIDE = "system(sprintf('kill -9 %d', fdassim_getpid()))"


def test_tasks_run_on_every_server_in_order(pool):
    calls = [s.calls for s in pool.servers]
    tasks = [Task("pause(0.2)", "slow", 0)] * 2 + [Task(f"{i} * 10", f"task {i}", 1) for i in range(8)]
    results = pool.run(tasks, timeout=30)
    assert results == [None, None] + [10.0 * i for i in range(8)]
    assert all(s.calls > c for s, c in zip(pool.servers, calls))  # both servers worked


def test_a_matlab_error_stays_with_its_task(pool):
    tasks = [Task("1", "member 0", 1), Task("error('flowline:boom', 'bad state')", "member 1", 1),
             Task("3", "member 2", 1), Task("4", "member 3", 1)]
    batch = pool.submit(tasks, timeout=30)
    with pytest.raises(MatlabError, match=r"member 1: MATLAB error \[flowline:boom\]: bad state"):
        batch.results()
    assert [batch.result(i) for i in (0, 2, 3)] == [1.0, 3.0, 4.0]  # the others ran
    assert pool.call("5", timeout=30, nout=1) == 5.0                 # and the servers go on
    assert all(s.alive for s in pool.status())


def test_a_server_that_keeps_dying_fails_its_task_after_the_retries(octave, tmp_path):
    with Pool.start(1, engine=octave, directory=tmp_path) as pool:
        with pytest.raises(ServerDied, match=r"the process ended \(member 9\)"):
            pool.run([Task(SUICIDE, "member 9")], timeout=30, retries=1)
        assert pool.timing()["restarts"] == 1  # restarted once, died again: no more tries
        assert pool.call("2", timeout=30, nout=1) == 2.0


def test_status_tells_dead_servers(octave, tmp_path):
    with Pool.start(2, engine=octave, directory=tmp_path) as pool:
        s0 = pool.servers[0]
        procs.signal_group(s0.pid, 9, s0.started)
        s0.proc.wait(10)
        status = {s.name: s for s in pool.status()}
        assert not status["s0"].alive
        assert status["s1"].alive and status["s1"].processes >= 1
        # a task on the dead server: restarted and run
        assert pool.run([Task("7", "after a death", 1)] * 4, timeout=30) == [7.0] * 4
        assert all(s.alive for s in pool.status())


def test_detached_pool_outlives_its_process_and_is_found_again(octave, tmp_path):
    pool = Pool.start(2, engine=octave, directory=tmp_path, detached=True)
    pool.close()  # releases the servers; they go on
    pids = [s.pid for s in pool.servers]
    assert all(procs.alive(p) for p in pids)
    with pytest.raises(PoolError, match="a pool is already recorded"):
        Pool.start(1, engine=octave, directory=tmp_path, detached=True)
    again = Pool.attach(tmp_path)
    with pytest.raises(PoolError, match="in use by another process"):
        Pool.attach(tmp_path)
    assert again.run([Task("fdassim_getpid()", "pid", 1)] * 2, timeout=30)[0] in pids
    again.stop()
    assert not any(procs.group_members(p) for p in pids)
    with pytest.raises(PoolError, match="no pool in"):
        Pool.attach(tmp_path)


@pytest.mark.parametrize("value", [-1, 0, float("inf"), float("nan"), "x", True])
def test_bad_timeouts_are_refused(value):
    with pytest.raises(ValueError, match="timeout must be"):
        positive_seconds(value, "timeout")


def test_bad_pool_size_is_refused(octave):
    with pytest.raises(PoolError, match="at least 1 server"):
        Pool.start(0, engine=octave)
