"""The run store's layout: every dataset's path, dimensions and type, for writing and reading.

The store is an HDF5 file whose datasets carry NetCDF-4 dimension scales, so xarray (and
NetCDF tools) read it with named dimensions and coordinates::

    import xarray
    tree = xarray.open_datatree("run.h5", engine="h5netcdf")         # every group
    mean = xarray.open_dataset("run.h5", engine="h5netcdf", group="mean/analysis")
    mean.thickness.isel(cycle=-1)                                     # by named dimension

Dimensions (``K`` cycles, ``N`` members, field ``f`` with ``n_f`` values in ``d`` space
dimensions)::

    cycle (K)            coordinate: the cycle number; ``time`` (cycle): the analysis times
    ensemble_cycle (E)   the cycles whose ensembles are kept (output.ensembles_every > 1);
                         coordinate: the cycle numbers; ``ensemble_time``: their times
    member (N)           coordinate: the member number
    <f>_index (n_f)      the field's values; coordinates ``<f>_x``, ``<f>_y`` (``<f>_z``):
                         their positions, when the model knows them
    space (d), step (K + 1: t_0 and the analysis times), phase (forecast, analysis, io),
    window (smoother windows), time_<q> and obs_<q> (observation times and values of
    quantity q), restart_row, restart_column, carried_value, slot (the restart state)

Every group whose datasets run along ``cycle`` (or ``ensemble_cycle``, ``member``, a field's
values) holds their coordinates too (``cycle``, ``time``, ``ensemble_cycle``, ``ensemble_time``,
``member``, ``<f>_x``, ...: hard links to one dataset each, no copies), so one group opened
alone has them; an observation group's coordinate is its ``time``.

The paths (see :mod:`fdassim.io` for what each holds and for the commit protocol) are made
by the functions of this module only: :func:`ensemble`, :func:`mean`, :func:`spread`,
:func:`truth`, :func:`positions`, :func:`diagnostic`, :func:`window`, :func:`observation`,
:func:`slot`, :func:`carried` and the constants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

__all__ = ["Var", "Shape", "ensemble", "mean", "spread", "truth", "positions", "diagnostic", "window",
           "observation", "slot", "carried", "index_dim", "kept_cycles", "variables", "label", "plain_attrs",
           "derived", "STATUS", "TIMES", "COMPLETED", "DIVERGENCE", "TIMING", "INIT", "BYTES", "RESTART_CYCLE",
           "OBSERVATIONS", "KINDS", "DIAGNOSTICS", "SMOOTHER_DIAGNOSTICS", "WINDOW_COSTS", "PHASES", "CYCLE",
           "ENSEMBLE_CYCLE", "MEMBER"]

# -- paths ------------------------------------------------------------------------------------------
STATUS, TIMES, COMPLETED, DIVERGENCE = "status", "times", "completed", "divergence"
TIMING, INIT, BYTES = "timing/cycle", "timing/init", "timing/bytes"
RESTART_CYCLE = "restart/cycle"
OBSERVATIONS = "observations"
KINDS = ("forecast", "analysis")
DIAGNOSTICS = ("rmse_forecast", "rmse_analysis", "spread_forecast", "spread_analysis")
SMOOTHER_DIAGNOSTICS = ("rmse_smoother", "spread_smoother")  #: per observation time, of a smoother run
WINDOW_COSTS = ("simulations", "propagations", "iterations")  #: per smoother window
PHASES = ("forecast", "analysis", "io")  #: the columns of ``timing/cycle``
STATUS_BYTES = 2048  # room for the reason of a failure

# -- dimensions -------------------------------------------------------------------------------------
CYCLE, ENSEMBLE_CYCLE, MEMBER, SPACE, STEP = "cycle", "ensemble_cycle", "member", "space", "step"
#: coordinates made by :func:`label` (not data: a grown store gets them made again)
TIME, ENSEMBLE_TIME = "time", "ensemble_time"
_NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."
_SCALE_ATTRS = ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "_Netcdf4Coordinates")


def ensemble(kind: str, field: str) -> str:
    """The ``kind`` members (``forecast``, ``analysis``, ``smoother``) of ``field``."""
    return f"ensemble/{kind}/{field}"


def mean(kind: str, field: str) -> str:
    return f"mean/{kind}/{field}"


def spread(kind: str, field: str) -> str:
    """The members' standard deviation (stored when the members are not)."""
    return f"spread/{kind}/{field}"


def truth(field: str) -> str:
    return f"truth/{field}"


def positions(field: str) -> str:
    """The positions ``(n_f, d)`` of ``field``'s values."""
    return f"coordinates/{field}"


def diagnostic(name: str) -> str:
    return f"diagnostics/{name}"


def window(name: str) -> str:
    """A smoother window's cost ``name`` (one of :data:`WINDOW_COSTS`)."""
    return f"windows/{name}"


def observation(quantity: str, key: str = "") -> str:
    """The group of an observed ``quantity`` or its dataset ``key`` (values, time, ...)."""
    return f"{OBSERVATIONS}/{quantity}" + (f"/{key}" if key else "")


def slot(s: int) -> str:
    """Restart slot ``s`` (0 or 1): the state ``(n, N + truth)`` after a committed cycle."""
    return f"restart/slot{s}"


def carried(s: int) -> str:
    """The carried fields ``(N + truth, n_c)`` of restart slot ``s``."""
    return f"restart/carried{s}"


def index_dim(field: str) -> str:
    """The dimension along ``field``'s values."""
    return f"{field}_index"


def position_name(field: str, axis: int) -> str:
    """The coordinate holding ``field``'s ``axis``-th position (x, y, z), along its values."""
    return f"{field}_{'xyz'[axis]}"


# -- the datasets of a run --------------------------------------------------------------------------
@dataclass(frozen=True)
class Var:
    """A dataset of the store: path, dimension names, shape, type, fill value, and whether
    its first axis counts cycles (it grows when a run is continued: :mod:`fdassim.grow`)."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str = "f8"
    fill: float | int | None = np.nan
    cycles: bool = False

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def kept_cycles(n_cycles: int, every: int) -> tuple[int, ...]:
    """The cycles whose ensembles are stored when keeping every ``every``-th (0: none):
    cycles ``0, every, 2 every, ...`` and the last."""
    if every <= 0 or n_cycles <= 0:
        return ()
    return tuple(sorted(set(range(0, n_cycles, every)) | {n_cycles - 1}))


@dataclass(frozen=True)
class Shape:
    """What decides a store's datasets.

    Parameters
    ----------
    fields
        ``(name, n_f)`` of each field, in the state's order.
    n_cycles, n_members
        ``K`` and ``N``.
    has_truth
        A twin experiment: the truth is stored.
    space_dim
        Dimension of the fields' positions (``None``: unknown).
    every
        Ensembles are stored at every ``every``-th cycle (:func:`kept_cycles`; 0: never).
    n_carried
        Values of a member's carried fields (``None``: the model carries none).
    windows
        Smoother windows (``None``: a filter run).
    """

    fields: tuple[tuple[str, int], ...]
    n_cycles: int
    n_members: int
    has_truth: bool
    space_dim: int | None
    every: int = 1
    n_carried: int | None = None
    windows: int | None = None

    @property
    def n_total(self) -> int:
        return self.n_members + self.has_truth

    @property
    def n_state(self) -> int:
        return sum(n for _, n in self.fields)

    @property
    def kept(self) -> tuple[int, ...]:
        return kept_cycles(self.n_cycles, self.every)

    @property
    def ensemble_dim(self) -> str:
        """The first dimension of the stored ensembles."""
        return CYCLE if self.every == 1 else ENSEMBLE_CYCLE

    @property
    def restart_in_ensembles(self) -> bool:
        """The analysis ensembles of every cycle are kept: they hold every restart state
        (no restart slots)."""
        return self.every == 1


def variables(shape: Shape, observed: list[Var] = ()) -> list[Var]:
    """Every dataset of a store of ``shape`` (``observed``: the observations' datasets)."""
    K, N = shape.n_cycles, shape.n_members
    out = [Var(STATUS, (), (), f"S{STATUS_BYTES}", None), Var(TIMES, (STEP,), (K + 1,), cycles=True),
           Var(COMPLETED, (), (), "i8", 0), Var(DIVERGENCE, (), (), "i8", -1)]
    E, edim = len(shape.kept), shape.ensemble_dim
    kinds = KINDS + (("smoother",) if shape.windows is not None else ())
    for f, n in shape.fields:
        i = index_dim(f)
        for kind in kinds:
            if E:
                out.append(Var(ensemble(kind, f), (edim, i, MEMBER), (E, n, N), cycles=True))
            out.append(Var(mean(kind, f), (CYCLE, i), (K, n), cycles=True))
            if shape.every != 1 and kind != "smoother":  # the members are not always kept: their spread is
                out.append(Var(spread(kind, f), (CYCLE, i), (K, n), cycles=True))
        if shape.has_truth:
            out.append(Var(truth(f), (CYCLE, i), (K, n), cycles=True))
        if shape.space_dim is not None:
            out.append(Var(positions(f), (i, SPACE), (n, shape.space_dim)))
    out += list(observed)
    out += [Var(diagnostic(name), (CYCLE,), (K,), cycles=True) for name in DIAGNOSTICS]
    out += [Var(TIMING, (CYCLE, "phase"), (K, len(PHASES)), cycles=True), Var(INIT, (), ()),
            Var(BYTES, (CYCLE,), (K,), "i8", 0, cycles=True)]
    if shape.windows is not None:
        out += [Var(diagnostic(name), (CYCLE,), (K,), cycles=True) for name in SMOOTHER_DIAGNOSTICS]
        out += [Var(window(name), ("window",), (shape.windows,)) for name in WINDOW_COSTS]
    if not shape.restart_in_ensembles:
        out += [Var(slot(s), ("restart_row", "restart_column"), (shape.n_state, shape.n_total)) for s in (0, 1)]
    if shape.n_carried is not None:  # member-major: each member's values contiguous
        out += [Var(carried(s), ("restart_column", "carried_value"), (shape.n_total, shape.n_carried))
                for s in (0, 1)]
    out.append(Var(RESTART_CYCLE, ("slot",), (2,), "i8", -1))
    return out


def create(h5, var: Var):
    """Create the dataset ``var`` in the open ``h5py.File`` ``h5`` (collective in parallel)."""
    kw = {} if var.fill is None else {"fillvalue": var.fill}
    if var.dtype.startswith("S"):
        d = h5.create_dataset(var.name, data=np.bytes_(b"running"), dtype=var.dtype, track_times=False)
    else:
        d = h5.create_dataset(var.name, var.shape, dtype=var.dtype, track_times=False, **kw)
    d.attrs["dimensions"] = json.dumps(list(var.dims))
    if var.cycles:
        d.attrs["cycle_axis"] = 0
    return d


# -- NetCDF-4 dimension scales and coordinates ------------------------------------------------------
def plain_attrs(d) -> dict:
    """The attributes of dataset ``d`` without its dimension scales' (object references that
    do not survive a copy into another file)."""
    return {k: v for k, v in d.attrs.items() if k not in _SCALE_ATTRS}


def derived(name: str, obj) -> bool:
    """Whether the object at ``name`` is made by :func:`label` (a dimension scale or a
    coordinate): a grown store gets it made again."""
    import h5py

    return isinstance(obj, h5py.Dataset) and ("dimensions" not in obj.attrs
                                              or obj.attrs.get("CLASS") == b"DIMENSION_SCALE")


def label(h5, kept: tuple[int, ...] | None = None) -> None:
    """Attach dimension scales and coordinates to every dataset of the store ``h5`` (an
    ``h5py.File`` open for writing by one process: rank 0 after the parallel file is closed).

    Each dataset's dimensions are named by its ``dimensions`` attribute (:func:`create`).
    ``kept``: the cycles the ensembles were stored at (when not every cycle).
    """
    import h5py

    found: list[tuple[str, h5py.Dataset, list[str]]] = []
    h5.visititems(lambda name, obj: found.append((name, obj, json.loads(obj.attrs["dimensions"])))
                  if isinstance(obj, h5py.Dataset) and "dimensions" in obj.attrs else None)
    sizes: dict[str, int] = {}
    for name, d, dims in found:
        for dim, n in zip(dims, d.shape):
            if sizes.setdefault(dim, n) != n:
                raise ValueError(f"store dimension {dim!r}: {name} has {n} values, another dataset {sizes[dim]}")
    times = h5[TIMES][...]
    K = times.size - 1
    values = {CYCLE: np.arange(K), MEMBER: np.arange(int(h5.attrs["n_members"]))}
    if ENSEMBLE_CYCLE in sizes:
        values[ENSEMBLE_CYCLE] = np.asarray(kept, dtype=np.int64)
    for dim, n in sizes.items():
        if dim in values:
            h5.create_dataset(dim, data=values[dim], track_times=False).make_scale(dim)
        else:
            h5.create_dataset(dim, (n,), dtype="f4", track_times=False).make_scale(f"{_NOT_A_VARIABLE}{n:10d}")
    for name, d, dims in found:
        for axis, dim in enumerate(dims):
            d.dims[axis].attach_scale(h5[dim])
    # coordinates along the dimensions: at the root, and linked into every group that uses them
    coords = {TIME: (CYCLE, times[1:])}
    if ENSEMBLE_CYCLE in sizes:
        coords[ENSEMBLE_TIME] = (ENSEMBLE_CYCLE, times[1:][values[ENSEMBLE_CYCLE]])
    for name, (dim, data) in coords.items():
        h5.create_dataset(name, data=data, track_times=False).dims[0].attach_scale(h5[dim])
    along = {CYCLE: [CYCLE, TIME], ENSEMBLE_CYCLE: [ENSEMBLE_CYCLE, ENSEMBLE_TIME], MEMBER: [MEMBER]}
    for name, d, dims in found:
        field = d.attrs.get("positions_of")
        if field is not None:  # one coordinate per axis: a DataArray along the values keeps them
            field, xy = str(field), d[...]
            along[index_dim(field)] = [position_name(field, a) for a in range(xy.shape[1])]
            for a, c in enumerate(along[index_dim(field)]):
                h5.create_dataset(c, data=xy[:, a], track_times=False).dims[0].attach_scale(h5[index_dim(field)])
    scales = set(values)
    groups: dict[str, set[str]] = {"": {c for names in along.values() for c in names if c in h5}}
    for name, d, dims in found:
        group = name.rpartition("/")[0]
        if group and not group.startswith(("coordinates", OBSERVATIONS)):
            groups.setdefault(group, set()).update(c for dim in dims for c in along.get(dim, ()))
        elif group.startswith(OBSERVATIONS + "/"):
            groups.setdefault(group, {"time", "analysis_cycle"})
    for group, names in groups.items():
        g = h5[group] if group else h5
        for c in sorted(names):
            if c not in g:
                g[c] = h5[c]
        if names - scales:
            g.attrs["coordinates"] = " ".join(sorted(names - scales))
