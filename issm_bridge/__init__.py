"""issm_bridge: ISSM ensembles for fdassim through persistent MATLAB (or GNU Octave) servers.

It reaches fdassim only through fdassim's model protocol and public API.

- :class:`ISSM` (:mod:`issm_bridge.model`): the model for fdassim (``model: {name: issm}``)
- :class:`Pool`, :class:`Task` (:mod:`issm_bridge.pool`), :class:`Server`
  (:mod:`issm_bridge.server`): MATLAB/Octave servers answering requests through files
- :mod:`issm_bridge.exchange`: the MAT-file format of member files, written atomically
- :mod:`issm_bridge.cli`: the ``issm-bridge`` command
"""

from .errors import (BridgeError, EngineError, ExchangeError, MatlabError, PoolError, ServerDied, ServerError,
                     ServerTimeout, StaleFileError)
from .model import ISSM, Backend, Inversion
from .pool import Pool, Task
from .server import Server

__version__ = "0.1.0"

__all__ = ["ISSM", "Backend", "Inversion", "Pool", "Task", "Server", "BridgeError", "EngineError", "ServerError",
           "ServerDied", "ServerTimeout", "MatlabError", "ExchangeError", "StaleFileError", "PoolError"]
