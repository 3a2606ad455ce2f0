"""Point observations of a Firedrake field, on a mesh split over any number of ranks.

:class:`PointValues` evaluates a field (scalar or vector) at fixed points with a Firedrake
``VertexOnlyMesh`` and returns the values in the order the points were given, on every rank
of the member's spatial communicator, so the result does not depend on how the mesh is
partitioned. :func:`flight_lines` makes the points of airborne survey lines (radar flight
lines along ``x`` every 4 km, say) to observe with it.
"""

from __future__ import annotations

import numpy as np

from ..errors import ObservationError
from .onmesh import FieldOperator

__all__ = ["PointValues", "flight_lines"]


class PointValues(FieldOperator):
    """Values of field ``field`` at ``points`` (``(m, d)``), in the points' order.

    For a vector field each point gives its ``d`` components, point after point.

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

    def __repr__(self):
        return f"PointValues({self.field!r}, {self.points.shape[0]} points)"

    def _build(self, V):
        """The point-evaluation matrix of space ``V`` and the order of its rows.

        The interpolation onto a ``VertexOnlyMesh`` is a sparse matrix whose rows (the
        points, ``c`` rows each for ``c`` components) are spread over the ranks in the
        mesh's order; ``order[k]`` is the global point index of the ``k``-th given point,
        found once by sending point numbers through Firedrake's redistribution to the input
        ordering. Applying it is then a sparse product and a gather of ``m c`` values.
        """
        import firedrake

        mesh = V.mesh()
        c = int(np.prod(V.value_shape, dtype=int))
        try:
            vom = firedrake.VertexOnlyMesh(mesh, self.points, redundant=True)
        except Exception as exc:  # Firedrake raises its own error type for points outside
            raise ObservationError(f"PointValues({self.field!r}): cannot place the points on the mesh: {exc}") from None
        P0 = (firedrake.VectorFunctionSpace(vom, "DG", 0, dim=c) if V.value_shape
              else firedrake.FunctionSpace(vom, "DG", 0))
        to_points = firedrake.assemble(firedrake.interpolate(firedrake.TrialFunction(V), P0)).petscmat
        scalar = firedrake.FunctionSpace(vom, "DG", 0)
        row = firedrake.Function(scalar)
        lo, hi = to_points.getOwnershipRange()
        row.dat.data[:] = np.arange(lo // c, hi // c, dtype=float)
        in_order = firedrake.assemble(firedrake.interpolate(row, firedrake.FunctionSpace(vom.input_ordering, "DG", 0)))
        order = in_order.dat.data_ro.round().astype(int) if mesh.comm.rank == 0 else None
        return to_points, to_points.createVecLeft(), mesh.comm.bcast(order, root=0), c

    def _values(self, f, setup) -> np.ndarray:
        to_points, on_points, order, c = setup
        with f.dat.vec_ro as v:
            to_points.mult(v, on_points)
        comm = f.function_space().mesh().comm
        values = on_points.getArray()
        if comm.size > 1:  # rows are owned in rank order
            values = np.concatenate(comm.allgather(values))
        return values.reshape(-1, c)[order]

    def _sites(self, setup) -> np.ndarray:
        return self.points


def flight_lines(lower, upper, spacing: float, step: float, along: int = 0, offset: float | None = None) -> np.ndarray:
    """Points along straight survey lines crossing a box, as ``(m, 2)`` coordinates.

    Lines run parallel to axis ``along`` (0: along ``x``, lines at fixed ``y``), ``spacing``
    apart starting ``offset`` (default ``spacing / 2``) inside the box; points sit every
    ``step`` along each line, starting ``step / 2`` inside. Lines are listed in order of
    their position, points along each line in increasing coordinate, so the order is fixed
    by the geometry alone.

    Examples
    --------
    Radar lines along ``x`` every 4 km over a 20 km x 10 km domain, a point every 500 m:

    >>> flight_lines([0, 0], [20e3, 10e3], spacing=4e3, step=500).shape
    (80, 2)
    """
    lower = np.asarray(lower, dtype=float).reshape(-1)
    upper = np.asarray(upper, dtype=float).reshape(-1)
    if lower.shape != (2,) or upper.shape != (2,) or not np.all(upper > lower):
        raise ObservationError(f"flight_lines: lower {lower.tolist()} and upper {upper.tolist()} must be 2-D "
                               "corners with lower < upper")
    if along not in (0, 1):
        raise ObservationError(f"flight_lines: along must be 0 (lines along x) or 1 (along y), got {along!r}")
    if not (spacing > 0 and step > 0):
        raise ObservationError(f"flight_lines: spacing and step must be positive, got {spacing!r} and {step!r}")
    across = 1 - along
    offset = spacing / 2 if offset is None else float(offset)
    positions = np.arange(lower[across] + offset, upper[across], spacing)
    stations = np.arange(lower[along] + step / 2, upper[along], step)
    if positions.size == 0 or stations.size == 0:
        raise ObservationError(f"flight_lines: no line fits in the box with spacing {spacing} and offset {offset}")
    out = np.empty((positions.size * stations.size, 2))
    out[:, across] = np.repeat(positions, stations.size)
    out[:, along] = np.tile(stations, positions.size)
    return out
