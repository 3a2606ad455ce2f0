"""The ``observations:`` section of ``params.yaml``, and the objects it describes.

One quantity (the short form)::

    observations:
      field: x            # the observed field
      every: 2            # every 2nd value (arrays) or node (Firedrake fields)
      std: 1.0

Several, each with its operator, error, schedule and optional file and outlier check::

    observations:
      quantities:
        bed:
          field: bed
          tracks: {spacing: 4000.0, step: 500.0, along: x}   # radar flight lines
          std: 10.0
          schedule: {times: [2.0]}                           # once, at year 2
        surface:
          field: surface
          every: 4                                           # every 4th node
          std: 5.0
          schedule: {start: 2.0, every: 2.0}
          outlier_threshold: 3.0
        speed:
          field: velocity
          points: [[1000.0, 500.0], [3000.0, 500.0]]
          speed: true                                        # |u| at the points
          std: 20.0

Where a quantity's values are (``points``, ``tracks``, ``every``, ``indices``, ``region``):

============  ============================================================================
``points``    ``[[x, y], ...]``: point values (Firedrake fields)
``tracks``    points along survey lines: ``spacing``, ``step``, ``along`` (x or y), and the
              box ``lower``/``upper`` (default: the mesh's bounding box)
``every``     every ``k``-th value (arrays) or node in position order (Firedrake fields)
``indices``   those values of an array field
``region``    the nodes inside ``{lower: [...], upper: [...]}`` (Firedrake fields)
(nothing)     every value or node
============  ============================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np

from ..errors import ConfigError
from ..typed import build, setting
from .schedule import Schedule

__all__ = ["QuantitySettings", "ObservationSettings", "TrackSettings", "RegionSettings", "make_observations"]


@dataclass(frozen=True)
class RegionSettings:
    lower: tuple[float, ...] = setting(doc="lower corner of the box")
    upper: tuple[float, ...] = setting(doc="upper corner of the box")


@dataclass(frozen=True)
class TrackSettings:
    spacing: float = setting(doc="distance between neighbouring lines")
    step: float = setting(doc="distance between points along a line")
    along: Literal["x", "y"] = setting("x", doc="the direction of the lines")
    lower: tuple[float, float] | None = setting(None, doc="lower corner of the surveyed box (default: the mesh's)")
    upper: tuple[float, float] | None = setting(None, doc="upper corner of the surveyed box (default: the mesh's)")
    offset: float | None = setting(None, doc="position of the first line from the box's edge (default: spacing / 2)")

    def __post_init__(self):
        for name in ("spacing", "step"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"tracks.{name}: must be positive, got {getattr(self, name)!r}")


_WHERE = ("every", "indices", "points", "tracks", "region")


@dataclass(frozen=True)
class QuantitySettings:
    field: str | None = setting(None, doc="the observed field of the model's state (default: the quantity's "
                                          "name; x in the one-quantity form)")
    every: int | None = setting(None, doc="observe every k-th value of an array field, or every k-th node (in "
                                          "position order) of a Firedrake field")
    indices: tuple[int, ...] | None = setting(None, doc="observe the values at these indices of an array field")
    points: tuple[tuple[float, ...], ...] | None = setting(
        None, doc="observe a Firedrake field at these points, [[x, y], ...]")
    tracks: TrackSettings | None = setting(
        None, doc="observe a Firedrake field along survey lines: {spacing, step, along, lower, upper, offset}")
    region: RegionSettings | None = setting(
        None, doc="observe a Firedrake field at its nodes inside the box {lower, upper}")
    speed: bool = setting(False, doc="observe the speed |u| of a vector field at the sites")
    std: float | tuple[float, ...] | None = setting(
        None, doc="observation-error standard deviation(s) (default 1, or the file's)")
    covariance: tuple[tuple[float, ...], ...] | None = setting(None, doc="full observation-error covariance")
    schedule: Schedule | None = setting(
        None, doc="when it is observed: {times: [...]} or {start, every, end} (default: every analysis)")
    file: str | None = setting(
        None, input_file=True,
        doc="NetCDF/HDF5 observation file, group per quantity (value, time, position or index, std); "
            "null: a twin experiment draws them from the truth (relative to the working directory)")
    outlier_threshold: float | None = setting(
        None, doc="reject an observation whose innovation exceeds this many std of sqrt(HPH^T + R)")
    assimilate: bool = setting(True, doc="false: observed and stored, used by the inversion (inversion.quantity) "
                                         "but not by the analysis")

    def __post_init__(self):
        chosen = [k for k in _WHERE if getattr(self, k) is not None]
        if len(chosen) > 1 and set(chosen) != {"every", "region"}:
            raise ConfigError(f"give one of {', '.join(_WHERE)} (or every with region); got {', '.join(chosen)}")
        if self.every is not None and self.every < 1:
            raise ConfigError(f"every: must be at least 1, got {self.every}")
        if self.indices is not None and len(self.indices) == 0:
            raise ConfigError("indices: empty; list at least one index")
        if self.indices is not None and len(set(self.indices)) < len(self.indices):
            twice = sorted({i for i in self.indices if self.indices.count(i) > 1})
            raise ConfigError(f"indices: {twice} listed more than once; list each index once")
        if self.points is not None and len(self.points) == 0:
            raise ConfigError("points: empty; list at least one point")
        if self.std is not None and self.covariance is not None:
            raise ConfigError("give std or covariance, not both")
        std = np.atleast_1d(np.asarray(1.0 if self.std is None else self.std, dtype=float))
        if not np.all(np.isfinite(std) & (std > 0)):
            raise ConfigError(f"std: must be positive, got {self.std}")
        t = self.outlier_threshold
        if t is not None and not t > 0:
            raise ConfigError(f"outlier_threshold: must be a positive number of standard deviations, got {t!r}")
        if self.file is not None and not os.path.isfile(self.file):
            raise ConfigError(f"file: no such file {self.file!r}")


@dataclass(frozen=True)
class ObservationSettings(QuantitySettings):
    """One quantity (the keys of :class:`QuantitySettings`), or several under ``quantities``."""

    quantities: dict | None = setting(
        None, doc="several observed quantities, {name: {field, every/indices/points/tracks/region, std, schedule, "
                  "file, outlier_threshold, speed}}")

    def __post_init__(self):
        try:
            super().__post_init__()
        except ConfigError as exc:
            raise ConfigError(_prefix("observations", str(exc))) from None
        if self.quantities is None:
            return
        if not self.quantities:
            raise ConfigError("observations.quantities: empty; describe at least one observed quantity")
        short = [f.name for f in fields(QuantitySettings) if getattr(self, f.name) != f.default]
        if short:
            raise ConfigError(f"observations: give either quantities or the one-quantity keys ({', '.join(short)}), "
                              "not both: move them under quantities.<name>")
        built = {}
        for name, q in self.quantities.items():
            key = f"observations.quantities.{name}"
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(f"{key}: a quantity's name must be an identifier")
            try:
                built[name] = build(QuantitySettings, q, key)
            except ConfigError as exc:
                raise ConfigError(_prefix(key, str(exc))) from None
        object.__setattr__(self, "quantities", built)

    def named(self) -> dict[str, QuantitySettings]:
        """``{name: settings}`` of every quantity (the short form is named after its field)."""
        if self.quantities is not None:
            return {name: replace(q, field=q.field or name) for name, q in self.quantities.items()}
        one = {f.name: getattr(self, f.name) for f in fields(QuantitySettings)}
        one["field"] = self.field or "x"
        return {one["field"]: QuantitySettings(**one)}


def _prefix(key: str, msg: str) -> str:
    """``key.sub: what`` for a message ``sub: what`` (or ``key: sub: what``), else ``key: msg``."""
    if msg.startswith(f"{key}: "):
        msg = msg[len(key) + 2:]
    elif msg.startswith(key):
        return msg
    head = msg.split(":", 1)[0]
    return f"{key}.{msg}" if head and " " not in head else f"{key}: {msg}"


def make_observations(settings: ObservationSettings, ensemble, times=None):
    """The :class:`~fdassim.observations.Observations` described by ``settings``.

    ``times`` (``t_0 .. t_K``) lets observation files be checked against the analysis times
    here, naming the file; without it the check happens in :meth:`Observations.plan`.

    Raises
    ------
    ConfigError
        Naming the key or the file, for a field the model lacks, an operator that does not fit
        the kind of field, or a bad observation file (see :mod:`fdassim.observations.files`).
    """
    from .core import Observations, Quantity

    out = []
    for name, q in settings.named().items():
        key = "observations" if settings.quantities is None else f"observations.quantities.{name}"
        if q.file is not None:
            out.append(_from_file(name, q, ensemble, key, times))
        else:
            out.append(Quantity(name, _operator(q, ensemble, key), _error(q, key), q.schedule or Schedule(),
                                outlier_threshold=q.outlier_threshold, assimilate=q.assimilate))
    return Observations(out)


def _error(q: QuantitySettings, key: str, std=None, covariance=None):
    from ..analysis.base import ObsError
    from ..errors import ObservationError

    given = [v for v in (q.std, q.covariance, std, covariance) if v is not None]
    if len(given) > 1:
        raise ConfigError(f"{key}: the errors are given both in {q.file!r} and in params.yaml; keep one")
    try:
        if q.covariance is not None or covariance is not None:
            return ObsError.full(np.asarray(q.covariance if covariance is None else covariance, dtype=float))
        return ObsError.from_std(1.0 if not given else given[0])
    except ObservationError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _from_file(name: str, q: QuantitySettings, ensemble, key: str, times):
    """A quantity whose values, times, positions (or indices) and errors come from ``q.file``."""
    from .arrays import Subset
    from .core import Quantity
    from .files import read_quantity
    from .nodal import Speed
    from .points import PointValues
    from .schedule import match_times

    given = [k for k in (*_WHERE, "schedule") if getattr(q, k) is not None]
    if given:
        raise ConfigError(f"{key}: {', '.join(given)} cannot be given with file: the file's positions (or "
                          "indices) and times say where and when")
    data = read_quantity(q.file, name)
    where = f"{q.file}:/{name}"
    if times is not None:
        match_times(data.times, np.asarray(times, dtype=float)[1:], f"{where}/time")
    model = ensemble.model
    if q.field not in [f.name for f in model.fields]:
        raise ConfigError(f"{key}.field: {q.field!r} is not a field of the model; choose one of "
                          f"{[f.name for f in model.fields]}")
    template = ensemble.template
    value = template[q.field]
    if hasattr(value, "function_space"):
        if data.positions is None:
            raise ConfigError(f"{where}: field {q.field!r} is a Firedrake field: give position (obs, space), not index")
        _check_inside(value, data.positions, f"{where}/position")
        H = PointValues(q.field, data.positions)
        H = Speed(H) if q.speed else H
    else:
        n = np.asarray(value).size
        if data.index is None:
            raise ConfigError(f"{where}: field {q.field!r} is an array: give index (obs,), not position")
        bad = np.flatnonzero((data.index < 0) | (data.index >= n))
        if bad.size:
            raise ConfigError(f"{where}/index[{bad[0]}] is {int(data.index[bad[0]])}: outside 0..{n - 1}")
        H = Subset(tuple(int(i) for i in data.index), q.field)
    m = data.values.shape[1]
    if q.speed and data.positions is not None and m != data.positions.shape[0]:
        raise ConfigError(f"{where}/value: {m} observations for {data.positions.shape[0]} positions")
    if all(v is None for v in (q.std, q.covariance, data.std, data.covariance)):
        raise ConfigError(f"{key}: no observation error: give std (or covariance) in {where} or in params.yaml")
    return Quantity(name, H, _error(q, key, data.std, data.covariance), Schedule(times=tuple(data.times)),
                    data.values, outlier_threshold=q.outlier_threshold, assimilate=q.assimilate)


def _check_inside(f, points: np.ndarray, where: str) -> None:
    """Raise naming the first position of ``points`` outside the mesh of ``f`` (collective)."""
    from mpi4py import MPI

    mesh = f.function_space().mesh()
    if points.shape[1] != mesh.geometric_dimension():
        raise ConfigError(f"{where}: positions have {points.shape[1]} coordinates, the mesh "
                          f"{mesh.geometric_dimension()}")
    cells = np.asarray(mesh.locate_cells_ref_coords_and_dists(points)[0])
    found = np.empty(points.shape[0], dtype=np.int8)
    mesh.comm.Allreduce((cells >= 0).astype(np.int8), found, op=MPI.MAX)
    if not found.all():
        i = int(np.flatnonzero(found == 0)[0])
        raise ConfigError(f"{where}[{i}] = {points[i].tolist()} is outside the domain "
                          f"({int((found == 0).sum())} of {points.shape[0]} positions are)")


def _operator(q: QuantitySettings, ensemble, key: str):
    from .arrays import Identity, Subset

    model = ensemble.model
    names = [f.name for f in model.fields]
    if q.field not in names:
        raise ConfigError(f"{key}.field: {q.field!r} is not a field of the model; choose one of {names}")
    template = ensemble.template
    value = template[q.field]
    if hasattr(value, "function_space"):
        return _mesh_operator(q, value, key)
    for name in ("points", "tracks", "region"):
        if getattr(q, name) is not None:
            raise ConfigError(f"{key}.{name}: field {q.field!r} is an array: use `every` or `indices`")
    if q.speed:
        raise ConfigError(f"{key}.speed: field {q.field!r} is an array; speed needs a Firedrake vector field")
    n = np.asarray(value).size
    if q.indices is not None:
        bad = [i for i in q.indices if not 0 <= i < n]
        if bad:
            raise ConfigError(f"{key}.indices: {bad} outside 0..{n - 1}")
        idx = np.asarray(q.indices)
    else:
        idx = np.arange(0, n, q.every or 1)
    return Identity(q.field) if idx.size == n else Subset(tuple(idx.tolist()), q.field)


def _mesh_operator(q: QuantitySettings, f, key: str):
    from .nodal import NodalValues, Speed
    from .onmesh import Box, bounding_box
    from .points import PointValues, flight_lines

    if q.indices is not None:
        raise ConfigError(f"{key}.indices: field {q.field!r} is a Firedrake field: use points, tracks, every or region")
    if q.points is not None:
        H = PointValues(q.field, np.asarray(q.points, dtype=float))
    elif q.tracks is not None:
        t = q.tracks
        box = bounding_box(f.function_space().mesh()) if t.lower is None or t.upper is None else None
        lower = box[0] if t.lower is None else t.lower
        upper = box[1] if t.upper is None else t.upper
        try:
            points = flight_lines(lower, upper, t.spacing, t.step, along=0 if t.along == "x" else 1, offset=t.offset)
        except Exception as exc:
            raise ConfigError(f"{key}.tracks: {exc}") from None
        H = PointValues(q.field, points)
    else:
        mask = None if q.region is None else Box(q.region.lower, q.region.upper)
        H = NodalValues(q.field, mask=mask, every=q.every or 1)
    return Speed(H) if q.speed else H

