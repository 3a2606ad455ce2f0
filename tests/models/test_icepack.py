"""The Icepack adapter: members run Icepack's own loop, own their parameters, split over ranks.

A small floating ice shelf (8 x 8 cells, P1) keeps the forms cheap; the serial tests share
one domain (mesh and FlowSolver).
"""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
import icepack  # noqa: E402
from mpi4py import MPI  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

L, H0, DH, U0 = 20e3, 500.0, 100.0, 100.0


def setup(comm):
    mesh = firedrake.RectangleMesh(8, 8, L, L, comm=comm)
    Q = firedrake.FunctionSpace(mesh, "CG", 1)
    V = firedrake.VectorFunctionSpace(mesh, "CG", 1)
    x, _ = firedrake.SpatialCoordinate(mesh)
    return {"thickness": firedrake.Function(Q).interpolate(H0 - DH * x / L),
            "velocity": firedrake.Function(V).interpolate(firedrake.as_vector((U0 + 0 * x, 0))),
            "fluidity": firedrake.Function(Q).assign(icepack.rate_factor(254.15)),
            "accumulation": firedrake.Function(Q),
            "thickness_inflow": firedrake.Function(Q).assign(H0)}


def draw(fields, rng):
    """Thickness plus a random multiple of a smooth mode; accumulation a random constant."""
    h = fields["thickness"]
    x, y = firedrake.SpatialCoordinate(h.function_space().mesh())
    c = firedrake.Constant(rng.standard_normal())
    h.interpolate(H0 - DH * x / L + 20 * c * firedrake.sin(np.pi * x / L) * firedrake.cos(np.pi * y / L))
    fields["accumulation"].assign(1.0 + rng.standard_normal())


OPTIONS = {"dirichlet_ids": [1], "side_wall_ids": [3, 4]}


def shelf(**kw):
    from fdassim.models.icepack import IcepackModel

    return IcepackModel(**{"setup": setup, "flow": icepack.models.IceShelf(), "state": ("thickness",),
                           "parameters": ("accumulation",), "dt": 0.5, "solver_options": OPTIONS,
                           "initial": draw, **kw})


@pytest.fixture(scope="module")
def domain():
    model = shelf()
    return model, model.domain(MPI.COMM_SELF)


def test_icepack_fields_in_icepack_vocabulary(domain):
    model, _ = domain
    assert [(f.name, f.parameter, f.carried) for f in model.fields] == [
        ("thickness", False, False), ("accumulation", True, False), ("velocity", False, True)]


def test_icepack_member_forecast_is_icepacks_own_loop(domain):
    """Two years of a member equal, bit for bit, the loop of an Icepack script written by hand
    (prognostic then diagnostic solve, dt = 0.5) from the same fields: the adapter adds no
    physics of its own."""
    model, dom = domain
    member = model.member(dom, 0)
    member.initial_state(np.random.default_rng(1))
    f = {k: v.copy(deepcopy=True) for k, v in member.fields.items()}
    member.forecast(0.0, 2.0)
    solver = icepack.solvers.FlowSolver(icepack.models.IceShelf(), **OPTIONS)
    h, u = f["thickness"], f["velocity"]
    for _ in range(4):
        h = solver.prognostic_solve(0.5, thickness=h, velocity=u, accumulation=f["accumulation"],
                                    thickness_inflow=f["thickness_inflow"])
        u = solver.diagnostic_solve(velocity=u, thickness=h, fluidity=f["fluidity"])
    np.testing.assert_array_equal(member.state["thickness"].dat.data_ro, h.dat.data_ro)
    np.testing.assert_array_equal(member.state["velocity"].dat.data_ro, u.dat.data_ro)


def test_icepack_members_own_their_parameters(domain):
    """Two members on one shared solver, same thickness, accumulation 0 and 2 m/yr: after one
    year the thicker one has gained about 2 m (mass balance; the flux divergence changes by
    far less), and changing a parameter between forecasts takes effect (Icepack would ignore
    a changed Constant)."""
    model, dom = domain
    a, b = model.member(dom, 1), model.member(dom, 2)
    for m, acc in ((a, 0.0), (b, 2.0)):
        m.initial_state(np.random.default_rng(3))
        m.fields["accumulation"].assign(acc)
    a.forecast(0.0, 1.0)
    b.forecast(0.0, 1.0)
    gain = b.state["thickness"].dat.data_ro - a.state["thickness"].dat.data_ro
    assert np.median(gain) == pytest.approx(2.0, rel=0.05)
    c = model.member(dom, 3)  # a copy of a, to go on without accumulation
    for name in ("thickness", "velocity", "accumulation"):
        c.fields[name].assign(a.fields[name])
    a.fields["accumulation"].assign(2.0)
    a.forecast(1.0, 2.0)
    c.forecast(1.0, 2.0)
    gain = a.state["thickness"].dat.data_ro - c.state["thickness"].dat.data_ro
    assert np.median(gain) == pytest.approx(2.0, rel=0.05)


def test_icepack_rejects_bad_settings(domain):
    from fdassim.errors import ConfigError, InputError

    with pytest.raises(ConfigError, match="unknown option 'dirichlet_id'; FlowSolver takes dirichlet_ids"):
        shelf(solver_options={"dirichlet_id": [1]})
    with pytest.raises(ConfigError, match=r"field\(s\) \['friction'\] are named but setup\(comm\) does not build them"):
        shelf(parameters=("friction",)).domain(MPI.COMM_SELF)

    def with_constant(comm):
        return dict(setup(comm), accumulation=firedrake.Constant(0.3))

    with pytest.raises(ConfigError, match=r"\['accumulation'\] must be Functions, not Constant.*ignores a changed Constant"):
        shelf(setup=with_constant).domain(MPI.COMM_SELF)
    model, dom = domain
    with pytest.raises(InputError, match="IcepackModel: t1 - t0 = 0.7 - 0.0 is not a non-negative whole number"):
        model.member(dom, 4).forecast(0.0, 0.7)


def _twin(path, comm, ranks_per_member=1):
    from fdassim.analysis.etkf import ETKF
    from fdassim.analysis.base import ObsError
    from fdassim.observations import Observations
    from fdassim.pointobs import PointValues
    from helpers import run_twin

    points = np.array([[x, y] for x in (3e3, 9e3, 15e3) for y in (5e3, 15e3)])
    obs = Observations(PointValues("thickness", points), ObsError.from_std(5.0), points)
    return run_twin(shelf(), ETKF(), path, comm=comm, N=5, cycles=2, interval=0.5, observations=obs,
                    ranks_per_member=ranks_per_member)


@pytest.mark.parallel(nprocs=2)
def test_icepack_twin_on_two_ranks_equals_serial(tmp_path_factory):
    """Members dealt over 2 ranks: bitwise the serial run. One member's mesh split over both
    ranks: the serial run to 1e-12 (relative), field by field, matched by node position."""
    from helpers import read_store, sort_by_coordinates

    comm = MPI.COMM_WORLD
    base = comm.bcast(str(tmp_path_factory.mktemp("icepack")) if comm.rank == 0 else None)
    _twin(f"{base}/members.h5", comm)
    _twin(f"{base}/mesh.h5", comm, ranks_per_member=2)
    _twin(f"{base}/serial-{comm.rank}.h5", MPI.COMM_SELF)
    serial, members, mesh = (read_store(f"{base}/{n}.h5") for n in (f"serial-{comm.rank}", "members", "mesh"))
    for key in (sl.ensemble("analysis", "thickness"), sl.ensemble("analysis", "accumulation"), sl.truth("thickness"), sl.observation("y", "values")):
        np.testing.assert_array_equal(members[key], serial[key], err_msg=key)
    for field in ("thickness", "accumulation"):
        ca, cb = mesh[sl.positions(field)], serial[sl.positions(field)]
        for k in range(2):
            xa = sort_by_coordinates(mesh[sl.ensemble("analysis", field)][k], ca)
            xb = sort_by_coordinates(serial[sl.ensemble("analysis", field)][k], cb)
            np.testing.assert_allclose(xa, xb, rtol=1e-12, atol=1e-12 * np.abs(xb).max())
