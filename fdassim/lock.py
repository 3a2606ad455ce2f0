"""The lock of a run store: one writer at a time, for the whole life of a run.

A run holds an exclusive :func:`fcntl.flock` on ``<store>.lock`` from its first check of the
store to its last write (rank 0 holds it for all ranks). The lock file records who holds it
(process id, host, start time and command), so a second writer (a second ``fdassim run``, an
``--overwrite`` or a ``--restart`` of a run still going) is refused with a message naming the
running one. The kernel releases a ``flock`` when its process dies, however it dies, so a lock
left behind by a killed run is never stale: the next run takes it over and says so. A run
that ends normally removes the lock file.

Lock files are on the store's file system; a file system without working ``flock`` (some
network mounts) is reported, not ignored.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time

from .errors import StoreError

__all__ = ["StoreLock", "describe_holder", "read_holder"]


def _holder_info() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": " ".join([os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python",
                                 *sys.argv[1:]])}


def describe_holder(info: dict | None) -> str:
    """``pid 123 on host h, started 2025-01-01T10:00:00: fdassim run params.yaml``."""
    if not info:
        return "a process that left no record"
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, started {info.get('started', '?')}: "
            f"{info.get('command', '?')}")


def _read(fd: int) -> dict | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        return json.loads(raw.decode()) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_holder(store_path: str) -> dict | None:
    """Who holds the lock of ``store_path`` now (its record), or ``None`` if nobody does."""
    try:
        fd = os.open(store_path + ".lock", os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {}
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class StoreLock:
    """An exclusive lock on the run store at ``path``, held through ``<path>.lock``.

    Use :meth:`acquire` / :meth:`release` (or ``with``). Not collective: in a parallel run
    rank 0 holds it (see :meth:`acquire_collective`).

    Attributes
    ----------
    stale
        After :meth:`acquire`: the record of a previous holder that died without releasing
        the lock (its lock file was left behind), else ``None``.
    """

    def __init__(self, path: str):
        self.path = path
        self.lock_path = path + ".lock"
        self._fd: int | None = None
        self.stale: dict | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "StoreLock":
        """Take the lock or raise.

        Raises
        ------
        StoreError
            If another process holds it (naming that process), or the lock file cannot be
            made (naming the directory and why).
        """
        if self._fd is not None:
            return self
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                folder = os.path.dirname(os.path.abspath(self.path))
                raise StoreError(f"cannot write in {folder!r} (for {self.path!r}): {exc.strerror}; "
                                 "choose an output.path in a directory you can write") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                # the holder writes its record just after taking the lock: give it a moment
                deadline = time.monotonic() + 2.0
                while holder is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                    holder = _read(fd)
                os.close(fd)
                raise StoreError(f"{self.path!r} is being written by another run ({describe_holder(holder)}); "
                                 "wait for it to finish, stop it, or choose another output.path") from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise StoreError(f"cannot lock {self.lock_path!r}: the file system does not support locks "
                                     f"({exc.strerror}); choose an output.path on a local disk") from None
                raise
            # the previous holder removes the file when it releases: if it did so between our
            # open and our flock, we hold a lock on a file nobody else will see; start again
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.stale = _read(fd)  # a record left by a holder that died without releasing
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(_holder_info()).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock (removed first, while still held)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def acquire_collective(self, comm) -> "StoreLock":
        """Rank 0 takes the lock; every rank raises the same error if it cannot."""
        error = None
        if comm.rank == 0:
            try:
                self.acquire()
            except StoreError as exc:
                error = str(exc)
        error = comm.bcast(error, root=0)
        if error is not None:
            raise StoreError(error)
        self.stale = comm.bcast(self.stale, root=0)
        return self

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
