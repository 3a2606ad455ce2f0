r"""A small Firedrake model: heat diffusion with an unknown source, for twin experiments.

.. math::
    \partial_t T = \kappa \Delta T - \gamma T + s(x) \quad \text{on } [0, 1]^2,
    \qquad \nabla T \cdot n = 0,

discretized with continuous piecewise-linear elements and backward Euler. The temperature
``T`` is the state; the source ``s`` is a parameter field, estimated jointly. Both start as
smooth random fields built from a few Fourier modes whose coefficients come from the
member's generator, so a member's initial state does not depend on how the mesh is split.

It is the smallest model that exercises every part of the Firedrake path of fdassim
(Functions on a mesh split over ranks, point observations, parameters), and it compiles
only two small forms. It uses the full form of the Model protocol
(:mod:`fdassim.models.base`): the members on one communicator share a :class:`HeatDomain`
(mesh and space), and each :class:`HeatMember` holds its own solver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..layout import FieldSpec
from ..options import check_options, option
from .base import whole_steps

__all__ = ["Heat", "HeatDomain", "HeatMember"]


@dataclass(frozen=True)
class Heat:
    """Heat diffusion with a source parameter on an ``nx x nx`` unit square.

    Parameters
    ----------
    nx
        Cells per side of the mesh.
    kappa, gamma
        Diffusivity and linear damping.
    dt
        Time step of backward Euler; forecasts span whole numbers of steps.
    modes
        Fourier modes per direction in the random initial fields.
    spread
        Standard deviation of the random part of the initial temperature and source.
    """

    nx: int = option(8, ge=1)
    kappa: float = option(0.02, gt=0)
    gamma: float = option(0.5, ge=0)
    dt: float = option(0.1, gt=0)
    modes: int = option(2, ge=1)
    spread: float = option(1.0, gt=0)
    fields: ClassVar[tuple] = (FieldSpec("temperature"), FieldSpec("source", parameter=True))

    def __post_init__(self):
        check_options(self)

    # -- the Model protocol (full form, fdassim.models.base) -----------------------------------
    def domain(self, comm) -> "HeatDomain":
        """The mesh, the P1 space and its node coordinates, shared by the members on ``comm``."""
        return HeatDomain(self, comm)

    def member(self, domain: "HeatDomain", index: int) -> "HeatMember":
        return HeatMember(self, domain)

    def random_field(self, xy: np.ndarray, rng: np.random.Generator, mean: float) -> np.ndarray:
        """``mean`` plus random cosine modes at the points ``xy`` (``(p, 2)``).

        Evaluated with numpy at the node coordinates, so a new draw compiles no new form, and
        a node's value depends only on its position: the field is the same however the mesh
        is split.
        """
        k = np.arange(self.modes)
        a = self.spread * rng.standard_normal((self.modes, self.modes)) / (1.0 + k[:, None] ** 2 + k[None, :] ** 2)
        cx = np.cos(np.pi * np.outer(xy[:, 0], k))  # (nodes, modes)
        cy = np.cos(np.pi * np.outer(xy[:, 1], k))
        return mean + np.einsum("pi,ij,pj->p", cx, a, cy)


class HeatDomain:
    """What the members of one spatial communicator share: mesh, space, node coordinates."""

    def __init__(self, model: Heat, comm):
        import firedrake

        self.mesh = firedrake.UnitSquareMesh(model.nx, model.nx, comm=comm)
        self.V = firedrake.FunctionSpace(self.mesh, "CG", 1)
        X = firedrake.Function(firedrake.VectorFunctionSpace(self.mesh, "CG", 1))
        self.xy = X.interpolate(firedrake.SpatialCoordinate(self.mesh)).dat.data_ro.copy()


class HeatMember:
    """One member: its temperature and source, and its backward-Euler solver (built on first use)."""

    def __init__(self, model: Heat, domain: HeatDomain):
        import firedrake

        self.model, self.domain = model, domain
        self.state = {"temperature": firedrake.Function(domain.V, name="temperature"),
                      "source": firedrake.Function(domain.V, name="source")}
        self._solver = None

    def initial_state(self, rng: np.random.Generator) -> None:
        self.state["temperature"].dat.data[:] = self.model.random_field(self.domain.xy, rng, mean=0.0)
        self.state["source"].dat.data[:] = self.model.random_field(self.domain.xy, rng, mean=1.0)

    def start(self) -> None:
        self._build()

    def close(self) -> None:
        self._solver = None

    def _build(self):
        import firedrake
        from firedrake import dx, grad, inner

        if self._solver is None:
            m, (T, s) = self.model, (self.state["temperature"], self.state["source"])
            V = T.function_space()
            u, v = firedrake.TrialFunction(V), firedrake.TestFunction(V)
            T_old = firedrake.Function(V)
            a = ((1 + m.dt * m.gamma) * u * v + m.dt * m.kappa * inner(grad(u), grad(v))) * dx
            L = (T_old + m.dt * s) * v * dx
            problem = firedrake.LinearVariationalProblem(a, L, T)
            solver = firedrake.LinearVariationalSolver(problem, solver_parameters={
                "ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
            self._solver = (solver, T_old)
        return self._solver

    def forecast(self, t0: float, t1: float) -> None:
        n = whole_steps(t0, t1, self.model.dt, "Heat")
        solver, T_old = self._build()
        for _ in range(n):
            T_old.assign(self.state["temperature"])
            solver.solve()
