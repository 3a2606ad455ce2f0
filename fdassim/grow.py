"""Extending a stored run to more cycles (``run.cycles`` raised, then ``fdassim run --restart``).

The store's datasets are allocated for the run's cycles when it is made. To continue a run
beyond them, the store is rewritten with room for the new cycles: every dataset marked
``cycle_axis`` gets the new cycles along its first axis (unwritten, NaN; the stored
ensembles get the new cycles they are kept at, :func:`fdassim.store_layout.kept_cycles`),
everything else is copied as it is, the settings attributes are replaced by the new ones,
and the dimension scales and coordinates are made again (:func:`fdassim.store_layout.label`). The new file is
written beside the old under a temporary name and renamed over it when complete, so a run
killed while growing keeps its store as it was (the leftover is removed by the next run).
Growing costs one copy of the store; the run then continues from its last committed cycle.
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import faults
from . import store_layout as layout
from .collective import on_rank0
from .errors import ConfigError, StoreError

__all__ = ["grow"]

_BLOCK_BYTES = 64 * 2 ** 20  # copied at a time


def grow(path: str, times: np.ndarray, comm=None, attrs: dict | None = None, observations=None) -> int:
    """Give the store at ``path`` room for ``len(times) - 1`` cycles; return its old count.

    Collective over ``comm`` (rank 0 does the work). Call it with the store's lock held.

    Parameters
    ----------
    times
        The new run's ``t_0, ..., t_K``; its first times must be the stored ones.
    attrs
        Root attributes to replace (the new settings); ``n_cycles`` is set here.
    observations
        The new run's :class:`~fdassim.observations.ObsPlan`: each quantity's new observation
        times get rows (:func:`fdassim.observations.store.regrow`); ``None``: quantities
        observed at every cycle are observed at every new cycle.

    Raises
    ------
    ConfigError
        If the stored times are not the start of ``times``, or the store holds more cycles.
    StoreError
        If the store cannot be read or the new one written.
    """
    return on_rank0(comm, lambda: _grow(path, np.asarray(times, dtype=float), dict(attrs or {}), observations))


def _grow(path: str, times: np.ndarray, attrs: dict, observations) -> int:
    from .observations.store import regrow

    import h5py

    K_new = times.size - 1
    tmp = f"{path}.grow-{os.getpid()}"
    try:
        with h5py.File(path, "r", locking=False) as src:
            K = int(src.attrs["n_cycles"])
            if K_new < K:
                raise ConfigError(f"run.cycles: the store {path!r} holds {K} cycles and a run cannot shrink; "
                                  f"set run.cycles to {K} or more, or start again with --overwrite")
            if K_new == K:
                return K
            old_times = src[layout.TIMES][...]
            if not np.array_equal(old_times, times[:K + 1]):
                raise ConfigError(f"cannot extend {path!r}: its analysis times differ from this run's "
                                  "(run.t0 or run.interval changed)")
            every = int(src.attrs["ensembles_every"])
            kept = [int(k) for k in src[layout.ENSEMBLE_CYCLE][...]] if layout.ENSEMBLE_CYCLE in src else []
            new = [k for k in layout.kept_cycles(K_new, every) if k >= K] if every > 1 else []
            extra = {layout.STEP: K_new - K, layout.CYCLE: K_new - K, layout.ENSEMBLE_CYCLE: len(new)}
            with h5py.File(tmp, "w", locking=False) as dst:
                dst.attrs.update(dict(src.attrs))
                dst.attrs.update(attrs)
                dst.attrs["n_cycles"] = K_new
                src.visititems_links(lambda name, link: None if name.startswith(layout.OBSERVATIONS + "/") else
                                     _copy(src, dst, name, extra))
                regrow(src, dst, times[1:], observations)
                dst[layout.TIMES][...] = times
                layout.label(dst, kept + new)
    except (OSError, KeyError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise StoreError(f"cannot extend {path!r} to {K_new} cycles: {exc}") from None
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    faults.point("grow", K_new)
    os.replace(tmp, path)
    return K


def _copy(src, dst, name: str, extra: dict[str, int]) -> None:
    """Copy dataset ``name`` (unless :func:`~fdassim.store_layout.label` makes it), with
    ``extra[dim]`` new rows along a first dimension that counts cycles."""
    import h5py

    obj = src[name]
    if not isinstance(obj, h5py.Dataset) or layout.derived(name, obj):
        return
    dims = json.loads(obj.attrs["dimensions"])
    rows = extra.get(dims[0], 0) if "cycle_axis" in obj.attrs else 0
    if not obj.shape:
        d = dst.create_dataset(name, data=obj[()], dtype=obj.dtype, track_times=False)
    else:
        d = dst.create_dataset(name, (obj.shape[0] + rows,) + obj.shape[1:], dtype=obj.dtype,
                               fillvalue=obj.fillvalue, track_times=False)
        row = max(1, int(np.prod(obj.shape[1:], dtype=np.int64)) * obj.dtype.itemsize)
        step = max(1, _BLOCK_BYTES // row)
        for a in range(0, obj.shape[0], step):
            b = min(obj.shape[0], a + step)
            d[a:b] = obj[a:b]
    d.attrs.update(layout.plain_attrs(obj))
