"""Observation operators on array fields (small models such as Lorenz-96).

An operator is a callable ``H(state) -> (m,)`` with a method ``positions(state,
coordinates)`` giving the ``(m, d)`` positions of its values (for localization), or ``None``
when the field has none. Array models give the positions of their fields' values in their
optional ``geometry`` (:class:`~fdassim.geometry.Geometry`, see :mod:`fdassim.models.base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import ObservationError
from ..layout import State

__all__ = ["Identity", "Subset"]


def _field_coordinates(coordinates: Mapping[str, np.ndarray] | None, field: str, n: int) -> np.ndarray | None:
    if not coordinates or field not in coordinates:
        return None
    return np.asarray(coordinates[field], dtype=float).reshape(n, -1)


@dataclass(frozen=True)
class Identity:
    """Observe every value of an array field: ``H(x) = x``."""

    field: str = "x"

    def __call__(self, state: State) -> np.ndarray:
        return np.asarray(state[self.field], dtype=float).reshape(-1)

    def positions(self, state: State, coordinates: Mapping[str, np.ndarray] | None = None) -> np.ndarray | None:
        """The ``(n, d)`` coordinates of the field's values, or ``None``."""
        return _field_coordinates(coordinates, self.field, np.asarray(state[self.field]).size)


@dataclass(frozen=True)
class Subset:
    """Observe the values of an array field at integer ``indices`` (in that order).

    ``Subset(tuple(range(0, n, k)))`` observes every ``k``-th value.
    """

    indices: tuple[int, ...]
    field: str = "x"

    def __post_init__(self):
        if len(self.indices) == 0:
            raise ObservationError("Subset: indices is empty; observe at least one value")
        object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))

    def __call__(self, state: State) -> np.ndarray:
        x = np.asarray(state[self.field], dtype=float).reshape(-1)
        if max(self.indices) >= x.size or min(self.indices) < 0:
            raise ObservationError(f"Subset({self.field!r}): indices must lie in 0..{x.size - 1}, "
                                   f"got {min(self.indices)}..{max(self.indices)}")
        return x[list(self.indices)]

    def positions(self, state: State, coordinates: Mapping[str, np.ndarray] | None = None) -> np.ndarray | None:
        """The ``(m, d)`` coordinates of the observed values, or ``None``."""
        c = _field_coordinates(coordinates, self.field, np.asarray(state[self.field]).size)
        return None if c is None else c[list(self.indices)]
