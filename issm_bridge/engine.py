"""Find a MATLAB or GNU Octave engine and run a command through it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["Engine", "find_engine", "EngineError"]


class EngineError(RuntimeError):
    """MATLAB/Octave is missing, failed, or timed out; the message carries its own output."""


@dataclass(frozen=True)
class Engine:
    """A MATLAB or GNU Octave executable."""

    kind: str  #: "matlab" or "octave"
    path: str

    def command(self, code: str) -> list[str]:
        """The argument list that runs ``code`` non-interactively and exits."""
        if self.kind == "matlab":
            return [self.path, "-nodisplay", "-nosplash", "-batch", code]
        return [self.path, "--no-gui", "--quiet", "--no-window-system", "--eval", code]

    def run(self, code: str, timeout: float = 120.0) -> str:
        """Run ``code``; return its standard output, or raise :class:`EngineError` with its message."""
        try:
            res = subprocess.run(self.command(code), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EngineError(f"{self.kind} did not finish within {timeout} s running: {code}") from None
        if res.returncode != 0:
            raise EngineError(f"{self.kind} failed (exit {res.returncode}) running: {code}\n"
                              f"{(res.stderr or res.stdout).strip()}")
        return res.stdout


def find_engine(prefer: str = "matlab") -> Engine | None:
    """MATLAB if on PATH (or ``prefer='octave'``), else GNU Octave, else ``None``."""
    order = ["matlab", "octave"] if prefer == "matlab" else ["octave", "matlab"]
    for kind in order:
        path = shutil.which(kind)
        if path:
            return Engine(kind, path)
    return None
