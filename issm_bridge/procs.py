"""Processes and process groups, read from ``/proc`` (Linux).

Each server is started in a session of its own, so its process group id is its pid and
everything it starts (ISSM's ``mpiexec`` and ranks) shares that group. A pid alone can be
reused once its process is gone; the start time in ``/proc/<pid>/stat`` (clock ticks
since boot) tells a process from a later one with the same pid. The bridge signals a
group only when its leader is the process it started, or when the leader is gone and
members of its group remain (a group id is not reused while a member lives).
"""

from __future__ import annotations

import os
import signal
import time

__all__ = ["stat", "start_time", "alive", "command", "group_members", "signal_group", "stop_group"]


def stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), ``None`` if gone or a zombie."""
    fields = stat(pid)
    if fields is None or fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    """True if process ``pid`` runs (not a zombie) and, given ``started``, is the one started then."""
    t = start_time(pid)
    return t is not None and (started is None or t == started)


def group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = stat(int(name))
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(name))
    return sorted(members)


def command(pid: int) -> str:
    """The command line of process ``pid`` (arguments joined by spaces; empty if gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _ours(pgid: int, started: int | None) -> bool:
    t = start_time(pgid)
    if t is not None:
        return started is None or t == started
    return bool(group_members(pgid))  # the leader is gone; its group's members are still ours


def signal_group(pgid: int, sig: int, started: int | None = None) -> bool:
    """Send ``sig`` to process group ``pgid`` if it is still the one started at ``started``."""
    if not _ours(pgid, started):
        return False
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_group(pgid: int, started: int | None = None, grace: float = 3.0) -> None:
    """Stop process group ``pgid``: SIGTERM, then SIGKILL after ``grace`` seconds; wait until empty."""
    if not signal_group(pgid, signal.SIGTERM, started):
        return
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if group_members(pgid):
        signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
