"""The run store's layout: every variable's name, dimensions and type, for writing and reading.

The store is a NetCDF-4 file (HDF5 with dimension scales) made with h5netcdf, so xarray
and NetCDF tools read it as it is::

    import xarray
    ds = xarray.open_dataset("run.h5", engine="h5netcdf")     # the run: ensembles, means, truth, ...
    ds.thickness_analysis_mean.isel(cycle=-1)                 # by named dimension
    tree = xarray.open_datatree("run.h5", engine="h5netcdf")  # with the groups (observations, restart)

Root group (``K`` cycles, ``N`` members, field ``f`` with ``n_f`` values, ``E`` cycles whose
ensembles are kept)::

    dimensions   cycle (K), member (N), f_index (n_f) per field, ensemble_cycle (E)
    coordinates  cycle, time (cycle): the analysis times; member; f_x, f_y[, f_z] (f_index):
                 positions of the field's values, when known; ensemble_cycle (the cycles
                 whose ensembles are stored), ensemble_time
    f_forecast, f_analysis               (ensemble_cycle, f_index, member)
    f_forecast_mean, f_analysis_mean     (cycle, f_index)
    f_forecast_spread, f_analysis_spread (cycle, f_index)   ensemble standard deviation
    f_truth                              (cycle, f_index)   twin experiments only
    rmse_forecast, rmse_analysis, spread_forecast, spread_analysis   (cycle)
    seconds_forecast, seconds_analysis, seconds_io, bytes_written    (cycle)
    initial_time, seconds_init, completed                            ()
    /observations: y (cycle, observation)
    /restart: slot0, slot1 (row, column) the state after the last completed cycles, when
              the analysis ensembles are not stored at every cycle (else they are the restart)

Every variable is created, and its space allocated, when the file is made; a cycle only
writes values into that space (see :mod:`fdassim.io` for the commit protocol).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Var", "RunShape", "ensemble", "mean", "spread", "truth", "position", "index_dim",
           "seconds", "variables", "dimensions", "create", "DIAGNOSTICS", "TIMING", "KINDS", "AXES"]

DIAGNOSTICS = ("rmse_forecast", "rmse_analysis", "spread_forecast", "spread_analysis")
TIMING = ("forecast", "analysis", "io")
KINDS = ("forecast", "analysis")
AXES = "xyz"
RESTART_SLOTS = ("restart/slot0", "restart/slot1")
WINDOW_COSTS = ("simulations", "propagations", "iterations")  # per smoother window (as fdassim.io)
STATUS_BYTES = 2048  # room for the reason of a failure
OBSERVED = "observations/y"


# -- names ----------------------------------------------------------------------------------------
def ensemble(field: str, kind: str) -> str:
    """The ``kind`` ensemble (``forecast`` or ``analysis``) of ``field``."""
    return f"{field}_{kind}"


def mean(field: str, kind: str) -> str:
    return f"{field}_{kind}_mean"


def spread(field: str, kind: str) -> str:
    return f"{field}_{kind}_spread"


def truth(field: str) -> str:
    return f"{field}_truth"


def position(field: str, axis: int) -> str:
    """The ``axis``-th coordinate (x, y, z) of ``field``'s values."""
    return f"{field}_{AXES[axis]}"


def index_dim(field: str) -> str:
    """The dimension along ``field``'s values."""
    return f"{field}_index"


def seconds(part: str) -> str:
    """Seconds spent in ``part`` (forecast, analysis, io) at each cycle."""
    return f"seconds_{part}"


# -- what decides the layout ----------------------------------------------------------------------
@dataclass(frozen=True)
class Var:
    """A variable of the store: its path, dimensions and type (``fill``: its value until written)."""

    name: str
    dims: tuple[str, ...]
    dtype: str = "f8"
    fill: float | int | None = np.nan
    attrs: dict = field(default_factory=dict, compare=False)

    @property
    def group(self) -> str:
        return self.name.rpartition("/")[0]


@dataclass(frozen=True)
class RunShape:
    """The sizes that decide a store's layout.

    Parameters
    ----------
    fields
        ``(name, n_f)`` of each field, in the model's order.
    n_cycles, n_members
        ``K`` and ``N``.
    has_truth
        A twin experiment (the truth is stored).
    space_dim
        Dimension of the fields' positions (``None``: unknown).
    n_obs
        Observations per cycle.
    ensemble_cycles
        The cycles whose forecast and analysis ensembles are kept.
    n_carried
        Values of a member's carried fields (``None``: the model carries none); they are
        kept in restart slots of their own, as they are in no ensemble.
    windows
        Number of smoother windows (``None``: a filter run).
    """

    fields: tuple[tuple[str, int], ...]
    n_cycles: int
    n_members: int
    has_truth: bool
    space_dim: int | None
    n_obs: int
    ensemble_cycles: tuple[int, ...]
    n_carried: int | None = None
    windows: int | None = None

    @property
    def n_total(self) -> int:
        return self.n_members + self.has_truth

    @property
    def n_state(self) -> int:
        return sum(n for _, n in self.fields)

    @property
    def restart_in_ensembles(self) -> bool:
        """The analysis ensembles of every cycle are kept: they are the restart state."""
        return len(self.ensemble_cycles) == self.n_cycles


def kept_cycles(n_cycles: int, every: int) -> tuple[int, ...]:
    """The cycles whose ensembles are kept when keeping every ``every``-th (0: none): cycles
    ``every - 1, 2 every - 1, ...`` and the last."""
    if every <= 0 or n_cycles == 0:
        return ()
    return tuple(sorted(set(range(every - 1, n_cycles, every)) | {n_cycles - 1}))


def dimensions(shape: RunShape) -> dict[str, dict[str, int]]:
    """The dimensions of each group (``""``: the root)."""
    root = {"cycle": shape.n_cycles, "member": shape.n_members}
    if shape.ensemble_cycles:
        root["ensemble_cycle"] = len(shape.ensemble_cycles)
    root.update({index_dim(f): n for f, n in shape.fields})
    out = {"": root, "observations": {"observation": shape.n_obs}, "restart": {"slot": 2}}
    if not shape.restart_in_ensembles:
        out["restart"].update(row=shape.n_state, column=shape.n_total)
    if shape.n_carried is not None:
        out["restart"].update(member_or_truth=shape.n_total, carried_value=shape.n_carried)
    if shape.windows is not None:
        out["smoother"] = {"window": shape.windows}
    return out


def variables(shape: RunShape) -> list[Var]:
    """Every variable of a store of ``shape``, coordinates first."""
    keep = bool(shape.ensemble_cycles)
    out = [Var("cycle", ("cycle",), "i8", None), Var("time", ("cycle",)), Var("member", ("member",), "i8", None)]
    if keep:
        out += [Var("ensemble_cycle", ("ensemble_cycle",), "i8", None), Var("ensemble_time", ("ensemble_cycle",))]
    for f, _ in shape.fields:
        if shape.space_dim:
            out += [Var(position(f, a), (index_dim(f),)) for a in range(shape.space_dim)]
    for f, _ in shape.fields:
        i = index_dim(f)
        if keep:
            out += [Var(ensemble(f, k), ("ensemble_cycle", i, "member")) for k in KINDS]
        out += [Var(mean(f, k), ("cycle", i)) for k in KINDS] + [Var(spread(f, k), ("cycle", i)) for k in KINDS]
        if shape.has_truth:
            out.append(Var(truth(f), ("cycle", i)))
    out += [Var(d, ("cycle",)) for d in DIAGNOSTICS] + [Var(seconds(p), ("cycle",)) for p in TIMING]
    out += [Var("bytes_written", ("cycle",), "i8", -1), Var("initial_time", ()), Var("seconds_init", ()),
            Var("completed", (), "i8", None), Var("divergence", (), "i8", -1),
            Var("status", (), f"S{STATUS_BYTES}", None), Var(OBSERVED, ("cycle", "observation"))]
    if shape.windows is not None:  # a smoother run: the smoothed ensembles and the windows' costs
        for f, _ in shape.fields:
            if keep:
                out.append(Var(f"smoother/{ensemble(f, 'smoothed')}", ("ensemble_cycle", index_dim(f), "member")))
            out.append(Var(f"smoother/{mean(f, 'smoothed')}", ("cycle", index_dim(f))))
        out += [Var(f"smoother/{name}", ("window",)) for name in WINDOW_COSTS]
    # the restart: which cycle each slot's state follows; the slots unless the analysis
    # ensembles are kept at every cycle; the carried fields (in no ensemble) always
    out.append(Var("restart/cycle", ("slot",), "i8", -1))
    if not shape.restart_in_ensembles:
        out += [Var(s, ("row", "column")) for s in RESTART_SLOTS]
    if shape.n_carried is not None:
        out += [Var(f"restart/carried{i}", ("member_or_truth", "carried_value")) for i in (0, 1)]
    return out


def coordinate_names(shape: RunShape) -> list[str]:
    """The root variables that are coordinates but not dimensions (CF ``coordinates``)."""
    names = ["time"] + (["ensemble_time"] if shape.ensemble_cycles else [])
    if shape.space_dim:
        names += [position(f, a) for f, _ in shape.fields for a in range(shape.space_dim)]
    return names


def bytes_per_cycle(shape: RunShape, k: int) -> int:
    """Bytes cycle ``k`` writes: means, spreads, truth, diagnostics, timings, observations, the
    ensembles when they are kept at ``k``, and the restart state (slots, carried fields)."""
    n, N = shape.n_state, shape.n_members
    per_value = 2 * 2 + shape.has_truth  # means and spreads of both kinds, truth
    b = n * per_value + len(DIAGNOSTICS) + len(TIMING) + 1 + shape.n_obs
    if k in shape.ensemble_cycles:
        b += 2 * n * N
    if not shape.restart_in_ensembles:
        b += n * shape.n_total
    if shape.n_carried is not None:
        b += shape.n_carried * shape.n_total
    return 8 * b


def create(nc, shape: RunShape, times: np.ndarray, rank: int = 0) -> None:
    """Create every dimension and variable of ``shape`` in the open h5netcdf file ``nc`` and
    fill the small coordinates.

    Collective: every rank of the file's communicator calls it with the same arguments;
    ``rank`` is the caller's (rank 0 writes the coordinates).
    """
    for group, dims in dimensions(shape).items():
        _group(nc, group).dimensions.update(dims)
    for v in variables(shape):
        g = _group(nc, v.group)
        kw = {} if v.fill is None else {"fillvalue": v.fill}
        var = g.create_variable(v.name.rpartition("/")[2], v.dims, v.dtype, **kw)
        var.attrs.update(v.attrs)
    nc.attrs["coordinates"] = " ".join(coordinate_names(shape))
    if rank == 0:
        times = np.asarray(times, dtype=float)
        values = {"cycle": np.arange(shape.n_cycles), "time": times[1:], "member": np.arange(shape.n_members),
                  "initial_time": times[0]}
        if shape.ensemble_cycles:
            kept = list(shape.ensemble_cycles)
            values.update(ensemble_cycle=np.asarray(kept, dtype=np.int64), ensemble_time=times[1:][kept])
        for name, v in values.items():
            nc.variables[name][...] = v


def _group(nc, path: str):
    """The group ``path`` of the h5netcdf file ``nc`` (made if missing; ``""``: the root)."""
    g = nc
    for part in filter(None, path.split("/")):
        g = g.groups[part] if part in g.groups else g.create_group(part)
    return g
