"""Extending a stored run to more cycles (``run.cycles`` raised, then ``fdassim run --restart``).

The store's datasets are allocated for the run's cycles when it is made. To continue a run
beyond them, the store is rewritten with room for the new cycles: every dataset marked
``cycle_axis`` gets the new cycles along its first axis (unwritten, NaN), everything else is
copied as it is, and the settings attributes are replaced by the new ones. The new file is
written beside the old under a temporary name and renamed over it when complete, so a run
killed while growing keeps its store as it was (the leftover is removed by the next run).
Growing costs one copy of the store; the run then continues from its last committed cycle.
"""

from __future__ import annotations

import os

import numpy as np

from . import faults
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
            old_times = src["times"][...]
            if not np.array_equal(old_times, times[:K + 1]):
                raise ConfigError(f"cannot extend {path!r}: its analysis times differ from this run's "
                                  "(run.t0 or run.interval changed)")
            with h5py.File(tmp, "w", locking=False) as dst:
                dst.attrs.update(dict(src.attrs))
                dst.attrs.update(attrs)
                dst.attrs["n_cycles"] = K_new
                src.visititems(lambda name, obj: None if name.startswith("observations/") else
                               _copy(src, dst, name, obj, K_new - K))
                if "observations" in src:
                    regrow(src, dst, times[1:], observations)
                dst["times"][...] = times
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


def _copy(src, dst, name: str, obj, extra: int) -> None:
    import h5py

    if not isinstance(obj, h5py.Dataset):
        return
    if "cycle_axis" not in obj.attrs:
        src.copy(obj, dst, name=name)
        return
    shape = (obj.shape[0] + extra,) + obj.shape[1:]
    fill = obj.fillvalue
    d = dst.create_dataset(name, shape, dtype=obj.dtype, fillvalue=fill, track_times=False)
    d.attrs.update(dict(obj.attrs))
    row = max(1, int(np.prod(obj.shape[1:], dtype=np.int64)) * obj.dtype.itemsize)
    step = max(1, _BLOCK_BYTES // row)
    for a in range(0, obj.shape[0], step):
        b = min(obj.shape[0], a + step)
        d[a:b] = obj[a:b]
