"""The stack works: PETSc with MUMPS solves a Poisson problem; doctor sees every piece."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")


def test_poisson_mumps_lu_matches_known_solution():
    from firedrake import (Constant, DirichletBC, Function, FunctionSpace, SpatialCoordinate, TestFunction,
                           TrialFunction, UnitSquareMesh, dx, errornorm, grad, inner, pi, sin, solve)

    mesh = UnitSquareMesh(16, 16)
    V = FunctionSpace(mesh, "CG", 2)
    x, y = SpatialCoordinate(mesh)
    exact = sin(pi * x) * sin(2 * pi * y)
    u, v = TrialFunction(V), TestFunction(V)
    f = Constant(5 * np.pi**2) * exact  # -laplace(exact)
    uh = Function(V)
    params = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
    problem = firedrake.LinearVariationalProblem(inner(grad(u), grad(v)) * dx, f * v * dx, uh,
                                                 bcs=DirichletBC(V, 0, "on_boundary"))
    solver = firedrake.LinearVariationalSolver(problem, solver_parameters=params)
    solver.solve()
    assert solver.snes.ksp.getPC().getFactorSolverType() == "mumps"
    err = errornorm(Function(V).interpolate(exact), uh) / firedrake.norm(Function(V).interpolate(exact))
    # P2 on a 16 x 16 mesh: relative L2 error ~ h^3 ~ 2e-4; a wrong solve is O(1)
    assert err < 2e-3


def test_doctor_finds_every_required_piece():
    import io

    from fdassim.doctor import run_checks

    out = io.StringIO()
    ok = run_checks(out)
    text = out.getvalue()
    assert ok, text
    assert "PETSc with mumps" in text and "MPI yes" in text


def test_doctor_names_the_fix_when_a_piece_is_missing(monkeypatch):
    import io

    from fdassim import doctor

    monkeypatch.setattr(doctor, "CHECKS", [lambda: doctor._module("no_such_module_fdassim")])
    out = io.StringIO()
    assert not doctor.run_checks(out)
    assert "fix: run `make install`" in out.getvalue()
