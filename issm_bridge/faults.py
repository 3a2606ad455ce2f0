"""Fault injection, for testing that the pool survives a crashed or hung server.

Set ``ISSM_BRIDGE_FAULT=<kind>:<member>:<round>`` (``kill`` or ``hang``) and the first
attempt of that member's forecast in that forecast round (0 for the first forecast of the
process) crashes its server (SIGKILL from inside MATLAB, in the middle of the command) or
hangs it (an hour's pause). The fault fires once: a marker file is deleted before it
strikes, so the forecast run again after the restart goes through. Unset, nothing happens.
"""

from __future__ import annotations

import os
from pathlib import Path

from .server import matlab_string

__all__ = ["prefix"]

_STRIKE = {
    "kill": "system(sprintf('kill -9 %d', fdassim_getpid()));",
    "hang": "pause(3600);",
}


def prefix(member: int, round_: int, directory: Path) -> str:
    """MATLAB code to run before the member's forecast: the fault, once, if one is set for it."""
    target = os.environ.get("ISSM_BRIDGE_FAULT", "")
    parts = target.split(":")
    if len(parts) != 3 or parts[0] not in _STRIKE or parts[1:] != [str(member), str(round_)]:
        return ""
    marker = directory / f"fault-{member}-{round_}"
    marker.touch()
    m = matlab_string(marker)
    return f"if exist({m}, 'file') == 2, delete({m}); {_STRIKE[parts[0]]} end; "
