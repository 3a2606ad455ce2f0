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

from ..errors import ConfigError, OptionError
from ..options import check_options, option

__all__ = ["FrictionInversion", "HybridInversion", "InversionResult", "Target", "observed_function"]


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
    OptionError
        Naming the option, if an option has the wrong type (checked by
        :func:`fdassim.options.check_options`), the standard deviation, the length, the scale
        or the iteration count is not positive, the bounds are not ``0 <= C_lo < C_hi``, or
        the target is unknown.

    Examples
    --------
    >>> inversion = FrictionInversion(velocity_std=1.0, length=200.0, bounds=(1e-3, 0.2))
    >>> friction, result = inversion.invert(member.fields, flow, solver_options, observed_velocity)
    """

    velocity_std: float = option(gt=0)
    length: float = option(gt=0)
    bounds: tuple[float, float] = option(ge=0)
    scale: float | None = option(None, gt=0)
    max_iterations: int = option(20, gt=0)
    target: Target = Target.MEMBERS

    def __post_init__(self):
        check_options(self)  # types and bounds, as every registered class (a bool is not a number)
        lo, hi = self.bounds
        if not lo < hi:
            raise OptionError("FrictionInversion", "bounds", f"must be 0 <= C_lo < C_hi, got {self.bounds!r}")

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


def observed_function(V, positions: np.ndarray, values: np.ndarray):
    """A Function on the Lagrange space ``V`` holding ``values`` observed at its nodes.

    ``values`` are ``p * c`` values at ``p`` nodes (``c`` components per node, interleaved) and
    ``positions`` their ``(p * c, d)`` positions (a node's repeated for each component, as the
    observation operators give them), in any order of the nodes: each node of this rank
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
    Q = V if V.value_size == 1 else V.sub(0).collapse()
    X = firedrake.Function(firedrake.VectorFunctionSpace(mesh, Q.ufl_element()))
    X.interpolate(firedrake.SpatialCoordinate(mesh))
    c = V.value_size
    positions = np.asarray(positions, dtype=float)
    sites = positions.reshape(len(positions), -1)[::c]
    distance, index = cKDTree(sites).query(X.dat.data_ro.reshape(-1, sites.shape[1]))
    extent = max(float(np.ptp(sites, axis=0).max()), 1.0)
    if np.any(distance > 1e-8 * extent):
        raise ConfigError(f"inversion: {int(np.sum(distance > 1e-8 * extent))} node(s) of the velocity's space have no "
                          "observed velocity; observe the velocity at every node (NodalValues('velocity'))")
    f.dat.data[:] = np.asarray(values, dtype=float).reshape(-1, c)[index].reshape(f.dat.data.shape)
    return f


@dataclass(frozen=True)
class HybridInversion:
    """The inversion step of a hybrid assimilation-inversion cycle (see the module docstring).

    Called after an analysis with the observations of that cycle, it infers each local
    member's friction (or, for :attr:`Target.MEAN`, the mean's, shifted into every member)
    from the member's analysed fields and the observed velocity, and writes it into the
    member's ``friction`` Function for the next forecast. Nothing happens at a cycle where
    the velocity is not observed.

    Parameters
    ----------
    inversion
        The :class:`FrictionInversion` to run.
    quantity
        The name of the observed quantity holding the velocity at every node.
    """

    inversion: FrictionInversion
    quantity: str = "velocity"

    def __call__(self, ensemble, cycle: int, observed: Mapping[str, Any]) -> list:
        """Run the inversion on ``ensemble``'s local members (not the truth).

        ``observed`` maps the names of the quantities observed at this cycle to their kept
        observations (objects with ``positions`` and ``values``). Returns the
        :class:`InversionResult` of each inversion run on this rank.
        """
        model = getattr(ensemble.model, "icepack", ensemble.model)
        carried = [f.name for f in model.fields if f.carried]
        if "friction" not in carried:
            raise ConfigError(f"HybridInversion: friction must be a carried field of the model (it carries {carried}): "
                              "each member needs its own friction, stored in the restart; build the model with "
                              "IcepackModel(..., carried=('friction',))")
        if self.quantity not in observed:
            return []
        members = [(i, m) for i, m in zip(ensemble.local, ensemble.members) if i < ensemble.size]
        V = ensemble.domain.reference["velocity"].function_space()
        u_obs = observed_function(V, observed[self.quantity].positions, observed[self.quantity].values)
        if self.inversion.target is Target.MEMBERS:
            results = []
            for _, member in members:
                friction, result = self.inversion.invert(_with_surface(member.fields), model.flow,
                                                         model.solver_options, u_obs)
                member.fields["friction"].assign(friction)
                results.append(result)
            return results
        return [self._shift_mean(ensemble, members, model, u_obs)]

    def _shift_mean(self, ensemble, members, model, u_obs) -> InversionResult:
        """Invert from the ensemble mean of every field the members own (thickness, velocity,
        friction, and a bed estimated as a parameter); add the change to every member, clipped
        to the bounds."""
        reference = members[0][1].fields if members else ensemble.domain.reference
        names = getattr(ensemble.domain, "own", ("thickness", "surface", "friction", "velocity"))
        mean = {}
        for name in names:
            local = sum((m.fields[name].dat.data_ro for _, m in members), np.zeros_like(reference[name].dat.data_ro))
            total = ensemble.ens_comm.allreduce(local)
            mean[name] = reference[name].copy(deepcopy=True)
            mean[name].dat.data[:] = total / ensemble.size
        friction, result = self.inversion.invert(_with_surface(dict(reference, **mean)), model.flow,
                                                 model.solver_options, u_obs)
        shift = friction.dat.data_ro - mean["friction"].dat.data_ro
        for _, member in members:
            C = member.fields["friction"]
            C.dat.data[:] = np.clip(C.dat.data_ro + shift, *self.inversion.bounds)
        return result


def _with_surface(fields: Mapping[str, Any]) -> dict:
    """``fields`` with the surface recomputed from the (analysed) thickness and bed, when the
    simulation has both: the analysis changes them, the forecast's surface is stale."""
    fields = dict(fields)
    if "surface" in fields and "bed" in fields:
        import firedrake
        import icepack

        s = fields["surface"]
        fields["surface"] = firedrake.Function(s.function_space()).interpolate(
            icepack.compute_surface(thickness=fields["thickness"], bed=fields["bed"]))
    return fields
