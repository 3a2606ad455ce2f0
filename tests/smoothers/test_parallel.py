"""Smoothers on 2 ranks equal the serial run bit for bit (members dealt over both ranks, N odd).

Every window re-runs, transposes and recombines rows exactly as the filter cycle does, and
the ensemble-space work (transforms, Gauss-Newton steps, MDA weights) is computed identically
on every rank, so the forecast, filter and smoother ensembles and the costs must not depend
on the split.
"""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.analysis import ObsError  # noqa: E402
from fdassim.ensemble import Ensemble  # noqa: E402
from fdassim.inflation import Chain, Multiplicative, RTPS  # noqa: E402
from fdassim.io import Store  # noqa: E402
from fdassim.models.lorenz96 import Lorenz96  # noqa: E402
from fdassim.observations import Observations, Subset  # noqa: E402
from fdassim.smoothers import EnKS, IEnKS, SIEnKS, smooth  # noqa: E402
from helpers import read_store  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402


def _run(smoother, path, comm):
    ens = Ensemble(Lorenz96(), 9, comm=comm, truth=True)
    obs = Observations(Subset(tuple(range(0, 40, 2))), ObsError.from_std(1.0))
    times = 0.05 * np.arange(13)
    with Store.create(path, ens, times, 20, smoother=smoother) as store:
        smooth(ens, smoother, obs, times, seed=5, inflation=Chain((Multiplicative(1.03), RTPS(0.2))), store=store,
               progress=False)


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("smoother", [
    pytest.param(EnKS(lag=3, shift=2), id="EnKS"),
    pytest.param(SIEnKS(lag=4, shift=2, mda=True, mlef=True), id="SIEnKS-MDA-MLEF"),
    pytest.param(IEnKS(lag=3, shift=1, mda=True), id="IEnKS-MDA"),
    pytest.param(IEnKS(lag=3, finite_size=True), id="IEnKS-N"),
])
def test_smoother_members_split_is_bitwise_serial(tmp_path_factory, smoother):
    comm = MPI.COMM_WORLD
    base = comm.bcast(str(tmp_path_factory.mktemp("smoother")) if comm.rank == 0 else None)
    world, serial = f"{base}/world.h5", f"{base}/serial-{comm.rank}.h5"
    _run(smoother, world, comm)
    _run(smoother, serial, MPI.COMM_SELF)
    a, b = read_store(world, names=("ensemble", "truth", "observations", "windows")), \
        read_store(serial, names=("ensemble", "truth", "observations", "windows"))
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert np.isfinite(a[sl.ensemble("smoother", "x")][1]).all()
