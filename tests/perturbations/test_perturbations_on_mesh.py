"""Random fields on a Firedrake mesh: evaluated at the nodes, a member's perturbation and its
AR(1) model noise are the same on a mesh split over 2 ranks as serially (to round-off: the
node coordinates are interpolated cell by cell on either partition)."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402


def _perturbed(comm, ranks_per_member):
    """``{(member, field): values ordered by node position}`` after initial perturbations and
    two cycles of model noise, starting from zero fields."""
    from fdassim.ensemble import Ensemble
    from fdassim.models.heat import Heat
    from fdassim.observations.onmesh import node_coordinates
    from fdassim.perturbations import InitialPerturbations, ModelNoise, PseudoRandomField, RandomField

    ens = Ensemble(Heat(nx=6), 3, comm=comm, ranks_per_member=ranks_per_member, truth=True)
    InitialPerturbations({"temperature": RandomField("gaussian", std=0.5, length=0.3),
                          "source": PseudoRandomField(std=0.2, length=0.25)}).apply(ens, seed=4)
    noise = ModelNoise({"temperature": RandomField("exponential", std=0.1, length=0.2)}, rho=0.5)
    for k in range(2):
        noise.apply(ens, seed=4, cycle=k)
    out = {}
    for i, state in zip(ens.local, ens.states):
        for name, f in state.items():
            xy = np.concatenate(ens.comm.allgather(node_coordinates(f.function_space())))
            v = np.concatenate(ens.comm.allgather(f.dat.data_ro.copy()))
            out[(i, name)] = v[np.lexsort(xy.round(12).T[::-1])]
    return out


def test_perturbations_differ_between_members_and_fields():
    out = _perturbed(MPI.COMM_SELF, 1)
    assert len(out) == 8  # 3 members and the truth, 2 fields each
    values = list(out.values())
    for a in range(len(values)):
        assert np.std(values[a]) > 0.05
        for b in range(a):
            assert not np.allclose(values[a], values[b])


@pytest.mark.parallel(nprocs=2)
def test_perturbations_on_a_split_mesh_equal_serial():
    split, serial = _perturbed(MPI.COMM_WORLD, 2), _perturbed(MPI.COMM_SELF, 1)
    assert sorted(split) == sorted(serial)
    for key in serial:
        np.testing.assert_allclose(split[key], serial[key], rtol=0, atol=1e-12, err_msg=str(key))
