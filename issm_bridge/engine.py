"""Find a MATLAB or GNU Octave engine; the command lines that run code through it."""

from __future__ import annotations

import enum
import shutil
import subprocess
from dataclasses import dataclass

from .errors import EngineError

__all__ = ["Engine", "EngineKind", "find_engine", "require_engine", "EngineError"]


class EngineKind(enum.Enum):
    """Which interpreter runs the MATLAB-language code."""

    MATLAB = "matlab"
    OCTAVE = "octave"


@dataclass(frozen=True)
class Engine:
    """A MATLAB or GNU Octave executable."""

    kind: EngineKind
    path: str

    def command(self, code: str) -> list[str]:
        """The argument list that runs ``code`` non-interactively and exits.

        MATLAB: ``matlab -nodisplay -nosplash -batch code`` (a non-zero exit on error);
        Octave: ``octave --no-gui --quiet --no-window-system --no-history --eval code`` (no
        history file: a server runs thousands of commands, and Octave 7 complains at exit
        when it cannot write one).
        """
        if self.kind is EngineKind.MATLAB:
            return [self.path, "-nodisplay", "-nosplash", "-batch", code]
        return [self.path, "--no-gui", "--quiet", "--no-window-system", "--no-history", "--eval", code]

    def run(self, code: str, timeout: float = 120.0) -> str:
        """Run ``code`` once; return its standard output, or raise :class:`EngineError` with its message."""
        try:
            res = subprocess.run(self.command(code), capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EngineError(f"{self.kind.value} did not finish within {timeout} s running: {code}") from None
        if res.returncode != 0:
            raise EngineError(f"{self.kind.value} failed (exit {res.returncode}) running: {code}\n"
                              f"{(res.stderr or res.stdout).strip()}")
        return res.stdout


def find_engine(prefer: EngineKind | str | None = None) -> Engine | None:
    """MATLAB if on PATH, else GNU Octave, else ``None``; ``prefer`` puts one kind first."""
    order = [EngineKind.MATLAB, EngineKind.OCTAVE]
    if prefer is not None and EngineKind(prefer) is EngineKind.OCTAVE:
        order.reverse()
    for kind in order:
        path = shutil.which(kind.value)
        if path:
            return Engine(kind, path)
    return None


def require_engine(kind: EngineKind | str | None = None) -> Engine:
    """The engine of ``kind`` (``None``: MATLAB, else Octave), or :class:`EngineError` saying what to install.

    Raises
    ------
    EngineError
        If the requested kind (or either, for ``None``) is not on PATH.
    """
    if kind is None:
        engine = find_engine()
        if engine is None:
            raise EngineError("neither MATLAB nor GNU Octave is on PATH; install one "
                              "(Debian: apt-get install octave) or put matlab on PATH")
        return engine
    kind = EngineKind(kind)
    path = shutil.which(kind.value)
    if path is None:
        hint = "apt-get install octave" if kind is EngineKind.OCTAVE else "put MATLAB's bin directory on PATH"
        raise EngineError(f"{kind.value} is not on PATH ({hint})")
    return Engine(kind, path)
