"""Point observations of a Firedrake field, on a mesh split over any number of ranks.

:class:`PointValues` evaluates a field at fixed points with a Firedrake ``VertexOnlyMesh``
and returns the values in the order the points were given, on every rank of the member's
spatial communicator, so the result does not depend on how the mesh is partitioned.
"""

from __future__ import annotations

import numpy as np

from .errors import ObservationError
from .layout import State

__all__ = ["PointValues"]


class PointValues:
    """Values of field ``field`` at ``points`` (``(m, d)``).

    Parameters
    ----------
    field
        Name of the observed field in the state.
    points
        ``(m, d)`` coordinates, all inside the domain.

    Raises
    ------
    ObservationError
        If ``points`` is empty or not 2-D, or (when first used) a point lies outside the mesh.
    """

    def __init__(self, field: str, points: np.ndarray):
        points = np.asarray(points, dtype=float)
        if points.ndim != 2 or points.shape[0] == 0:
            raise ObservationError(f"PointValues: points must be a non-empty (m, d) array, got shape {points.shape}")
        self.field = field
        self.points = points
        self._spaces: dict[int, tuple] = {}

    def _vom_spaces(self, mesh):
        import firedrake

        key = id(mesh)
        if key not in self._spaces:
            try:
                vom = firedrake.VertexOnlyMesh(mesh, self.points, redundant=True)
            except Exception as exc:  # Firedrake raises its own error type for points outside
                raise ObservationError(f"PointValues({self.field!r}): cannot place the points on the mesh: {exc}") from None
            self._spaces[key] = (firedrake.FunctionSpace(vom, "DG", 0),
                                 firedrake.FunctionSpace(vom.input_ordering, "DG", 0))
        return self._spaces[key]

    def __call__(self, state: State) -> np.ndarray:
        import firedrake

        f = state[self.field]
        mesh = f.function_space().mesh()
        P0, P0_input = self._vom_spaces(mesh)
        on_points = firedrake.assemble(firedrake.interpolate(f, P0))
        in_order = firedrake.assemble(firedrake.interpolate(on_points, P0_input))
        comm = mesh.comm
        values = in_order.dat.data_ro.copy() if comm.rank == 0 else None
        return comm.bcast(values, root=0)
