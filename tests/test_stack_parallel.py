"""The stack works on 2 ranks: firedrake.Ensemble and parallel HDF5."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402


def _member(mesh, i):
    """Member ``i``: a smooth function that differs per member."""
    V = firedrake.FunctionSpace(mesh, "CG", 1)
    x, y = firedrake.SpatialCoordinate(mesh)
    return firedrake.Function(V).interpolate(firedrake.sin((i + 1) * x) * firedrake.cos(y) + i)


@pytest.mark.parallel(nprocs=2)
def test_ensemble_allreduce_mean_equals_serial_mean():
    ens = firedrake.Ensemble(MPI.COMM_WORLD, 1)  # one rank per member
    assert ens.ensemble_comm.size == 2 and ens.comm.size == 1
    mesh = firedrake.UnitSquareMesh(6, 6, comm=ens.comm)
    mine = _member(mesh, ens.ensemble_comm.rank)
    total = firedrake.Function(mine.function_space())
    ens.allreduce(mine, total)
    mean = total.dat.data_ro / 2
    # the serial mean of the same members, each made on this rank's own mesh
    serial = (_member(mesh, 0).dat.data_ro + _member(mesh, 1).dat.data_ro) / 2
    np.testing.assert_allclose(mean, serial, rtol=1e-14, atol=1e-14)


@pytest.mark.parallel(nprocs=2)
def test_ensemble_member_spanning_two_ranks_has_serial_norms():
    ens = firedrake.Ensemble(MPI.COMM_WORLD, 2)  # one member over both ranks
    assert ens.comm.size == 2 and ens.ensemble_comm.size == 1
    split = _member(firedrake.UnitSquareMesh(6, 6, comm=ens.comm), 1)
    whole = _member(firedrake.UnitSquareMesh(6, 6, comm=MPI.COMM_SELF), 1)
    assert split.dat.data_ro.size < whole.dat.data_ro.size  # the mesh really is split
    for kind in ("L2", "H1"):
        assert firedrake.norm(split, kind) == pytest.approx(firedrake.norm(whole, kind), rel=1e-12)


@pytest.mark.parallel(nprocs=2)
def test_h5py_mpio_collective_write_reads_back(tmp_path_factory):
    import h5py

    comm = MPI.COMM_WORLD
    path = comm.bcast(str(tmp_path_factory.mktemp("h5") / "x.h5") if comm.rank == 0 else None)
    n_local = 5
    with h5py.File(path, "w", driver="mpio", comm=comm) as f:
        d = f.create_dataset("x", (comm.size * n_local,), dtype="f8")
        with d.collective:
            d[comm.rank * n_local:(comm.rank + 1) * n_local] = np.arange(n_local) + 10.0 * comm.rank
    comm.Barrier()
    with h5py.File(path, "r", driver="mpio", comm=comm) as f:
        back = f["x"][...]
    expected = np.concatenate([np.arange(n_local) + 10.0 * r for r in range(comm.size)])
    np.testing.assert_array_equal(back, expected)
