"""Exceptions raised by issm_bridge.

Every message names the server, and where there is one the member and cycle, and carries
MATLAB's (or GNU Octave's) own message and stack when the error happened there.
"""

from __future__ import annotations

__all__ = ["BridgeError", "EngineError", "ServerError", "ServerDied", "ServerTimeout", "MatlabError",
           "ExchangeError", "StaleFileError", "PoolError"]


class BridgeError(RuntimeError):
    """Base class of every error issm_bridge raises on purpose."""


class EngineError(BridgeError):
    """MATLAB/Octave is missing, failed to start, or a one-off command failed."""


class ServerError(BridgeError):
    """A server could not answer a request.

    Parameters
    ----------
    server
        The server's name.
    message
        What went wrong.
    """

    def __init__(self, server: str, message: str):
        self.server = server
        super().__init__(f"server {server}: {message}")


class ServerDied(ServerError):
    """The server's process ended while it was starting or running a request."""


class ServerTimeout(ServerError):
    """The server did not answer within its timeout; it has been stopped."""


class MatlabError(ServerError):
    """An error raised inside MATLAB/Octave while running a request (the server goes on).

    Attributes
    ----------
    matlab_message, identifier, stack
        MATLAB's ``err.message``, ``err.identifier`` and the formatted ``err.stack``.
    """

    def __init__(self, server: str, matlab_message: str, identifier: str = "", stack: str = "",
                 context: str = ""):
        self.matlab_message = matlab_message
        self.identifier = identifier
        self.stack = stack
        where = f"{context}: " if context else ""
        ident = f" [{identifier}]" if identifier else ""
        trace = "\n" + stack.rstrip() if stack.strip() else ""
        super().__init__(server, f"{where}MATLAB error{ident}: {matlab_message}{trace}")


class ExchangeError(BridgeError):
    """A member file is missing, unreadable or not of the bridge's format."""


class StaleFileError(ExchangeError):
    """A member file belongs to another cycle, member or request (never read silently)."""


class PoolError(BridgeError):
    """A pool's state file is missing or inconsistent, or its servers are in use elsewhere."""
