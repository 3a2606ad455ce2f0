"""Icepack on our stack: the floating ice-shelf solution and mass conservation.

The ice shelf is 20 km x 20 km, 500 m thick at the inflow thinning linearly to 400 m, with
100 m/yr inflow at -19 C: the setting of Icepack's own ice-shelf test, whose exact solution
(Greve & Blatter, Dynamics of Ice Sheets and Glaciers, 2009) is written below.
"""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
icepack = pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
import icepack  # noqa: E402

Lx = Ly = 20e3
u0, h0, dh, T = 100.0, 500.0, 100.0, 254.15


def exact_velocity(x):
    """Exact x-velocity of a 1-D floating shelf with h = h0 - dh x / Lx (m/yr).

    Longitudinal stress balance: du/dx = A (rho' g h / 4)^n with rho' = rho_I (1 - rho_I/rho_W),
    integrated in x with h linear.
    """
    from icepack.constants import glen_flow_law as n
    from icepack.constants import gravity as g
    from icepack.constants import ice_density as rho_i
    from icepack.constants import water_density as rho_w

    A = icepack.rate_factor(T)
    c = rho_i * (1 - rho_i / rho_w) * g / 4
    h = h0 - dh * x / Lx
    return u0 + A * c**n * Lx * (h0 ** (n + 1) - h ** (n + 1)) / ((n + 1) * dh)


@pytest.fixture(scope="module")
def shelf():
    mesh = firedrake.RectangleMesh(16, 16, Lx, Ly)
    x, y = firedrake.SpatialCoordinate(mesh)
    V = firedrake.VectorFunctionSpace(mesh, "CG", 2)
    Q = firedrake.FunctionSpace(mesh, "CG", 2)
    h = firedrake.Function(Q).interpolate(h0 - dh * x / Lx)
    A = firedrake.Function(Q).assign(icepack.rate_factor(T))
    u_guess = firedrake.Function(V).interpolate(firedrake.as_vector((u0 + 0 * x, 0)))
    solver = icepack.solvers.FlowSolver(icepack.models.IceShelf(), dirichlet_ids=[1], side_wall_ids=[3, 4])
    u = solver.diagnostic_solve(velocity=u_guess, thickness=h, fluidity=A)
    return mesh, solver, u, h


def test_icepack_ice_shelf_velocity_sign_and_magnitude(shelf):
    mesh, _, u, _ = shelf
    pts = [(x, Ly / 2) for x in np.linspace(1e3, Lx - 1e3, 7)]
    values = np.asarray(firedrake.PointEvaluator(mesh, pts).evaluate(u))
    ux, uy = values[:, 0], values[:, 1]
    expected = exact_velocity(np.array([p[0] for p in pts]))
    assert np.all(ux > 0) and np.all(np.diff(ux) > 0)  # flows away from the inflow, accelerating
    np.testing.assert_allclose(ux, expected, rtol=1e-2)  # magnitude: exact solution within 1 %
    assert np.max(np.abs(uy)) < 1e-2 * np.max(ux)


def test_icepack_prognostic_step_conserves_mass(shelf):
    mesh, solver, u, h = shelf
    from firedrake import Constant, FacetNormal, assemble, ds, dx, inner

    a = firedrake.Function(h.function_space()).assign(0.3)  # accumulation, m/yr
    dt = 0.5
    h1 = solver.prognostic_solve(dt, thickness=h.copy(deepcopy=True), velocity=u, accumulation=a,
                                 thickness_inflow=h)
    nu = FacetNormal(mesh)
    volume_change = assemble((h1 - h) * dx)
    h_mid = (h + h1) / 2
    flux_out = assemble(h_mid * inner(u, nu) * ds)  # net outward flux over the whole boundary
    expected = dt * (assemble(a * dx) - flux_out)
    assert abs(volume_change) > 1e5  # the step really moved mass
    assert volume_change == pytest.approx(expected, rel=2e-2)
