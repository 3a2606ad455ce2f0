r"""Hybrid assimilation-inversion: the basal friction inferred with Icepack's inverse machinery.

After an analysis, the friction coefficient :math:`C` of an Icepack member is re-estimated
from its (analysed) thickness and the observed velocity :math:`u^o` (ICESEE, sections 2.5
and 4.2) by minimizing, over :math:`C_{lo} \le C \le C_{hi}`, the Tikhonov-regularized misfit

.. math::
    J(C) = \frac{1}{2|\Omega|} \int_\Omega \frac{|u(C) - u^o|^2}{\sigma^2} \, dx
         + \frac{\ell^2}{2|\Omega| C_s^2} \int_\Omega |\nabla C|^2 \, dx ,

where :math:`u(C)` is Icepack's diagnostic solve (the member's flow model and fields),
:math:`\sigma` the velocity error, :math:`\ell` the smoothing length and :math:`C_s` a
friction scale (the middle of the bounds unless given). The problem is an
``icepack.statistics.StatisticsProblem`` (simulation, misfit, regularization, control); its
gradient comes from pyadjoint through Firedrake's annotated solves, and the bounded
minimization is scipy's L-BFGS-B on pyadjoint's reduced functional (its numpy view).
Icepack's ``MaximumProbabilityEstimator`` drives ROL, which takes no bounds, and through the
pinned pyadjoint (2025.10) its ROL interface passes an argument the reduced functional no
longer takes; nothing of the optimization is re-implemented here.

The result goes into each member's ``friction`` (:attr:`Target.MEMBERS`: one inversion per
member, from its own thickness), or is inferred once from the ensemble mean and added to
every member as a shift that keeps the members' anomalies (:attr:`Target.MEAN`), then
clipped to the bounds.

References
----------
Kyanjo, B. et al. (2025). ICESEE, sections 2.5 and 4.2 (hybrid assimilation-inversion).

Shapero, D. et al. (2021). icepack, version 1.0. Geosci. Model Dev. 14, 4593-4616 (its
``statistics`` module). https://doi.org/10.5194/gmd-14-4593-2021

Byrd, R. H., Lu, P., Nocedal, J. and Zhu, C. (1995). A limited memory algorithm for bound
constrained optimization. SIAM J. Sci. Comput. 16, 1190-1208.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError

__all__ = ["FrictionInversion", "InversionResult", "Target"]


class Target(enum.Enum):
    """Where an inversion's friction goes."""

    MEMBERS = "members"  #: one inversion per member, from its own thickness
    MEAN = "mean"  #: one inversion from the ensemble mean, the change added to every member


@dataclass(frozen=True)
class InversionResult:
    """What one inversion did: the misfit term of :math:`J` before and after."""

    misfit_before: float
    misfit_after: float


@dataclass(frozen=True)
class FrictionInversion:
    """Infer the friction of Icepack members from their thickness and an observed velocity.

    Parameters
    ----------
    velocity_std
        Standard deviation of the observed velocity, :math:`\\sigma` (m/yr).
    length
        Tikhonov smoothing length :math:`\\ell` (m).
    bounds
        ``(C_lo, C_hi)``, bounds of the friction coefficient.
    scale
        Friction scale :math:`C_s` of the regularization (default: the middle of the bounds).
    max_iterations
        L-BFGS-B iterations at most.
    target
        :class:`Target` (``"members"`` or ``"mean"`` from ``params.yaml``).

    Raises
    ------
    ConfigError
        If the standard deviation, the length, the scale or the iteration count is not positive, the
        bounds are not ``0 <= C_lo < C_hi``, or the target is unknown.

    Examples
    --------
    >>> inversion = FrictionInversion(velocity_std=1.0, length=200.0, bounds=(1e-3, 0.2))
    >>> friction, result = inversion.invert(member.fields, flow, solver_options, observed_velocity)
    """

    velocity_std: float
    length: float
    bounds: tuple[float, float]
    scale: float | None = None
    max_iterations: int = 20
    target: Target = Target.MEMBERS

    def __post_init__(self):
        for name in ("velocity_std", "length", "max_iterations"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"FrictionInversion.{name}: must be positive, got {value!r}")
        if len(self.bounds) != 2:
            raise ConfigError(f"FrictionInversion.bounds: give [C_lo, C_hi], got {self.bounds!r}")
        lo, hi = (float(b) for b in self.bounds)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi):
            raise ConfigError(f"FrictionInversion.bounds: must be 0 <= C_lo < C_hi, got {self.bounds!r}")
        object.__setattr__(self, "bounds", (lo, hi))
        if self.scale is not None and not (np.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"FrictionInversion.scale: must be positive, got {self.scale!r}")
        if not isinstance(self.target, Target):
            try:
                object.__setattr__(self, "target", Target(self.target))
            except ValueError:
                raise ConfigError(f"FrictionInversion.target: {self.target!r} is not known; choose "
                                  f"{' or '.join(t.value for t in Target)}") from None

    def invert(self, fields: Mapping[str, Any], flow, solver_options: Mapping[str, Any], observed):
        """The friction minimizing :math:`J` for the simulation fields ``fields``.

        Parameters
        ----------
        fields
            An Icepack member's fields (``IcepackMember.fields``): ``friction`` is the first
            guess, ``velocity`` the diagnostic solves' first guess; the others (thickness,
            surface, fluidity...) are held fixed.
        flow, solver_options
            The member's Icepack flow model and ``FlowSolver`` options.
        observed
            The observed velocity, a Function on the velocity's space.

        Returns
        -------
        (friction, InversionResult)
            A new Function (within the bounds), and the misfits before and after.
        """
        import firedrake
        import firedrake.adjoint as fda
        import icepack
        import scipy.optimize
        from firedrake import Constant, dx, grad, inner
        from icepack.statistics import StatisticsProblem
        from pyadjoint.reduced_functional_numpy import ReducedFunctionalNumPy

        C0 = fields["friction"]
        Q = C0.function_space()
        area = firedrake.assemble(Constant(1.0) * dx(Q.mesh()))
        lo, hi = self.bounds
        sigma, ell = Constant(self.velocity_std), Constant(self.length)
        scale = Constant(self.scale or 0.5 * (lo + hi))
        solver = icepack.solvers.FlowSolver(flow, **dict(solver_options))
        held = {k: v for k, v in fields.items()
                if k not in ("friction", "velocity", "accumulation", "thickness_inflow")}

        def simulation(C):
            return solver.diagnostic_solve(velocity=fields["velocity"], friction=C, **held)

        def misfit(u):
            return 0.5 / area * inner(u - observed, u - observed) / sigma ** 2 * dx

        def regularization(C):
            return 0.5 / area * (ell / scale) ** 2 * inner(grad(C), grad(C)) * dx

        start = firedrake.Function(Q).interpolate(firedrake.max_value(lo, firedrake.min_value(hi, C0)))
        problem = StatisticsProblem(simulation, misfit, regularization, start)
        before = float(firedrake.assemble(misfit(simulation(C0))))
        tape = fda.get_working_tape()
        tape.clear_tape()
        fda.continue_annotation()
        try:
            C = problem.controls.copy(deepcopy=True)
            J = sum(firedrake.assemble(E(problem.simulation(C))) for E in problem.loss_functional)
            J = J + sum(firedrake.assemble(R(C)) for R in problem.regularization)
            rf = fda.ReducedFunctional(J, fda.Control(C))
        finally:
            fda.pause_annotation()
        try:
            rf = ReducedFunctionalNumPy(rf)
            x0 = rf.obj_to_array([C])
            res = scipy.optimize.minimize(rf.__call__, x0, jac=lambda x: rf.derivative(), method="L-BFGS-B",
                                          bounds=[self.bounds] * x0.size, options={"maxiter": self.max_iterations})
            result = rf.set_controls(res.x)[0].copy(deepcopy=True)
        finally:
            tape.clear_tape()
        after = float(firedrake.assemble(misfit(simulation(result))))
        return result, InversionResult(before, after)


def observed_function(V, sites: np.ndarray, values: np.ndarray):
    """A Function on the Lagrange space ``V`` holding ``values`` observed at its nodes.

    ``sites`` are the ``(p, d)`` positions of the observed nodes and ``values`` the ``p * c``
    values (``c`` components per node, interleaved), in any order: each node of this rank
    takes the values of the site at its position (a k-d tree), so the result does not depend
    on how the observations or the mesh are ordered or split.

    Raises
    ------
    ConfigError
        If a node of ``V`` has no observation at its position (the velocity must be observed
        at every node for an inversion).
    """
    import firedrake
    from scipy.spatial import cKDTree

    f = firedrake.Function(V)
    mesh = V.mesh()
    X = firedrake.Function(firedrake.VectorFunctionSpace(mesh, V.ufl_element().sub_elements[0]
                                                         if V.value_size > 1 else V.ufl_element()))
    X.interpolate(firedrake.SpatialCoordinate(mesh))
    sites = np.asarray(sites, dtype=float).reshape(len(sites), -1)
    distance, index = cKDTree(sites).query(X.dat.data_ro.reshape(-1, sites.shape[1]))
    extent = max(float(np.ptp(sites, axis=0).max()), 1.0)
    if np.any(distance > 1e-8 * extent):
        raise ConfigError(f"inversion: {int(np.sum(distance > 1e-8 * extent))} node(s) of the velocity's space have no "
                          "observed velocity; observe the velocity at every node (NodalValues('velocity'))")
    c = V.value_size
    f.dat.data[:] = np.asarray(values, dtype=float).reshape(-1, c)[index].reshape(f.dat.data.shape)
    return f
