"""One persistent MATLAB or GNU Octave process answering requests through files.

A :class:`Server` starts ``matlab -nodisplay -nosplash`` or ``octave --no-gui`` in a
session (and process group) of its own, running the command loop
``issm_bridge/matlab/fdassim_server.m`` in its directory. A request is a MAT file
``request.mat`` (an id and a line of MATLAB code); the loop evaluates the code inside
try/catch and answers with ``reply.mat`` (the id, ``ok``, MATLAB's message, identifier
and stack, the time spent, an optional result). Python waits for the reply with the same
id while checking that the process lives and that the timeout has not passed: a dead
server raises :class:`~issm_bridge.errors.ServerDied`, a hung one is stopped and raises
:class:`~issm_bridge.errors.ServerTimeout`, an error inside MATLAB raises
:class:`~issm_bridge.errors.MatlabError` and the server goes on.

Console output is read by threads and forwarded to :mod:`logging` under
``issm_bridge.server.<name>`` (standard output at INFO, standard error at WARNING). A
detached server (one that outlives the Python process that started it, for the
``issm-bridge start`` command) writes its output to ``<directory>/console.log`` instead.
"""

from __future__ import annotations

import collections
import fcntl
import itertools
import logging
import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .engine import Engine, EngineKind
from .errors import ExchangeError, MatlabError, PoolError, ServerDied, ServerTimeout
from .exchange import read_mat, write_mat

__all__ = ["Server", "ServerRecord", "MATLAB_DIR", "matlab_string"]

#: the MATLAB-language files of the bridge (the command loop and the member commands)
MATLAB_DIR = Path(__file__).resolve().parent / "matlab"
_STOP = "__stop__"


def matlab_string(text: str) -> str:
    """``text`` as a MATLAB string literal (single quotes doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


@dataclass(frozen=True)
class ServerRecord:
    """What a pool's state file keeps of a server, to find it from another process."""

    name: str
    directory: str
    pid: int
    started: int
    engine: str
    engine_path: str


class Server:
    """A persistent MATLAB/Octave process (see the module docstring).

    Parameters
    ----------
    name
        Its name in logs and errors (``s0``, ``s1``...).
    directory
        Where its request, reply and ready files live (created).
    engine
        The MATLAB or Octave executable.
    paths
        Extra directories put on the MATLAB path before the loop starts.
    startup
        MATLAB statements run before the loop (e.g. ``fdassim_issm_path``).
    detached
        Outlive this Python process (output to ``console.log``); otherwise the server exits
        by itself when this process is gone.
    """

    def __init__(self, name: str, directory: str | os.PathLike, engine: Engine, *, paths=(), startup=(),
                 detached: bool = False):
        self.name = name
        self.directory = Path(directory)
        self.engine = engine
        self.paths = tuple(str(p) for p in paths)
        self.startup = tuple(startup)
        self.detached = detached
        self.pid: int | None = None
        self.started: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log = logging.getLogger(f"issm_bridge.server.{name}")
        self.recent: collections.deque[str] = collections.deque(maxlen=40)
        self.calls = 0
        self.matlab_seconds = 0.0
        self.restarts = 0
        #: stopped for good (by stop(), or at exit): never restarted
        self.retired = False
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._lock = threading.Lock()
        self._lockfile = None
        self._readers: list[threading.Thread] = []

    # -- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> Server:
        """Start the process and wait until its loop is ready.

        Raises
        ------
        ServerDied
            If it exits while starting (the message holds its last output lines).
        ServerTimeout
            If it is not ready within ``timeout`` seconds (it is then stopped).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._claim()
        for stale in ("request.mat", "reply.mat", "ready.mat"):
            (self.directory / stale).unlink(missing_ok=True)
        owner = 0 if self.detached else os.getpid()
        code = "; ".join([f"addpath({matlab_string(MATLAB_DIR)})",
                          *(f"addpath({matlab_string(p)})" for p in self.paths), *self.startup,
                          f"fdassim_server({matlab_string(self.directory)}, {matlab_string(self.name)}, {owner})"])
        argv = self.engine.command(code)
        if self.detached:
            with open(self.directory / "console.log", "ab") as out:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                             cwd=self.directory, start_new_session=True)
        else:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, cwd=self.directory, start_new_session=True)
            self._readers = [self._reader(self.proc.stdout, logging.INFO),
                             self._reader(self.proc.stderr, logging.WARNING)]
        self.pid = self.proc.pid
        self.started = procs.start_time(self.pid)
        _register(self)
        deadline = time.monotonic() + timeout
        ready = self.directory / "ready.mat"
        while not ready.exists():
            if not self.is_alive():
                self._reap()
                raise ServerDied(self.name, f"{self.engine.kind.value} exited while starting{self._tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerTimeout(self.name, f"not ready within {timeout} s; stopped{self._tail()}")
            time.sleep(0.01)
        self.log.debug("ready: pid %d", self.pid)
        return self

    @classmethod
    def attach(cls, record: ServerRecord, *, paths=(), startup=()) -> Server:
        """A handle on a detached server started by another process (claims its directory)."""
        server = cls(record.name, record.directory, Engine(EngineKind(record.engine), record.engine_path),
                     paths=paths, startup=startup, detached=True)
        server.pid, server.started = record.pid, record.started
        server._claim()
        return server

    def record(self) -> ServerRecord:
        """What a state file keeps of this server."""
        return ServerRecord(self.name, str(self.directory), int(self.pid or 0), int(self.started or 0),
                            self.engine.kind.value, self.engine.path)

    def is_alive(self) -> bool:
        """True while the server's process runs (a dead or zombie process is not alive)."""
        if self.proc is not None and self.proc.poll() is not None:
            return False
        return self.pid is not None and procs.alive(self.pid, self.started)

    def stop(self, grace: float = 5.0) -> None:
        """Ask the loop to end, then stop whatever is left of the process group (for good)."""
        self.retired = True
        if self.pid is None:
            return
        if self.is_alive():
            try:
                self.call(_STOP, timeout=grace)
            except (ServerDied, ServerTimeout, ExchangeError):
                pass
            deadline = time.monotonic() + grace
            while self.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
        self.kill()

    def kill(self) -> None:
        """Stop the server's whole process group at once (SIGTERM, then SIGKILL)."""
        if self.pid is not None:
            procs.stop_group(self.pid, self.started, grace=2.0)
            self._reap()

    def restart(self, timeout: float = 120.0) -> None:
        """Stop what is left of the server and start a new process in the same directory.

        Raises
        ------
        ServerDied
            If the server was stopped for good (the pool is closing, or Python is exiting).
        """
        if self.retired:
            raise ServerDied(self.name, "stopped for good; not restarted")
        self.kill()
        self.restarts += 1
        self.log.warning("restarting (restart %d)", self.restarts)
        self.start(timeout)

    def release(self) -> None:
        """Give up the claim on the directory (the process, if detached, goes on)."""
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    # -- requests ----------------------------------------------------------------------------
    def call(self, code: str, *, timeout: float, nout: int = 0, context: str = ""):
        """Run one line of MATLAB code in the server; return its result (``nout=1``) or ``None``.

        Parameters
        ----------
        code
            MATLAB statements (``nout=0``) or an expression (``nout=1``).
        timeout
            Seconds to wait for the reply; past them the server is stopped.
        context
            What the request is for (``member 3, cycle 5``), for error messages.

        Raises
        ------
        MatlabError
            If the code raised an error (a syntax error included); the server goes on.
        ServerDied, ServerTimeout
            If the process ended, or did not answer in time (it is then stopped).
        """
        with self._lock:
            token = f"{self._prefix}-{next(self._ids)}"
            reply_path = self.directory / "reply.mat"
            reply_path.unlink(missing_ok=True)
            where = f" ({context})" if context else ""
            if not self.is_alive():
                raise ServerDied(self.name, f"not running{where}{self._tail()}")
            t0 = time.monotonic()
            write_mat(self.directory / "request.mat", {"id": token, "code": code, "nout": float(nout)})
            pause = 0.0005
            while True:
                if reply_path.exists():
                    reply = read_mat(reply_path)
                    reply_path.unlink(missing_ok=True)
                    if reply.get("id") == token:
                        break
                    self.log.warning("discarded a reply to another request (%r)", reply.get("id"))
                if not self.is_alive():
                    self._reap()
                    raise ServerDied(self.name, f"the process ended{where}{self._tail()}")
                if time.monotonic() - t0 > timeout:
                    self.kill()
                    raise ServerTimeout(self.name, f"no answer within {timeout:g} s{where}; stopped")
                time.sleep(pause)
                pause = min(2 * pause, 0.01)
            self.calls += 1
            self.matlab_seconds += float(reply.get("elapsed", 0.0))
        if not reply.get("ok"):
            raise MatlabError(self.name, _text(reply.get("message")), _text(reply.get("identifier")),
                              _text(reply.get("stack")), context)
        return reply.get("result") if nout else None

    # -- internals ---------------------------------------------------------------------------
    def _claim(self) -> None:
        """Hold an exclusive lock on the directory: one client per server at a time."""
        if self._lockfile is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        f = open(self.directory / "client.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise PoolError(f"server {self.name} ({self.directory}) is in use by another process; "
                            "wait for it to finish or start another pool") from None
        self._lockfile = f

    def _reader(self, stream, level: int) -> threading.Thread:
        def forward():
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip()
                if line:
                    self.recent.append(line)
                    self.log.log(level, "%s", line)
            stream.close()

        t = threading.Thread(target=forward, name=f"issm-bridge-{self.name}-reader", daemon=True)
        t.start()
        return t

    def _tail(self, n: int = 12) -> str:
        lines = list(self.recent)
        if self.detached:
            try:
                lines = (self.directory / "console.log").read_text(errors="replace").splitlines()
            except OSError:
                lines = []
        lines = [x for x in lines if x.strip()][-n:]
        return ("; last output:\n  " + "\n  ".join(lines)) if lines else ""

    def _reap(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for t in self._readers:
                t.join(timeout=1)


def _text(value) -> str:
    """A MATLAB char array read by scipy as text (an empty one comes back as an empty array)."""
    return value if isinstance(value, str) else ""


# -- servers this process owns: stopped at exit and on SIGTERM/SIGHUP --------------------------
_owned: list[Server] = []
_owned_lock = threading.Lock()
_installed = False


def _register(server: Server) -> None:
    global _installed
    if server.detached:
        return
    with _owned_lock:
        if server not in _owned:
            _owned.append(server)
        if not _installed:
            import atexit

            atexit.register(_stop_owned)
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGTERM, signal.SIGHUP):
                    if signal.getsignal(sig) in (signal.SIG_DFL, None):
                        signal.signal(sig, _exit_on_signal)
            _installed = True


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # unwinds with-blocks, then atexit stops the servers


def _stop_owned() -> None:
    with _owned_lock:
        servers = list(_owned)
        _owned.clear()
    for s in servers:
        s.retired = True  # the pool's workers must not start it again while Python exits
    for s in servers:
        try:
            s.kill()
        except Exception:  # at exit, stop every server whatever happens to one of them
            logging.getLogger("issm_bridge").exception("could not stop server %s", s.name)
