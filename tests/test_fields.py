"""The final analysis as Firedrake fields (CheckpointFile): it reloads and matches the store."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import HEAT_POINTS, read_store, sort_by_coordinates  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402


def _run(path, comm):
    from fdassim.config import parse
    from fdassim.run import run

    settings = parse({
        "model": {"name": "heat"}, "ensemble": {"size": 6},
        "observations": {"field": "temperature", "points": HEAT_POINTS.tolist(), "std": 0.1},
        "filter": {"scheme": "etkf"}, "run": {"cycles": 2, "interval": 0.2, "progress": False},
        "output": {"path": path}})
    run(settings, comm=comm)


def _check(path):
    """The reloaded mean and spread equal the store's last analysis, node by node."""
    d = read_store(path)
    with firedrake.CheckpointFile(path.replace(".h5", "-fields.h5"), "r", comm=MPI.COMM_SELF) as ck:
        mesh = ck.load_mesh()
        for field in ("temperature", "source"):
            mean = ck.load_function(mesh, f"{field}_mean")
            std = ck.load_function(mesh, f"{field}_std")
            X = firedrake.Function(firedrake.VectorFunctionSpace(mesh, "CG", 1))
            xy = X.interpolate(firedrake.SpatialCoordinate(mesh)).dat.data_ro
            ens = d[sl.ensemble("analysis", field)][-1]
            c = d[sl.positions(field)]
            np.testing.assert_allclose(sort_by_coordinates(mean.dat.data_ro, xy),
                                       sort_by_coordinates(ens.mean(axis=1), c), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(sort_by_coordinates(std.dat.data_ro, xy),
                                       sort_by_coordinates(ens.std(axis=1, ddof=1), c), rtol=1e-8, atol=1e-12)


def test_fields_checkpoint_reloads_and_matches_store(tmp_path):
    path = str(tmp_path / "heat.h5")
    _run(path, MPI.COMM_SELF)
    _check(path)


@pytest.mark.parallel(nprocs=2)
def test_fields_checkpoint_written_on_two_ranks_reloads_serially(tmp_path_factory):
    comm = MPI.COMM_WORLD
    path = comm.bcast(str(tmp_path_factory.mktemp("fields") / "heat.h5") if comm.rank == 0 else None)
    _run(path, comm)
    _check(path)  # every rank reloads it on its own (a check on one rank alone could hang the other)
