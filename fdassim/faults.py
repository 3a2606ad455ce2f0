"""Fault injection, for testing that a killed run restarts exactly.

Set ``FDASSIM_KILL_AT=<place>:<cycle>`` (``forecast``, ``write`` or ``grow``) and the process
kills itself with SIGKILL when it reaches that place in that cycle: in the middle of the
ensemble forecast (after the first local member), in the middle of writing the cycle to the
store (after the ensembles, before the commit), or when a store grown to that many cycles is
written but not yet renamed over the old one. Unset, :func:`point` does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["point"]


def point(place: str, cycle: int) -> None:
    """Die here if ``FDASSIM_KILL_AT`` names this place and cycle."""
    target = os.environ.get("FDASSIM_KILL_AT")
    if target and target == f"{place}:{cycle}":
        os.kill(os.getpid(), signal.SIGKILL)
