"""The test model (issm_bridge/matlab/testmodel): a flowline glacier in ISSM's md names.

Its velocity is checked against the discrete equations written here in numpy, and against
the friction-dominated limit; its transient against ISSM's results layout; its friction
inversion by recovering a known coefficient.
"""

import numpy as np
import pytest

from issm_bridge.server import matlab_string

RHO, G = 917.0, 9.81


def _md(pool, options=""):
    return pool.call(f"flowline_model({options})", timeout=60, nout=1)


def _residual(md, u):
    """Residual of the flowline SSA on the vertices (docstring of flowline_ssa), per unit of driving stress."""
    x, H, C = md["mesh"]["x"], md["geometry"]["thickness"], md["friction"]["coefficient"]
    B, n = md["materials"]["rheology_B"], md["materials"]["rheology_n"]
    s = md["geometry"]["bed"] + H
    dx = np.diff(x)
    ux = np.diff(u) / dx
    sigma = 2 * B * 0.5 * (H[1:] + H[:-1]) * (ux**2 + 1e-10) ** ((1 / n - 1) / 2) * ux  # stress at midpoints
    tau_d = RHO * G * H * np.gradient(s, x, edge_order=1)
    tau_d[1:-1] = RHO * G * H[1:-1] * (s[2:] - s[:-2]) / (x[2:] - x[:-2])
    r = np.empty_like(u)
    r[1:-1] = (sigma[1:] - sigma[:-1]) / (0.5 * (dx[1:] + dx[:-1])) - C[1:-1] ** 2 * u[1:-1] - tau_d[1:-1]
    r[-1] = (0.0 - sigma[-1]) / (0.5 * dx[-1]) - C[-1] ** 2 * u[-1] - tau_d[-1]
    return r[1:] / np.abs(tau_d).max()


def test_velocity_solves_the_discrete_equations(pool):
    md = _md(pool)
    u = md["initialization"]["vx"]
    assert u[0] == pytest.approx(80.0, rel=1e-10)                     # the inflow condition
    assert np.abs(_residual(md, u)).max() < 1e-6                      # Picard converged to 1e-9
    assert 50 < u.mean() < 300                                        # m/yr: a valley glacier's speed


def test_high_friction_gives_the_local_balance(pool):
    """With C = 300, basal drag balances the driving stress locally: u = -rho g H s_x / C^2 (within 2%)."""
    md = _md(pool, "struct('friction', 300)")
    md_C = md["friction"]["coefficient"]
    x, H = md["mesh"]["x"], md["geometry"]["thickness"]
    s = md["geometry"]["bed"] + H
    local = -RHO * G * H[1:-1] * (s[2:] - s[:-2]) / (x[2:] - x[:-2]) / md_C[1:-1] ** 2
    u = md["initialization"]["vx"][1:-1]
    assert np.abs(u[5:-5] / local[5:-5] - 1).max() < 0.02  # away from the ends' boundary layers


def test_transient_follows_issm_results_layout(pool):
    code = ("md = flowline_model(); md.timestepping.start_time = 2; md.timestepping.final_time = 4.5; "
            "md = flowline_solve(md, 'Transient'); r = md.results;")
    res = pool.call(f"fdassim_eval({matlab_string(code)}, 'r')", timeout=60, nout=1)["TransientSolution"]
    assert [r["time"] for r in res] == pytest.approx([2 + 2.5 / 3 * k for k in (1, 2, 3)])  # 3 equal steps
    last = res[-1]
    assert last["time"] == 4.5  # ends exactly at final_time although time_step = 1 does not divide 2.5
    assert np.array_equal(last["Surface"], last["Base"] + last["Thickness"])
    assert np.all(last["Thickness"] >= 1) and np.all(last["Vy"] == 0)


def _invert(pool, bounds=""):
    code = ("md = flowline_model(); Ctrue = md.friction.coefficient; "
            "md.inversion.vx_obs = md.initialization.vx; md.friction.coefficient = 20 * ones(41, 1); "
            "md.inversion.iscontrol = 1; md.inversion.cost_functions = [101 501]; "
            "md.inversion.cost_functions_coefficients = [ones(41, 1), 1e3 * ones(41, 1)]; " + bounds +
            "md = flowline_solve(md, 'Stressbalance'); "
            "r = struct('C', md.results.StressbalanceSolution.FrictionCoefficient, "
            "'J', md.results.StressbalanceSolution.J, 'Ctrue', Ctrue);")
    r = pool.call(f"fdassim_eval({matlab_string(code)}, 'r')", timeout=120, nout=1)
    return r["C"], np.atleast_1d(r["J"]), r["Ctrue"]


def test_friction_inversion_recovers_the_coefficient(pool):
    """Velocity of the true C observed; inversion from C = 20 everywhere; 101 + Tikhonov 501.

    The setup's C = 20 + 4 sin(2 pi x / L) is 18 (in norm) from the start; the inversion
    must come within a fifth of that, its cost never increasing and falling 1000-fold.
    """
    C, J, Ctrue = _invert(pool)
    assert np.all(np.diff(J) <= 0) and J[-1] < 1e-3 * J[0]
    assert np.linalg.norm(C - Ctrue) < 0.2 * np.linalg.norm(20 - Ctrue)


def test_friction_inversion_keeps_its_bounds(pool):
    C, J, Ctrue = _invert(pool, "md.inversion.min_parameters = 17.5 * ones(41, 1); "
                                "md.inversion.max_parameters = 23 * ones(41, 1); ")
    assert C.min() >= 17.5 and C.max() <= 23.0 and Ctrue.max() > 23.5 and Ctrue.min() < 17
    assert np.all(np.diff(J) <= 0) and J[-1] < 0.1 * J[0]


def test_unknown_solution_is_an_error(pool):
    from issm_bridge.errors import MatlabError

    with pytest.raises(MatlabError, match="unknown solution 'Thermal'"):
        pool.call("flowline_solve(flowline_model(), 'Thermal')", timeout=60)
