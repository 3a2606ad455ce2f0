"""Observations: what is observed at each analysis time, with what error.

An :class:`Observations` couples an observation operator ``H`` (a callable on one member's
state returning the ``(m,)`` predicted values) with its error covariance ``R``, the
observation coordinates (for localization) and the observed values: given, one row per
cycle, or drawn from the truth of a twin experiment as ``y = H(x_true) + R^{1/2} z`` with
``z`` from the :attr:`~fdassim.streams.Stream.OBS_NOISE` generator of ``(seed, cycle)``,
never by rank, nor by the ensemble size.

Built-in operators for array fields: :class:`Identity` and :class:`Subset`. Operators on
Firedrake fields (point values, masks, whole fields) live in :mod:`fdassim.observations`'
companions as they are added; any callable with the signature ``H(state) -> (m,)`` works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .analysis.base import ObsError
from .errors import ObservationError
from .layout import State
from .streams import Stream, generator

__all__ = ["Observations", "Identity", "Subset"]


@dataclass(frozen=True)
class Identity:
    """Observe every value of an array field: ``H(x) = x``."""

    field: str = "x"

    def __call__(self, state: State) -> np.ndarray:
        return np.asarray(state[self.field], dtype=float).reshape(-1)


@dataclass(frozen=True)
class Subset:
    """Observe the values of an array field at integer ``indices``."""

    indices: tuple[int, ...]
    field: str = "x"

    def __post_init__(self):
        if len(self.indices) == 0:
            raise ObservationError("Subset: indices is empty; observe at least one value")
        object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))

    def __call__(self, state: State) -> np.ndarray:
        return np.asarray(state[self.field], dtype=float).reshape(-1)[list(self.indices)]


@dataclass(frozen=True, eq=False)
class Observations:
    """Observations assimilated at every cycle.

    Parameters
    ----------
    operator
        ``H(state) -> (m,)``, called on every rank of a member's spatial communicator.
    R
        Observation-error covariance (``m`` values, or one broadcast to all).
    coords
        ``(m, d)`` observation positions, for localization; or ``None``.
    values
        ``(K, m)`` observed values, one row per cycle; ``None`` for a twin experiment, where
        they are drawn from the truth.
    """

    operator: Callable[[State], np.ndarray]
    R: ObsError
    coords: np.ndarray | None = None
    values: np.ndarray | None = field(default=None)

    def __post_init__(self):
        if not callable(self.operator):
            raise ObservationError(f"the observation operator must be callable, got {type(self.operator).__name__}")
        if not isinstance(self.R, ObsError):
            raise ObservationError("R must be an ObsError (ObsError.from_std, diagonal or full)")
        if self.values is not None:
            v = np.asarray(self.values, dtype=float)
            if v.ndim != 2:
                raise ObservationError(f"observed values must be (cycles, m), got shape {v.shape}")
            object.__setattr__(self, "values", v)

    def observed(self, cycle: int, seed: int, truth_predicted: np.ndarray | None) -> np.ndarray:
        """The observations of ``cycle``: given values, or the truth's plus noise.

        Raises
        ------
        ObservationError
            If neither values nor a truth are available, or the values run out.
        """
        if self.values is not None:
            if cycle >= self.values.shape[0]:
                raise ObservationError(f"observations cover {self.values.shape[0]} cycles; cycle {cycle} has none")
            return self.values[cycle]
        if truth_predicted is None:
            raise ObservationError("no observed values and no truth to draw them from: give values "
                                   "or run a twin experiment")
        R = self.R.expand(truth_predicted.size)
        z = generator(seed, Stream.OBS_NOISE, cycle).standard_normal(truth_predicted.size)
        return truth_predicted + R.color(z)
