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
only two small forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, InputError
from ..layout import FieldSpec

__all__ = ["Heat"]


@dataclass(frozen=True, eq=False)
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

    nx: int = 8
    kappa: float = 0.02
    gamma: float = 0.5
    dt: float = 0.1
    modes: int = 2
    spread: float = 1.0
    fields: tuple = (FieldSpec("temperature"), FieldSpec("source", parameter=True))
    _meshes: dict = field(default_factory=dict, repr=False)
    _solvers: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for name in ("nx", "modes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Heat: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("kappa", "dt", "spread"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"Heat: {name} must be positive, got {getattr(self, name)}")
        if self.gamma < 0:
            raise ConfigError(f"Heat: gamma must be non-negative, got {self.gamma}")

    def mesh(self, comm):
        """The mesh on ``comm``, built once per communicator."""
        import firedrake

        key = id(comm)
        if key not in self._meshes:
            self._meshes[key] = firedrake.UnitSquareMesh(self.nx, self.nx, comm=comm)
        return self._meshes[key]

    def new_state(self, comm) -> dict:
        import firedrake

        V = firedrake.FunctionSpace(self.mesh(comm), "CG", 1)
        return {"temperature": firedrake.Function(V, name="temperature"),
                "source": firedrake.Function(V, name="source")}

    def _random_field(self, f, rng: np.random.Generator, mean: float) -> None:
        """Fill ``f`` with ``mean`` plus random cosine modes, evaluated at its nodes.

        The modes are evaluated with numpy at the node coordinates (interpolated once per
        space), so a new draw compiles no new form, and a node's value depends only on its
        position: the field is the same however the mesh is split.
        """
        xy = self._node_coordinates(f.function_space())
        k = np.arange(self.modes)
        a = self.spread * rng.standard_normal((self.modes, self.modes)) / (1.0 + k[:, None] ** 2 + k[None, :] ** 2)
        cx = np.cos(np.pi * np.outer(xy[:, 0], k))  # (nodes, modes)
        cy = np.cos(np.pi * np.outer(xy[:, 1], k))
        f.dat.data[:] = mean + np.einsum("pi,ij,pj->p", cx, a, cy)

    def _node_coordinates(self, V) -> np.ndarray:
        key = ("xy", id(V.mesh()))
        if key not in self._meshes:
            import firedrake

            X = firedrake.Function(firedrake.VectorFunctionSpace(V.mesh(), "CG", 1))
            self._meshes[key] = X.interpolate(firedrake.SpatialCoordinate(V.mesh())).dat.data_ro.copy()
        return self._meshes[key]

    def initial_state(self, state: dict, rng: np.random.Generator) -> None:
        self._random_field(state["temperature"], rng, mean=0.0)
        self._random_field(state["source"], rng, mean=1.0)

    def _solver(self, state: dict):
        """Backward-Euler solver of one member, built once and reused."""
        import firedrake
        from firedrake import dx, grad, inner

        key = id(state["temperature"])
        if key not in self._solvers:
            T, s = state["temperature"], state["source"]
            V = T.function_space()
            u, v = firedrake.TrialFunction(V), firedrake.TestFunction(V)
            T_old = firedrake.Function(V)
            a = ((1 + self.dt * self.gamma) * u * v + self.dt * self.kappa * inner(grad(u), grad(v))) * dx
            L = (T_old + self.dt * s) * v * dx
            problem = firedrake.LinearVariationalProblem(a, L, T)
            solver = firedrake.LinearVariationalSolver(problem, solver_parameters={
                "ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
            self._solvers[key] = (solver, T_old)
        return self._solvers[key]

    def forecast(self, state: dict, t0: float, t1: float) -> None:
        steps = (t1 - t0) / self.dt
        n = round(steps)
        if n < 0 or abs(steps - n) > 1e-9 * max(1.0, steps):
            raise InputError(f"Heat: t1 - t0 = {t1 - t0!r} is not a whole number of steps dt = {self.dt}")
        solver, T_old = self._solver(state)
        for _ in range(n):
            T_old.assign(state["temperature"])
            solver.solve()
