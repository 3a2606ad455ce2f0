"""Observation operators on Firedrake fields: exact values on fields the element represents
exactly, the order fixed by positions, and the same values in the same order on a mesh split
over 2 ranks as serially."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.errors import ObservationError  # noqa: E402
from fdassim.observations import Box, NodalValues, PointValues, Speed, flight_lines  # noqa: E402

POINTS = np.random.default_rng(1).uniform(0.02, 0.98, (17, 2))


def _fields(comm):
    """A P1 scalar x + 10 y, a P2 scalar x^2 + y and a P1 vector (x, 2 y), exact in their spaces."""
    mesh = firedrake.UnitSquareMesh(5, 7, comm=comm)  # 48 nodes: an uneven split on 2 ranks
    x, y = firedrake.SpatialCoordinate(mesh)
    f1 = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1)).interpolate(x + 10 * y)
    f2 = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 2)).interpolate(x * x + y)
    u = firedrake.Function(firedrake.VectorFunctionSpace(mesh, "CG", 1)).interpolate(firedrake.as_vector((x, 2 * y)))
    return {"f1": f1, "f2": f2, "u": u}


def _operators():
    return {
        "nodes": NodalValues("f1"),
        "nodes-p2": NodalValues("f2"),
        "every-3rd": NodalValues("f1", every=3),
        "box": NodalValues("f1", mask=Box([0.2, 0.0], [0.61, 0.5])),
        "vector-nodes": NodalValues("u"),
        "points": PointValues("f1", POINTS),
        "vector-points": PointValues("u", POINTS),
        "speed": Speed(PointValues("u", POINTS)),
        "speed-nodes": Speed(NodalValues("u", every=2)),
    }


def _observe(comm):
    state = _fields(comm)
    return {name: (H(state), H.positions(state)) for name, H in _operators().items()}


def test_operators_exact_values_at_their_positions():
    out = _observe(MPI.COMM_SELF)
    exact = {"f1": lambda p: p[:, 0] + 10 * p[:, 1], "f2": lambda p: p[:, 0] ** 2 + p[:, 1]}
    for name, field in (("nodes", "f1"), ("nodes-p2", "f2"), ("every-3rd", "f1"), ("box", "f1"), ("points", "f1")):
        values, pos = out[name]
        np.testing.assert_allclose(values, exact[field](pos), rtol=0, atol=1e-12, err_msg=name)
    # sizes: 6 x 8 vertices; P2 has 11 x 15 nodes; every 3rd of 48 is 16; the box holds
    # x in {0.2, 0.4, 0.6} and y in {0, 1/7, ..., 3/7}: 3 x 4 nodes
    assert [out[k][0].size for k in ("nodes", "nodes-p2", "every-3rd", "box")] == [48, 165, 16, 12]
    for name in ("nodes", "nodes-p2"):  # ordered by position: x first, then y
        pos = out[name][1]
        assert np.all(np.lexsort(pos.T[::-1]) == np.arange(pos.shape[0])), name
    # vector fields: components site after site, positions repeated per component
    values, pos = out["vector-points"]
    np.testing.assert_allclose(values.reshape(-1, 2), POINTS * [1, 2], atol=1e-12)
    np.testing.assert_array_equal(pos, np.repeat(POINTS, 2, axis=0))
    values, pos = out["vector-nodes"]
    np.testing.assert_allclose(values.reshape(-1, 2), pos[::2] * [1, 2], atol=1e-12)
    # the nonlinear operator: |u| at the sites, one position each
    values, pos = out["speed"]
    np.testing.assert_allclose(values, np.hypot(POINTS[:, 0], 2 * POINTS[:, 1]), atol=1e-12)
    assert pos.shape == (17, 2)
    values, pos = out["speed-nodes"]
    np.testing.assert_allclose(values, np.hypot(pos[:, 0], 2 * pos[:, 1]), atol=1e-12)


@pytest.mark.parallel(nprocs=2)
def test_operators_on_a_split_mesh_equal_serial_on_every_rank():
    split, serial = _observe(MPI.COMM_WORLD), _observe(MPI.COMM_SELF)
    for name in serial:
        for a, b in zip(split[name], serial[name]):
            # the same nodes in the same order: values to round-off (interpolation of the
            # coordinates and of the fields happens cell by cell on either partition)
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13, err_msg=name)


def test_flight_lines_along_x_every_spacing():
    p = flight_lines([0.0, 0.0], [20e3, 10e3], spacing=4e3, step=500.0)
    assert p.shape == (80, 2)  # lines at y = 2 and 6 km, 40 stations each
    np.testing.assert_array_equal(np.unique(p[:, 1]), np.arange(2e3, 10e3, 4e3))
    np.testing.assert_array_equal(p[:40, 0], np.arange(250.0, 20e3, 500.0))
    q = flight_lines([0.0, 0.0], [20e3, 10e3], spacing=5e3, step=1e3, along=1)  # lines along y
    np.testing.assert_array_equal(np.unique(q[:, 0]), [2.5e3, 7.5e3, 12.5e3, 17.5e3])


@pytest.mark.parametrize("call, match", [
    (lambda: NodalValues("f", every=0), r"NodalValues\('f'\): every must be a positive integer, got 0"),
    (lambda: Box([0, 0], [1]), r"Box: lower \[0.0, 0.0\] and upper \[1.0\] must have the same length"),
    (lambda: flight_lines([0, 0], [1, 1], spacing=0.0, step=0.1), r"flight_lines: spacing and step must be positive"),
    (lambda: flight_lines([0, 0], [1, 1], spacing=0.5, step=0.1, offset=2.0), r"flight_lines: no line fits"),
    (lambda: Speed(lambda s: s), r"Speed: base must be an operator on a field"),
    (lambda: PointValues("f", np.zeros((0, 2))), r"PointValues: points must be a non-empty \(m, d\) array"),
])
def test_operator_bad_arguments_name_the_problem(call, match):
    with pytest.raises(ObservationError, match=match):
        call()


def test_operator_errors_when_used():
    state = _fields(MPI.COMM_SELF)
    with pytest.raises(ObservationError, match=r"NodalValues\('f1'\): the mask Box\(\[5.0, 5.0\], \[6.0, 6.0\]\) "
                                               r"selects no node"):
        NodalValues("f1", mask=Box([5, 5], [6, 6]))(state)
    with pytest.raises(ObservationError, match=r"Speed\('f1'\): the field is scalar"):
        Speed(NodalValues("f1"))(state)
    with pytest.raises(ObservationError, match=r"PointValues\('f1'\): cannot place the points"):
        PointValues("f1", np.array([[0.5, 0.5], [3.0, 3.0]]))(state)
