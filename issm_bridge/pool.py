"""A pool of servers: requests dealt over them, failed servers restarted, requests re-run.

Members go over servers, ISSM's ranks within each: a pool of ``S`` servers runs ``S``
member forecasts at a time, each ISSM run using its own ``K`` ranks (``md.cluster.np``).
:meth:`Pool.run` hands tasks to whichever server is free. When a server dies or hangs
past the timeout during a task, it is stopped, started again, and the task runs again
(up to ``retries`` times); a task is deterministic given its input files, so the result
is the one a fault-free run gives. An error inside MATLAB is not retried: it is raised,
with MATLAB's message and the task's label, once the other tasks have finished.

A pool started with ``detached=True`` (``issm-bridge start``) outlives its process and
is described by a state file, ``<directory>/pool.json``: the servers' pids (each the id
of its process group), their start times, directories and engine. :meth:`Pool.attach`
finds it again from another process; :meth:`Pool.status` tells live from dead servers.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import procs
from .engine import Engine, EngineKind, require_engine
from .errors import BridgeError, MatlabError, PoolError, ServerDied, ServerTimeout
from .server import Server, ServerRecord

__all__ = ["Pool", "Task", "Batch", "ServerStatus", "STATE_FILE", "positive_seconds"]

log = logging.getLogger("issm_bridge.pool")

#: name of a detached pool's state file inside its directory
STATE_FILE = "pool.json"


def positive_seconds(value, what: str) -> float:
    """``value`` as a finite positive number of seconds, or ``ValueError`` naming ``what``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not (v > 0 and v != float("inf")):
        raise ValueError(f"{what} must be a positive, finite number of seconds, got {value!r}")
    return v


@dataclass(frozen=True)
class Task:
    """One request for the pool: a line of MATLAB code and what it is for (for messages)."""

    code: str
    label: str
    nout: int = 0


@dataclass(frozen=True)
class ServerStatus:
    """What :meth:`Pool.status` reports of one server."""

    name: str
    pid: int
    alive: bool
    processes: int  #: live processes in its group (the server and what it started)


class Pool:
    """Servers that run tasks in parallel (see the module docstring); use :meth:`start` or :meth:`attach`."""

    def __init__(self, servers: list[Server], directory: Path, *, detached: bool, owner: bool,
                 startup_timeout: float = 120.0):
        self.servers = servers
        self.directory = Path(directory)
        self.detached = detached
        self.owner = owner  # this process started the pool and stops it on close
        self.startup_timeout = startup_timeout
        self.closed = False
        #: a temporary directory this pool made, removed when it stops
        self.temporary = False
        self._closing = threading.Event()

    # -- making and finding pools --------------------------------------------------------------
    @classmethod
    def start(cls, size: int, *, engine: Engine | EngineKind | str | None = None,
              directory: str | os.PathLike | None = None, paths=(), startup=(), detached: bool = False,
              startup_timeout: float = 120.0) -> Pool:
        """Start ``size`` servers (in parallel) and wait until each is ready.

        Parameters
        ----------
        size
            Number of servers (at least 1).
        engine
            An :class:`~issm_bridge.engine.Engine`, a kind (``"matlab"``, ``"octave"``) or
            ``None`` (MATLAB if on PATH, else Octave).
        directory
            The pool's directory (servers' files, exchange files, state file); default a new
            temporary directory.
        paths, startup
            Directories added to the MATLAB path and statements run before each loop.
        detached
            Servers outlive this process; a state file records them.
        startup_timeout
            Seconds each server may take to start.

        Raises
        ------
        PoolError
            If ``size < 1`` or a detached pool already runs in ``directory``.
        ServerError
            If a server does not start (the others are stopped).
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise PoolError(f"a pool needs at least 1 server, got {size!r}")
        startup_timeout = positive_seconds(startup_timeout, "startup_timeout")
        if not isinstance(engine, Engine):
            engine = require_engine(engine)
        temporary = directory is None
        directory = Path(tempfile.mkdtemp(prefix="issm-bridge-")) if temporary else Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if detached and (directory / STATE_FILE).exists():
            raise PoolError(f"a pool is already recorded in {directory / STATE_FILE}: "
                            f"`issm-bridge stop --dir {directory}` first")
        servers = [Server(f"s{i}", directory / "servers" / f"s{i}", engine, paths=paths, startup=startup,
                          detached=detached) for i in range(size)]
        pool = cls(servers, directory, detached=detached, owner=True, startup_timeout=startup_timeout)
        pool.temporary = temporary and not detached
        errors = _parallel([lambda s=s: s.start(startup_timeout) for s in servers])
        if any(errors):
            pool.stop()
            raise next(e for e in errors if e is not None)
        if detached:
            pool.write_state(paths, startup)
        log.info("pool of %d %s server(s) in %s", size, engine.kind.value, directory)
        return pool

    @classmethod
    def attach(cls, directory: str | os.PathLike) -> Pool:
        """The detached pool recorded in ``directory`` (claims its servers for this process).

        Raises
        ------
        PoolError
            If there is no state file, it is unreadable, or a server is in use elsewhere.
        """
        state = read_state(directory)
        servers = []
        try:
            for rec in state["servers"]:
                servers.append(Server.attach(ServerRecord(**rec), paths=state["paths"], startup=state["startup"]))
        except BaseException:
            for s in servers:
                s.release()
            raise
        return cls(servers, Path(directory), detached=True, owner=False,
                   startup_timeout=state.get("startup_timeout", 120.0))

    def write_state(self, paths=(), startup=()) -> None:
        """Record the servers in ``<directory>/pool.json`` (written atomically)."""
        state = {"format": 1, "directory": str(self.directory), "created": time.time(),
                 "paths": [str(p) for p in paths], "startup": list(startup),
                 "startup_timeout": self.startup_timeout,
                 "servers": [asdict(s.record()) for s in self.servers]}
        tmp = self.directory / f".{STATE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.directory / STATE_FILE)

    # -- running tasks -------------------------------------------------------------------------
    def submit(self, tasks: list[Task], *, timeout: float, retries: int = 2) -> Batch:
        """Start running ``tasks`` over the servers; return at once with their :class:`Batch`.

        Parameters
        ----------
        tasks
            What to run.
        timeout
            Seconds one task may take; past them its server is stopped and restarted.
        retries
            How many times a task whose server died or hung is run again.
        """
        timeout = positive_seconds(timeout, "timeout")
        if self.closed:
            raise PoolError(f"the pool in {self.directory} is closed")
        batch = Batch(tasks)
        todo: queue.Queue[int] = queue.Queue()
        for i in range(len(tasks)):
            todo.put(i)

        def work(server: Server):
            while not self._closing.is_set():
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                task = tasks[i]
                batch.attempts[i] += 1
                try:
                    batch.finish(i, server.call(task.code, timeout=timeout, nout=task.nout, context=task.label))
                except MatlabError as exc:
                    batch.finish(i, error=exc)
                except (ServerDied, ServerTimeout) as exc:
                    if self._closing.is_set() or server.retired or batch.attempts[i] > retries:
                        batch.finish(i, error=exc)
                        continue
                    log.warning("%s; restarting %s and running %s again (attempt %d of %d)",
                                exc, server.name, task.label, batch.attempts[i] + 1, retries + 1)
                    try:
                        self._restart(server)
                    except BridgeError as again:
                        batch.finish(i, error=again)
                        return
                    todo.put(i)
            # the pool is closing: what is left will not run
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                batch.finish(i, error=PoolError(f"the pool was stopped before {tasks[i].label} ran"))

        batch.threads = [threading.Thread(target=work, args=(s,), name=f"issm-bridge-pool-{s.name}", daemon=True)
                         for s in self.servers]
        for t in batch.threads:
            t.start()
        return batch

    def run(self, tasks: list[Task], *, timeout: float, retries: int = 2) -> list:
        """Run ``tasks`` over the servers and return their results in order (see :meth:`submit`).

        Raises
        ------
        MatlabError
            The first failing task's error (by task order), after every other task ran.
        ServerError
            If a task's server failed more than ``retries`` times, or could not restart.
        """
        return self.submit(tasks, timeout=timeout, retries=retries).results()

    def call(self, code: str, *, timeout: float, nout: int = 0, label: str = "request"):
        """Run one task on the first free server (see :meth:`run`)."""
        return self.run([Task(code, label, nout)], timeout=timeout)[0]

    def _restart(self, server: Server) -> None:
        server.restart(self.startup_timeout)
        if self.detached:
            self.write_state(server.paths, server.startup)

    # -- state -------------------------------------------------------------------------------
    def status(self) -> list[ServerStatus]:
        """Each server: its pid, whether it lives, how many processes its group holds."""
        return [ServerStatus(s.name, int(s.pid or 0), s.is_alive(), len(procs.group_members(s.pid)) if s.pid else 0)
                for s in self.servers]

    def timing(self) -> dict[str, float]:
        """Requests answered, seconds spent inside MATLAB and restarts, over all servers."""
        return {"requests": sum(s.calls for s in self.servers),
                "matlab_seconds": sum(s.matlab_seconds for s in self.servers),
                "restarts": sum(s.restarts for s in self.servers)}

    # -- the end -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every server (and all it started) and forget the state file."""
        self._closing.set()
        _parallel([s.stop for s in self.servers])
        for s in self.servers:
            s.release()
        if self.detached:
            (self.directory / STATE_FILE).unlink(missing_ok=True)
        if self.temporary:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.closed = True

    def close(self) -> None:
        """Stop the servers if this process started them; otherwise release them."""
        if self.closed:
            return
        if self.owner and not self.detached:
            self.stop()
        else:
            for s in self.servers:
                s.release()
            self.closed = True

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.servers)


class Batch:
    """Tasks submitted to a pool: wait for one (:meth:`result`) or all (:meth:`results`)."""

    def __init__(self, tasks: list[Task]):
        self.tasks = tasks
        self.attempts = [0] * len(tasks)
        self.threads: list[threading.Thread] = []
        self._values: list = [None] * len(tasks)
        self._errors: list[BaseException | None] = [None] * len(tasks)
        self._done = [threading.Event() for _ in tasks]
        self._lock = threading.Lock()

    def finish(self, i: int, value=None, error: BaseException | None = None) -> None:
        """Record task ``i``'s result or error (called by the pool's workers)."""
        with self._lock:
            self._values[i], self._errors[i] = value, error
            self._done[i].set()

    def done(self, i: int) -> bool:
        """Whether task ``i`` has finished (with a result or an error)."""
        return self._done[i].is_set()

    def result(self, i: int):
        """Wait for task ``i``; return its result or raise its error."""
        self._wait(i)
        if self._errors[i] is not None:
            raise self._errors[i]
        return self._values[i]

    def results(self) -> list:
        """Wait for every task; return the results in order, or raise the first error by task order."""
        for i in range(len(self.tasks)):
            self._wait(i)
        for err in self._errors:
            if err is not None:
                raise err
        return list(self._values)

    def _wait(self, i: int) -> None:
        while not self._done[i].wait(0.1):  # short waits keep Ctrl-C responsive
            if not any(t.is_alive() for t in self.threads) and not self._done[i].is_set():
                raise PoolError(f"no server left to run {self.tasks[i].label}")


def read_state(directory: str | os.PathLike) -> dict:
    """The state file of the pool in ``directory``.

    Raises
    ------
    PoolError
        If it is missing or unreadable.
    """
    path = Path(directory) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise PoolError(f"no pool in {directory}: no {STATE_FILE} (start one with `issm-bridge start --dir "
                        f"{directory}`)") from None
    except (OSError, ValueError) as exc:
        raise PoolError(f"cannot read {path}: {exc}") from None
    if state.get("format") != 1 or not isinstance(state.get("servers"), list):
        raise PoolError(f"{path} is not an issm-bridge pool state file of format 1")
    return state


def _parallel(calls) -> list[BaseException | None]:
    """Run the callables in threads; return each one's exception (or ``None``)."""
    errors: list[BaseException | None] = [None] * len(calls)

    def run(i, f):
        try:
            f()
        except BaseException as exc:  # collected and raised by the caller
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i, f), daemon=True) for i, f in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.1)
    return errors
