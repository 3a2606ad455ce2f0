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
        self._ops: dict = {}

    def _operator(self, V):
        """The point-evaluation matrix of space ``V`` and the order of its rows (built once).

        The interpolation onto a ``VertexOnlyMesh`` is a sparse ``(m, n)`` matrix whose rows
        (the points) are spread over the ranks in the mesh's order; ``order[k]`` is the
        global row of the ``k``-th given point, found once by sending row numbers through
        Firedrake's redistribution to the input ordering. Applying it is then a sparse
        product and a gather of ``m`` values, with no form to process at each call.
        """
        import firedrake

        mesh = V.mesh()
        key = (id(mesh), V.ufl_element())
        if key not in self._ops:
            try:
                vom = firedrake.VertexOnlyMesh(mesh, self.points, redundant=True)
            except Exception as exc:  # Firedrake raises its own error type for points outside
                raise ObservationError(f"PointValues({self.field!r}): cannot place the points on the mesh: {exc}") from None
            P0 = firedrake.FunctionSpace(vom, "DG", 0)
            P0_input = firedrake.FunctionSpace(vom.input_ordering, "DG", 0)
            to_points = firedrake.assemble(firedrake.interpolate(firedrake.TrialFunction(V), P0)).petscmat
            row = firedrake.Function(P0)
            lo, hi = to_points.getOwnershipRange()
            row.dat.data[:] = np.arange(lo, hi, dtype=float)
            in_order = firedrake.assemble(firedrake.interpolate(row, P0_input))
            order = in_order.dat.data_ro.round().astype(int) if mesh.comm.rank == 0 else None
            self._ops[key] = (to_points, to_points.createVecLeft(), mesh.comm.bcast(order, root=0))
        return self._ops[key]

    def __call__(self, state: State) -> np.ndarray:
        f = state[self.field]
        to_points, on_points, order = self._operator(f.function_space())
        with f.dat.vec_ro as v:
            to_points.mult(v, on_points)
        comm = f.function_space().mesh().comm
        values = on_points.getArray()
        if comm.size > 1:  # rows are owned in rank order
            values = np.concatenate(comm.allgather(values))
        return values[order]
