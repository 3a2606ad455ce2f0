"""Random fields on a Firedrake mesh: evaluated at the nodes, a member's perturbation (also
one conditioned on observations by kriging) and its AR(1) model noise are the same on a mesh
split over 2 ranks as serially (to round-off: the node coordinates are interpolated cell by
cell on either partition)."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402


#: the temperature observed at three sites (nodes of the 6 x 6 mesh: the draw is evaluated at
#: the nodes, and a P1 field honours a value between nodes only to its interpolation error),
#: that the initial members are conditioned on
SITES = np.array([[2 / 6, 2 / 6], [4 / 6, 3 / 6], [5 / 6, 1 / 6]])
OBSERVED = np.array([1.0, -0.5, 0.3])


def _initial(comm, ranks_per_member, std=0.0):
    """The heat ensemble (3 members and the truth) from zero fields, initially perturbed, the
    temperature conditioned on ``OBSERVED`` at ``SITES`` with errors ``std``."""
    from fdassim.ensemble import Ensemble
    from fdassim.models.heat import Heat
    from fdassim.parameters import Observed
    from fdassim.perturbations import InitialPerturbations, PseudoRandomField, RandomField

    ens = Ensemble(Heat(nx=6), 3, comm=comm, ranks_per_member=ranks_per_member, truth=True)
    p = InitialPerturbations({"temperature": RandomField("gaussian", std=0.5, length=0.3),
                              "source": PseudoRandomField(std=0.2, length=0.25)},
                             conditions={"temperature": Observed(SITES, OBSERVED, np.full(3, std))})
    p.check(ens.model, template=ens.template)
    p.apply(ens, seed=4)
    return ens


def _perturbed(comm, ranks_per_member):
    """``{(member, field): values ordered by node position}`` after initial perturbations and
    two cycles of model noise, starting from zero fields."""
    from fdassim.observations.onmesh import node_coordinates
    from fdassim.perturbations import ModelNoise, RandomField

    ens = _initial(comm, ranks_per_member)
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


def test_conditioned_members_honour_the_observations():
    """Exact observations (std 0): every member's temperature at the three sites (nodes) is
    the observed value to 1e-6 (kriging without nugget interpolates them; the unconditioned
    spread is 0.5); the truth is not conditioned; members differ away from the sites.
    Observations with errors (std 0.2) are honoured within 4 std in every member."""
    from fdassim.observations import PointValues

    ens = _initial(MPI.COMM_SELF, 1)
    H = PointValues("temperature", SITES)
    at_sites = {i: H(state) for i, state in zip(ens.local, ens.states)}
    for i in range(3):
        np.testing.assert_allclose(at_sites[i], OBSERVED, atol=1e-6, err_msg=f"member {i}")
    assert np.abs(at_sites[3] - OBSERVED).max() > 0.1  # the truth: an unconditioned draw
    T = [s["temperature"].dat.data_ro for s in ens.states[:3]]
    assert np.std(T[0] - T[1]) > 0.1
    noisy = _initial(MPI.COMM_SELF, 1, std=0.2)
    d = np.array([H(state) - OBSERVED for state in noisy.states[:3]])
    assert np.abs(d).max() < 4 * 0.2 and np.abs(d).max() > 1e-3  # within the errors, not exact


def test_conditioning_bad_settings_name_the_field():
    from fdassim.ensemble import Ensemble
    from fdassim.errors import ConfigError
    from fdassim.models.heat import Heat
    from fdassim.parameters import Observed
    from fdassim.perturbations import InitialPerturbations, PseudoRandomField, RandomField

    ok = Observed(SITES, OBSERVED, np.zeros(3))
    with pytest.raises(ConfigError, match=r"conditions.source: 'source' is not a perturbed field"):
        InitialPerturbations({"temperature": RandomField()}, conditions={"source": ok})
    with pytest.raises(ConfigError, match=r"conditions.temperature: kriging needs a gstools field"):
        InitialPerturbations({"temperature": PseudoRandomField(length=0.3)}, conditions={"temperature": ok})
    with pytest.raises(ConfigError, match=r"conditions.temperature: positions of shape \(3, 2\) do not fit 2"):
        InitialPerturbations({"temperature": RandomField()},
                             conditions={"temperature": Observed(SITES, OBSERVED[:2], np.zeros(2))})
    with pytest.raises(ConfigError, match=r"conditions.temperature.std: must be >= 0"):
        InitialPerturbations({"temperature": RandomField()},
                             conditions={"temperature": Observed(SITES, OBSERVED, -np.ones(3))})
    outside = InitialPerturbations({"temperature": RandomField()},
                                   conditions={"temperature": Observed(SITES + [[0, 0], [0, 0.9], [0, 0]], OBSERVED, np.zeros(3))})
    ens = Ensemble(Heat(nx=6), 2, comm=MPI.COMM_SELF)
    with pytest.raises(ConfigError, match=r"initial_perturbations.temperature: conditioning position\[1\] = "
                                          r"\[0.66+\d*, 1.4\d*\] is outside the domain \(1 of 3"):
        outside.check(ens.model, template=ens.template)
