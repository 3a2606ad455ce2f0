"""Point observations of Firedrake fields: values in the points' order, on any partition."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

POINTS = np.random.default_rng(0).uniform(0.01, 0.99, (23, 2))


def _values(comm):
    from fdassim.observations import PointValues

    mesh = firedrake.UnitSquareMesh(6, 6, comm=comm)
    x, y = firedrake.SpatialCoordinate(mesh)
    f = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1)).interpolate(x + 10 * y)  # exact in P1
    H = PointValues("f", POINTS)
    return H({"f": f}), H({"f": f.assign(2 * f)})


def test_pointvalues_exact_for_linear_field_in_point_order():
    first, second = _values(MPI.COMM_SELF)
    expect = POINTS[:, 0] + 10 * POINTS[:, 1]
    np.testing.assert_allclose(first, expect, rtol=0, atol=1e-12)
    np.testing.assert_allclose(second, 2 * expect, rtol=0, atol=1e-12)  # the operator is reused


@pytest.mark.parallel(nprocs=2)
def test_pointvalues_on_a_split_mesh_equal_serial_on_every_rank():
    split = _values(MPI.COMM_WORLD)
    serial = _values(MPI.COMM_SELF)
    for a, b in zip(split, serial):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_pointvalues_point_outside_the_mesh_names_the_field():
    from fdassim.errors import ObservationError
    from fdassim.observations import PointValues

    mesh = firedrake.UnitSquareMesh(4, 4, comm=MPI.COMM_SELF)
    f = firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1))
    with pytest.raises(ObservationError, match=r"PointValues\('f'\): cannot place the points"):
        PointValues("f", np.array([[0.5, 0.5], [3.0, 3.0]]))({"f": f})
