"""Test helpers (imported as `helpers`): small twin runs of the built-in models through the parallel cycle."""

import numpy as np
import pytest

HEAT_POINTS = np.array([[x, y] for x in (0.125, 0.375, 0.625, 0.875) for y in (0.125, 0.375, 0.625, 0.875)])


def run_twin(model, scheme, path, *, comm, N=12, cycles=4, interval=0.2, ranks_per_member=1, seed=5,
             observations=None, inflation=None, product=None, parameters=()):
    """A twin run through :func:`fdassim.cycle.assimilate`, stored at ``path``; returns the result."""
    from fdassim.analysis.base import ObsError
    from fdassim.cycle import assimilate
    from fdassim.ensemble import Ensemble
    from fdassim.io import Store
    from fdassim.observations import Observations
    from fdassim.pointobs import PointValues

    ens = Ensemble(model, N, comm=comm, ranks_per_member=ranks_per_member, truth=True)
    if observations is None:
        observations = Observations(PointValues("temperature", HEAT_POINTS), ObsError.from_std(0.1), HEAT_POINTS)
    times = interval * np.arange(cycles + 1)
    with Store.create(path, ens, times, observations) as store:
        return assimilate(ens, scheme, observations, times, seed=seed, store=store, inflation=inflation,
                          progress=False, parameters=parameters, **({} if product is None else {"product": product}))


def split_paths(tmp_path_factory, name):
    """``(world, serial)`` store paths of a 2-rank test: one shared by the ranks, one per rank."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    base = comm.bcast(str(tmp_path_factory.mktemp(name)) if comm.rank == 0 else None)
    return f"{base}/world.h5", f"{base}/serial-{comm.rank}.h5"


def read_store(path, names=("ensemble/analysis", "ensemble/forecast", "truth", "observations", "coordinates",
                            "diagnostics", "mean")):
    """Every dataset under ``names`` of a store, as numpy arrays keyed by path (not the
    coordinates linked into the groups: :func:`fdassim.store_layout.derived`)."""
    import h5py

    from fdassim import store_layout as sl

    out = {}
    with h5py.File(path, "r") as h5:
        def visit(name, link):
            obj = h5[name]
            if isinstance(obj, h5py.Dataset) and name.startswith(names) and not sl.derived(name, obj):
                out[name] = obj[...]
        h5.visititems_links(visit)
    return out


def sort_by_coordinates(values, coords):
    """Rows of ``values`` ordered by their coordinates (to compare different mesh partitions)."""
    order = np.lexsort(coords.T[::-1].round(12))
    return values[order]
