"""The cycle on 2 ranks gives the serial answer: bitwise when only the member split changes,
to 1e-12 when a member's mesh is split over both ranks.

==========================  =======  ===================  ================================
run                          groups   ranks per member     members per rank
==========================  =======  ===================  ================================
serial (each rank, alone)    1        1                    all N (+ truth)
members split                2        1                    N/2 (+ truth on one)
mesh split                   1        2                    all, each over both ranks
==========================  =======  ===================  ================================
"""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import read_store, run_twin, sort_by_coordinates  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402


def _paths(tmp_path_factory, name):
    comm = MPI.COMM_WORLD
    base = comm.bcast(str(tmp_path_factory.mktemp(name)) if comm.rank == 0 else None)
    return f"{base}/world.h5", f"{base}/serial-{comm.rank}.h5"


def _lorenz96_run(path, comm, scheme):
    from fdassim.analysis.base import ObsError
    from fdassim.inflation import Chain, Multiplicative, RTPS
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Observations, Subset

    model = Lorenz96()
    obs = Observations(Subset(tuple(range(0, 40, 2))), ObsError.from_std(1.0), model.coords[::2, None])
    return run_twin(model, scheme, path, comm=comm, N=9, cycles=12, interval=0.05, observations=obs,
                    inflation=Chain((Multiplicative(1.05), RTPS(0.3))))


def _scheme(name):
    from fdassim.analysis import LETKF, EnKF, FiniteSize, Localization, LocalizedEnKF, RegressionFilter

    loc = Localization(radius=5.0, periodic=(40.0,))
    return {"enkf": EnKF(), "lenkf": LocalizedEnKF(loc),
            "eakf-perturbed": RegressionFilter(increments="perturbed", localization=loc),
            "letkf-n": LETKF(Localization(radius=5.0), finite_size=FiniteSize())}[name]


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("scheme", ["enkf", "lenkf", "eakf-perturbed", "letkf-n"])
def test_cycle_lorenz96_members_split_is_bitwise_serial(tmp_path_factory, scheme):
    """Transform, localized and sequential-regression schemes (row-local updates with
    coordinates, perturbations, RTPS on rows) give the serial answer bit for bit."""
    world, serial = _paths(tmp_path_factory, "l96")
    _lorenz96_run(world, MPI.COMM_WORLD, _scheme(scheme))
    _lorenz96_run(serial, MPI.COMM_SELF, _scheme(scheme))
    a, b = read_store(world), read_store(serial)
    for key in (sl.ensemble("analysis", "x"), sl.ensemble("forecast", "x"), sl.truth("x"), sl.observation("y", "values")):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _heat_run(path, comm, ranks_per_member=1, scheme=None):
    from fdassim.analysis.etkf import ETKF
    from fdassim.models.heat import Heat

    return run_twin(Heat(), scheme or ETKF(), path, comm=comm, N=7, cycles=3, ranks_per_member=ranks_per_member)


@pytest.mark.parallel(nprocs=2)
def test_cycle_heat_members_split_is_bitwise_serial(tmp_path_factory):
    world, serial = _paths(tmp_path_factory, "heat")
    _heat_run(world, MPI.COMM_WORLD)
    _heat_run(serial, MPI.COMM_SELF)
    a, b = read_store(world), read_store(serial)
    for key in (sl.ensemble("analysis", "temperature"), sl.ensemble("analysis", "source"), sl.truth("source"), sl.observation("y", "values")):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _letkf():
    from fdassim.analysis import LETKF, Localization

    return LETKF(Localization(0.3))  # 2-D positions from the mesh; each node's two fields share an analysis


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("scheme", ["etkf", "letkf"])
def test_cycle_heat_mesh_split_agrees_with_serial(tmp_path_factory, scheme):
    world, serial = _paths(tmp_path_factory, f"heatmesh-{scheme}")
    _heat_run(world, MPI.COMM_WORLD, ranks_per_member=2, scheme=_letkf() if scheme == "letkf" else None)
    _heat_run(serial, MPI.COMM_SELF, scheme=_letkf() if scheme == "letkf" else None)
    a, b = read_store(world), read_store(serial)
    for field in ("temperature", "source"):
        ca, cb = a[sl.positions(field)], b[sl.positions(field)]
        np.testing.assert_allclose(sort_by_coordinates(ca, ca), sort_by_coordinates(cb, cb), atol=1e-14)
        for k in range(a[sl.ensemble("analysis", field)].shape[0]):
            xa = sort_by_coordinates(a[sl.ensemble("analysis", field)][k], ca)
            xb = sort_by_coordinates(b[sl.ensemble("analysis", field)][k], cb)
            np.testing.assert_allclose(xa, xb, rtol=1e-12, atol=1e-12 * np.abs(xb).max())


@pytest.mark.parallel(nprocs=2)
def test_ensemble_refuses_to_split_array_fields():
    from fdassim.ensemble import Ensemble
    from fdassim.errors import ConfigError
    from fdassim.models.lorenz96 import Lorenz96

    with pytest.raises(ConfigError, match=r"field\(s\) \['x'\] are arrays, which cannot be split over ranks"):
        Ensemble(Lorenz96(), 4, comm=MPI.COMM_WORLD, ranks_per_member=2)


@pytest.mark.parallel(nprocs=2)
def test_ensemble_bad_ranks_per_member_fails_on_every_rank():
    from fdassim.ensemble import Ensemble
    from fdassim.errors import ConfigError
    from fdassim.models.lorenz96 import Lorenz96

    with pytest.raises(ConfigError, match=r"ranks_per_member=3 must divide the number of ranks \(2\)"):
        Ensemble(Lorenz96(), 4, comm=MPI.COMM_WORLD, ranks_per_member=3)
