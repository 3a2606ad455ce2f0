"""What every observation operator on Firedrake fields shares.

An operator on a Firedrake field observes *sites* (points, or nodes of the field), each with
``c`` components (1 for a scalar field, ``d`` for a vector field). :meth:`FieldOperator.values`
returns the ``(sites, c)`` values in the order of the sites' positions, the same on every
rank of the member's spatial communicator and however the mesh is partitioned; calling the
operator returns them flattened site by site, ``(sites * c,)``. Whatever an operator must
compute once for a function space (an interpolation matrix, the order of the sites) is kept
per mesh and element, holding the mesh itself (never its ``id``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..layout import State

__all__ = ["FieldOperator", "node_coordinates", "bounding_box", "Box"]


class FieldOperator:
    """Base of the operators on one Firedrake field (see the module docstring).

    Subclasses set ``field`` and implement :meth:`_build` (the per-space setup) and
    :meth:`_values` (the ``(sites, c)`` values, given the setup).
    """

    field: str

    def _setup(self, V) -> Any:
        mesh, element = V.mesh(), V.ufl_element()
        cache = self.__dict__.setdefault("_setups", [])
        for m, e, s in cache:
            if m is mesh and e == element:
                return s
        s = self._build(V)
        cache.append((mesh, element, s))
        return s

    def _build(self, V) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _values(self, f, setup) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sites(self, setup) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, state: State) -> np.ndarray:
        """``(sites, c)`` values of the field at the sites, in the sites' order (collective)."""
        f = state[self.field]
        return self._values(f, self._setup(f.function_space()))

    def __call__(self, state: State) -> np.ndarray:
        return self.values(state).reshape(-1)

    def site_positions(self, state: State) -> np.ndarray:
        """``(sites, d)`` positions of the sites (collective)."""
        return self._sites(self._setup(state[self.field].function_space()))

    def positions(self, state: State, coordinates: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """``(m, d)`` position of each observed value: a site's, repeated for each component."""
        f = state[self.field]
        c = int(np.prod(f.function_space().value_shape, dtype=int))
        return np.repeat(self.site_positions(state), c, axis=0)


def node_coordinates(V) -> np.ndarray:
    """``(nodes, d)`` coordinates of the owned nodes of function space ``V``."""
    import firedrake

    mesh = V.mesh()
    element = V.ufl_element()
    if len(V.value_shape) > 0:
        element = element.sub_elements[0]
    X = firedrake.Function(firedrake.VectorFunctionSpace(mesh, element))
    X.interpolate(firedrake.SpatialCoordinate(mesh))
    xy = X.dat.data_ro
    return np.array(xy.reshape(xy.shape[0], -1))


class Box:
    """The axis-aligned box ``lower <= x <= upper`` (a mask on positions).

    Parameters
    ----------
    lower, upper
        ``(d,)`` corners.
    """

    def __init__(self, lower, upper):
        from ..errors import ObservationError

        self.lower = np.asarray(lower, dtype=float).reshape(-1)
        self.upper = np.asarray(upper, dtype=float).reshape(-1)
        if self.lower.shape != self.upper.shape or not np.all(self.lower <= self.upper):
            raise ObservationError(f"Box: lower {self.lower.tolist()} and upper {self.upper.tolist()} must have "
                                   "the same length, with lower <= upper")

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float)
        return np.all((xy >= self.lower) & (xy <= self.upper), axis=1)

    def __repr__(self):
        return f"Box({self.lower.tolist()}, {self.upper.tolist()})"


def bounding_box(mesh) -> tuple[np.ndarray, np.ndarray]:
    """The corners of the box holding ``mesh`` (collective over its communicator)."""
    from mpi4py import MPI

    d = mesh.geometric_dimension()
    xy = mesh.coordinates.dat.data_ro.reshape(-1, d)
    lo = xy.min(axis=0) if xy.size else np.full(d, np.inf)
    hi = xy.max(axis=0) if xy.size else np.full(d, -np.inf)
    lower, upper = np.empty(d), np.empty(d)
    mesh.comm.Allreduce(np.ascontiguousarray(lo, dtype=float), lower, op=MPI.MIN)
    mesh.comm.Allreduce(np.ascontiguousarray(hi, dtype=float), upper, op=MPI.MAX)
    return lower, upper
