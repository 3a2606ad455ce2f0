r"""A marine glacier over a bed with relief, for hybrid assimilation-inversion (ICESEE section 4.2).

A scaled-down marine-terminating glacier in the spirit of the ICESEE paper's section 4.2:
grounded ice enters at :math:`x = 0` (velocity fixed) between two side walls and flows over a
bed that deepens from ``bed[0]`` above to ``bed[1]`` below sea level, so that it reaches
flotation before the calving front (grounded and floating parts). The bed carries a relief,
a Gaussian random field of standard deviation ``relief[0]`` and correlation length
``relief[1]``, and the basal friction a pattern :math:`C = \bar C \exp(\xi)` with :math:`\xi` a
random field (``friction_pattern``), both drawn once from ``seed`` for the truth. Sliding is
Icepack's Weertman law with the coefficient scaled by the fraction of the overburden not borne
by water (:func:`~fdassim.models.icepack.friction_with_flotation`), so friction vanishes where
the ice floats. The surface falls linearly from ``surface[0]`` at the inflow to ``surface[1]``
at :math:`x = f_s L_x` (``shelf``) and stays there; the thickness is the surface minus the bed
where that grounds the ice, and the flotation thickness :math:`s / (1 - \rho_I / \rho_W)`
elsewhere: :math:`h = \min(s - b, s / (1 - \rho_I / \rho_W))`.

What the members know at the start (a glaciologist's position before a survey): the
surface (altimetry) and the large-scale bed trend, not its relief; the friction as a wrong,
featureless first guess. A member's bed is the trend plus its own draw of the relief's random
field, its thickness follows from the surface and that bed as above (so its thickness error
mirrors its bed error where it is grounded; the floating ice's thickness is known),
its friction ``friction_factor`` times :math:`\bar C`, its velocity from a diagnostic solve.

State: ``thickness`` and ``velocity``; the ``bed`` a parameter, estimated with the state
(observed once along flight lines, and through its ensemble correlation with the thickness at
every analysis); the ``friction`` carried: each member owns it, the restart stores it, and
:class:`~fdassim.models.inversion.HybridInversion` infers it after each analysis.

All the physics is Icepack's (:class:`fdassim.models.icepack.IcepackModel` runs it).

References
----------
Kyanjo, B. et al. (2025). ICESEE: an ensemble Kalman filter framework for ice-sheet models
(sections 2.5 and 4.2: hybrid assimilation-inversion).

Shapero, D. et al. (2021). icepack: a new glacier flow modeling package in Python, version
1.0. Geosci. Model Dev. 14, 4593-4616. https://doi.org/10.5194/gmd-14-4593-2021
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..options import check_options, option
from ..perturbations.fields import RandomField
from .icepack import IcepackExperiment, IcepackModel, friction_with_flotation, node_positions

__all__ = ["MarineGlacier"]


@dataclass(frozen=True, eq=False)
class MarineGlacier(IcepackExperiment):
    """A marine glacier with bed relief and a friction pattern; see the module docstring.

    Parameters
    ----------
    Lx, Ly
        Length and width of the domain (m).
    nx, ny
        Quadrilateral cells along and across the flow.
    degree
        Degree of the continuous elements.
    dt
        Time step (years).
    temperature
        Ice temperature (K), for the fluidity.
    bed
        Elevations of the bed's trend at the inflow and at the front (m).
    surface
        Surface elevation at the inflow and over the shelf (m).
    shelf
        Fraction of the length at which the surface reaches ``surface[1]``.
    speed
        Inflow and front speeds of the velocity's initial guess (m/yr).
    accumulation
        ``(a_in, da)``: accumulation :math:`a_{in} + \\delta a \\, x / L_x` (m/yr).
    relief
        Standard deviation (m) and correlation length (m) of the bed relief; the members'
        prior bed spread is the same random field.
    friction_pattern
        Standard deviation and correlation length (m) of :math:`\\xi` in the true friction.
    friction_factor
        The members' first-guess friction, as a factor of the featureless :math:`\\bar C`.
    seed
        Seed of the truth's relief and friction pattern.

    Raises
    ------
    OptionError
        Naming the option, for a value of the wrong type or out of range
        (:func:`fdassim.options.check_options`).

    Examples
    --------
    >>> model = MarineGlacier(nx=12, ny=4)
    >>> ensemble = fdassim.Ensemble(model, size=20, truth=True)
    """

    Lx: float = option(5e3, gt=0)
    Ly: float = option(1.2e3, gt=0)
    nx: int = option(20, gt=0)
    ny: int = option(6, gt=0)
    degree: int = option(1, gt=0)
    dt: float = option(0.5, gt=0)
    temperature: float = option(255.0, gt=0)
    bed: tuple[float, float] = (200.0, -700.0)
    surface: tuple[float, float] = option((850.0, 60.0), gt=0)
    shelf: float = option(0.75, gt=0, le=1)
    speed: tuple[float, float] = option((20.0, 2400.0), gt=0)
    accumulation: tuple[float, float] = (1.7, -2.7)
    relief: tuple[float, float] = option((40.0, 500.0), gt=0)
    friction_pattern: tuple[float, float] = option((0.3, 800.0), gt=0)
    friction_factor: float = option(0.7, gt=0)
    seed: int = option(7, ge=0)
    _icepack: Any = field(init=False, repr=False)  # the Model protocol: Icepack's, through the adapter
    _relief: Any = field(init=False, repr=False)

    def __post_init__(self):
        check_options(self)  # types and bounds, as every registered class
        import icepack

        object.__setattr__(self, "_relief", RandomField(std=self.relief[0], length=self.relief[1]))
        object.__setattr__(self, "_icepack", IcepackModel(
            self.reference_fields, icepack.models.IceStream(friction=friction_with_flotation),
            state=("thickness", "velocity"), parameters=("bed",), carried=("friction",), dt=self.dt,
            solver_options={"dirichlet_ids": [1], "side_wall_ids": [3, 4]},
            initial=self.prior_fields, truth=_keep, diagnose=True))

    # -- the experiment -------------------------------------------------------------------------
    def reference_fields(self, comm) -> dict:
        """The mesh and the true fields on ``comm``; velocity from a diagnostic solve."""
        import firedrake
        import icepack

        mesh = firedrake.RectangleMesh(self.nx, self.ny, self.Lx, self.Ly, quadrilateral=True, comm=comm)
        Q = firedrake.FunctionSpace(mesh, "CG", self.degree)
        V = firedrake.VectorFunctionSpace(mesh, "CG", self.degree)
        x, _ = firedrake.SpatialCoordinate(mesh)
        xy = self.nodes(firedrake.Function(Q))
        rng = np.random.default_rng(self.seed)
        b = firedrake.Function(Q).interpolate(self._trend(x))
        b.dat.data[:] += self._relief.sample(xy, rng)
        h = firedrake.Function(Q)
        h.dat.data[:] = self._thickness(xy[:, 0], b.dat.data_ro)
        u_in, u_out = self.speed
        C = firedrake.Function(Q)
        C.dat.data[:] = self.smooth_friction(C)
        pattern = RandomField(std=self.friction_pattern[0], length=self.friction_pattern[1]).sample(xy, rng)
        C.dat.data[:] *= np.exp(pattern)
        fields = {
            "thickness": h, "surface": firedrake.Function(Q).interpolate(icepack.compute_surface(thickness=h, bed=b)),
            "bed": b, "friction": C,
            "velocity": firedrake.Function(V).interpolate(
                firedrake.as_vector((u_in + (u_out - u_in) * (x / self.Lx) ** 2, 0))),
            "fluidity": firedrake.Function(Q).assign(icepack.rate_factor(self.temperature)),
            "accumulation": firedrake.Function(Q).interpolate(self.accumulation[0] + self.accumulation[1] * x / self.Lx),
            "thickness_inflow": h.copy(deepcopy=True),
        }
        solver = icepack.solvers.FlowSolver(self._icepack.flow, **dict(self._icepack.solver_options))
        fields["velocity"] = solver.diagnostic_solve(**{k: v for k, v in fields.items()
                                                        if k not in ("accumulation", "thickness_inflow")})
        return fields

    def _trend(self, x):
        b0, b1 = self.bed
        return b0 - (b0 - b1) * x / self.Lx

    def _thickness(self, x: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Grounded where the surface minus the bed exceeds the flotation thickness."""
        from icepack.constants import ice_density as rho_I
        from icepack.constants import water_density as rho_W

        s0, s1 = self.surface
        s = s0 - (s0 - s1) * np.minimum(x / (self.shelf * self.Lx), 1.0)
        return np.minimum(s - b, s / (1 - rho_I / rho_W))

    def prior_fields(self, fields: dict, rng: np.random.Generator | None) -> None:
        """Turn the true fields into a member's first guess, in place: the bed trend plus a draw
        of the relief (none without ``rng``), the thickness the surface minus that bed, the
        featureless friction times ``friction_factor``."""
        h, b, C = fields["thickness"], fields["bed"], fields["friction"]
        xy = self.nodes(b)
        b.dat.data[:] = self._trend(xy[:, 0])
        if rng is not None:
            b.dat.data[:] += self._relief.sample(xy, rng)
        h.dat.data[:] = self._thickness(xy[:, 0], b.dat.data_ro)
        C.dat.data[:] = self.friction_factor * self.smooth_friction(C)

    def smooth_friction(self, C) -> np.ndarray:
        """:math:`\\bar C` at the nodes of ``C``'s space: the friction without its pattern."""
        from icepack.constants import gravity as g
        from icepack.constants import ice_density as rho_I
        from icepack.constants import weertman_sliding_law as m

        (s0, s1), u_in = self.surface, self.speed[0]
        tau_D = rho_I * g * (s0 - self.bed[0]) * (s0 - s1) / (self.shelf * self.Lx)  # driving stress at the inflow
        return (0.95 - 0.05 * self.nodes(C)[:, 0] / self.Lx) * tau_D / u_in ** (1 / m)

    nodes = staticmethod(node_positions)


def _keep(fields, rng) -> None:
    """The truth starts from the reference fields, as ``reference_fields`` built them."""
