"""The state layout: which fields make a state, and where each sits in the state vector.

A state is a mapping from field names to Firedrake ``Function``\\ s (mesh models) or numpy
arrays (array models such as Lorenz-96). The analysis sees a state as one flat vector: the
owned degrees of freedom of each field, concatenated in the order of the model's fields.
:class:`Layout` is that index map (what ICESEE calls ``icesee_get_index``), built once from
a template state and reused for every member and cycle.

With a member's mesh split over ``M`` ranks, each rank holds the owned part of every field;
the global state vector is the concatenation of the ranks' local vectors in rank order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError

__all__ = ["FieldSpec", "Layout", "State"]

#: A state: field name -> firedrake.Function or numpy.ndarray.
State = Mapping[str, Any]


@dataclass(frozen=True)
class FieldSpec:
    """A field of the state.

    Parameters
    ----------
    name
        The field's name (Icepack's vocabulary for ice models: ``thickness``, ``velocity``,
        ``friction``, ...).
    parameter
        ``True`` for a parameter (estimated jointly with the state, inflated separately).
    carried
        ``True`` for a field the model needs to continue but which is not assimilated (an
        Icepack velocity kept as the next solve's initial guess): the analysis never sees
        it; the restart stores it.
    """

    name: str
    parameter: bool = False
    carried: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"field name must be an identifier, got {self.name!r}")
        if self.parameter and self.carried:
            raise ConfigError(f"field {self.name!r}: a carried field is not assimilated, so it cannot be a "
                              "parameter; mark it parameter=True or carried=True, not both")


def _is_function(value) -> bool:
    return hasattr(value, "dat") and hasattr(value, "function_space")


def _owned(value) -> np.ndarray:
    """The owned values of a field as an array (a view for numpy fields)."""
    return value.dat.data_ro if _is_function(value) else np.asarray(value)


class Layout:
    """Index map from fields to positions in the local state vector.

    Parameters
    ----------
    fields
        The model's fields, in order.
    template
        One state whose fields give the sizes (and, for Functions, the coordinates).
    comm
        The spatial communicator a member lives on (``None`` for a serial array model).
    coords
        Optional ``{name: (n_f, d) array}`` of coordinates for array fields (for
        localization); Function fields get their node coordinates from the mesh.

    Attributes
    ----------
    n_local : int
        Length of the local state vector.
    offset : int
        Global index of this rank's first entry (ranks concatenated in order).
    n_global : int
        Length of the global state vector.
    """

    def __init__(self, fields: tuple[FieldSpec, ...], template: State, comm=None,
                 coords: Mapping[str, np.ndarray] | None = None):
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ConfigError(f"field names must be unique, got {names}")
        missing = [n for n in names if n not in template]
        if missing:
            raise ConfigError(f"the model's state lacks field(s) {missing}; it has {sorted(template)}")
        self.fields = tuple(fields)
        self._slices: dict[str, slice] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        start = 0
        for f in fields:
            a = _owned(template[f.name])
            self._slices[f.name] = slice(start, start + a.size)
            self._shapes[f.name] = a.shape
            start += a.size
        self.n_local = start
        self.comm = comm
        if comm is not None and comm.size > 1:
            self.offset = comm.exscan(self.n_local) or 0
            self.n_global = comm.allreduce(self.n_local)
            # each field's global start on this rank (fields are stored field by field)
            self._field_offsets = {f.name: comm.exscan(self.size(f.name)) or 0 for f in fields}
            self._field_sizes = {f.name: comm.allreduce(self.size(f.name)) for f in fields}
        else:
            self.offset, self.n_global = 0, self.n_local
            self._field_offsets = {f.name: 0 for f in fields}
            self._field_sizes = {f.name: self.size(f.name) for f in fields}
        self.is_param = np.zeros(self.n_local, dtype=bool)
        for f in fields:
            self.is_param[self._slices[f.name]] = f.parameter
        self.coords = self._coordinates(template, coords or {})

    # -- the index map ---------------------------------------------------------------------
    def slice(self, name: str) -> slice:
        """Positions of field ``name`` in the local state vector."""
        try:
            return self._slices[name]
        except KeyError:
            raise ConfigError(f"no field {name!r}; the state has {list(self._slices)}") from None

    def size(self, name: str) -> int:
        """Number of local entries of field ``name``."""
        s = self.slice(name)
        return s.stop - s.start

    def global_size(self, name: str) -> int:
        """Number of entries of field ``name`` over all ranks of a member."""
        return self._field_sizes[name]

    def global_offset(self, name: str) -> int:
        """Global index (within field ``name``) of this rank's first entry of it."""
        return self._field_offsets[name]

    # -- moving values ---------------------------------------------------------------------
    def flatten(self, state: State, out: np.ndarray | None = None) -> np.ndarray:
        """Copy the owned values of ``state`` into a flat vector."""
        out = np.empty(self.n_local) if out is None else out
        for f in self.fields:
            out[self._slices[f.name]] = _owned(state[f.name]).reshape(-1)
        return out

    def unflatten(self, vec: np.ndarray, state: State) -> None:
        """Write the flat vector ``vec`` into the owned values of ``state``, in place."""
        for f in self.fields:
            value = state[f.name]
            part = vec[self._slices[f.name]].reshape(self._shapes[f.name])
            if _is_function(value):
                value.dat.data_wo[...] = part
            else:
                value[...] = part

    def _coordinates(self, template: State, coords: Mapping[str, np.ndarray]) -> np.ndarray | None:
        blocks, seen = [], []  # seen: (mesh, element, positions), so fields on one space interpolate once
        for f in self.fields:
            value, n = template[f.name], self.size(f.name)
            if f.name in coords:
                c = np.asarray(coords[f.name], dtype=float).reshape(n, -1)
            elif _is_function(value):
                c = _node_coordinates(value, n, seen)
            else:
                return None
            blocks.append(c)
        dims = {b.shape[1] for b in blocks}
        if len(dims) != 1:
            raise ConfigError(f"field coordinates have different dimensions {sorted(dims)}")
        return np.concatenate(blocks, axis=0) if blocks else None


def _node_coordinates(f, n: int, seen: list) -> np.ndarray:
    """Coordinates of the owned nodes of Function ``f``, repeated for each component; those
    of a mesh and scalar element already in ``seen`` are reused (and new ones added)."""
    from .observations.onmesh import node_coordinates

    V = f.function_space()
    mesh, element = V.mesh(), V.ufl_element()
    if len(V.value_shape) > 0:
        element = element.sub_elements[0]
    for m, e, xy in seen:
        if m is mesh and e == element:
            break
    else:
        xy = node_coordinates(V)
        seen.append((mesh, element, xy))
    return np.repeat(xy, n // xy.shape[0], axis=0)
