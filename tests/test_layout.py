"""The layout's node coordinates of Firedrake fields (the positions localization uses)."""

import numpy as np

firedrake = __import__("pytest").importorskip("firedrake")

from fdassim.layout import FieldSpec, Layout  # noqa: E402
from fdassim.observations.onmesh import node_coordinates  # noqa: E402


def test_coordinates_of_fields_sharing_a_space_equal_each_fields_own():
    """Thickness and accumulation on one degree-2 space, a degree-2 velocity and a degree-1
    field: the layout interpolates the positions once per mesh and element and must give,
    bitwise, each field's own node positions (a vector field's repeated per component), the
    degree-1 field its own (not the degree-2 ones it would get from a wrong reuse)."""
    mesh = firedrake.UnitSquareMesh(3, 2, quadrilateral=True)
    Q2, Q1 = firedrake.FunctionSpace(mesh, "CG", 2), firedrake.FunctionSpace(mesh, "CG", 1)
    V2 = firedrake.VectorFunctionSpace(mesh, "CG", 2)
    state = {"h": firedrake.Function(Q2), "u": firedrake.Function(V2), "a": firedrake.Function(Q2),
             "b": firedrake.Function(Q1)}
    layout = Layout(tuple(FieldSpec(name) for name in state), state, mesh.comm)
    q2, q1 = node_coordinates(Q2), node_coordinates(Q1)
    expected = np.concatenate([q2, np.repeat(q2, 2, axis=0), q2, q1])
    assert q1.shape[0] < q2.shape[0]
    np.testing.assert_array_equal(layout.coords, expected)
