r"""Observations of a Firedrake field at its nodes, and nonlinear operators.

:class:`NodalValues` observes a field at its nodes (the degrees of freedom of a Lagrange
field): all of them, those inside a mask (a region of the domain), every ``k``-th of them,
or both. The nodes are ordered by *position* (lexicographically by ``x``, then ``y``, then
``z``), never by the DOF numbering, so the values come in the same order however the mesh is
split over ranks. :class:`Speed` turns an operator on a vector field into the speed
:math:`|u|` at its sites, a nonlinear observation operator.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ObservationError
from .onmesh import FieldOperator, node_coordinates

__all__ = ["NodalValues", "Speed"]

#: positions are rounded to this fraction of the domain's extent before ordering, so that
#: round-off in the coordinates cannot swap two nodes
_ORDER_ROUNDING = 1e-10


class NodalValues(FieldOperator):
    """Values of field ``field`` at its nodes, in the order of their positions.

    Parameters
    ----------
    field
        Name of the observed field (a Lagrange field, scalar or vector).
    mask
        ``mask(xy) -> bool (nodes,)`` on ``(nodes, d)`` positions: observe the nodes where it
        is true (a :class:`~fdassim.observations.onmesh.Box`, or any function of position);
        ``None`` observes every node.
    every
        Keep every ``every``-th of the (masked) nodes in position order.

    Raises
    ------
    ObservationError
        If ``every`` is not a positive integer, or (when first used) the mask selects no node.
    """

    def __init__(self, field: str, mask: Callable[[np.ndarray], np.ndarray] | None = None, every: int = 1):
        if isinstance(every, bool) or int(every) != every or every < 1:
            raise ObservationError(f"NodalValues({field!r}): every must be a positive integer, got {every!r}")
        if mask is not None and not callable(mask):
            raise ObservationError(f"NodalValues({field!r}): mask must be a function of positions, got {mask!r}")
        self.field = field
        self.mask = mask
        self.every = int(every)

    def __repr__(self):
        return f"NodalValues({self.field!r}, mask={self.mask!r}, every={self.every})"

    def _build(self, V):
        """Which owned nodes this rank contributes, and where they go in the ordered output."""
        comm = V.mesh().comm
        xy = node_coordinates(V)
        keep = np.ones(xy.shape[0], dtype=bool) if self.mask is None else np.asarray(self.mask(xy), dtype=bool)
        if keep.shape != (xy.shape[0],):
            raise ObservationError(f"NodalValues({self.field!r}): the mask returned shape {keep.shape} for "
                                   f"{xy.shape[0]} positions; it must return one bool per position")
        mine = np.flatnonzero(keep)
        gathered = comm.allgather(xy[mine])
        C = np.concatenate(gathered) if gathered else np.empty((0, xy.shape[1]))
        if C.shape[0] == 0:
            raise ObservationError(f"NodalValues({self.field!r}): the mask {self.mask!r} selects no node of the mesh")
        extent = max(float(np.ptp(C, axis=0).max()), 1e-300)
        key = np.round((C - C.min(axis=0)) / (extent * _ORDER_ROUNDING))
        order = np.lexsort(key.T[::-1])[::self.every]  # x first, then y, then z
        return mine, order, C[order]

    def _values(self, f, setup) -> np.ndarray:
        mine, order, _ = setup
        data = f.dat.data_ro
        local = data.reshape(data.shape[0], -1)[mine]
        comm = f.function_space().mesh().comm
        all_values = np.concatenate(comm.allgather(local)) if comm.size > 1 else local
        return all_values[order]

    def _sites(self, setup) -> np.ndarray:
        return setup[2]


class Speed:
    r"""The speed :math:`|u| = \sqrt{\sum_i u_i^2}` of a vector field at the sites of ``base``.

    Parameters
    ----------
    base
        An operator on a vector field (:class:`NodalValues`,
        :class:`~fdassim.observations.points.PointValues`).

    Examples
    --------
    >>> speed = Speed(PointValues("velocity", points))          # doctest: +SKIP
    """

    def __init__(self, base: FieldOperator):
        if not isinstance(base, FieldOperator):
            raise ObservationError(f"Speed: base must be an operator on a field (NodalValues, PointValues), got {base!r}")
        self.base = base
        self.field = base.field

    def __repr__(self):
        return f"Speed({self.base!r})"

    def __call__(self, state) -> np.ndarray:
        u = self.base.values(state)
        if u.shape[1] < 2:
            raise ObservationError(f"Speed({self.field!r}): the field is scalar; speed needs a vector field")
        return np.sqrt(np.sum(u * u, axis=1))

    def positions(self, state, coordinates=None) -> np.ndarray:
        """``(sites, d)`` positions, one per speed value."""
        return self.base.site_positions(state)
