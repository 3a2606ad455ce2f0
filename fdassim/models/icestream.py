r"""Icepack's synthetic ice stream, as in the twin experiment of the ICESEE paper (section 4.1).

The ice stream of Icepack's "synthetic ice stream" tutorial at the size ICESEE uses: a
rectangle of 5 km x 1.2 km (12 x 8 quadrilaterals, degree-2 elements: 425 values per
scalar field), ice flowing in at :math:`x = 0` (velocity fixed) between two side walls and
out over a bed that deepens from 200 m above to 400 m below sea level, so that the ice
reaches flotation near the terminus (grounded and floating parts). The surface falls from
850 m to 50 m; the thickness is surface minus bed. Sliding follows the tutorial's law:
Icepack's Weertman ``bed_friction`` with the coefficient scaled by the fraction of the
overburden not borne by water, so friction vanishes where the ice floats. The accumulation
rate is :math:`a = a_{in} + \delta a \, x / L_x`.

State: thickness and velocity (``[h, u, v]``) and the accumulation (``smb``) as a
parameter. The truth starts from the tutorial's state (velocity from a diagnostic solve) with
:math:`a_{in} = 1.7`, :math:`\delta a = -2.7` m/yr. The members start from a wrong state:
accumulation :math:`0.17 - 0.27 x / L_x`, thickness lowered by a piecewise-linear bump of
350 m peaking at :math:`x = L_x / 4` (1.25 km, the reference point's abscissa) and vanishing
at the inflow and beyond :math:`L_x / 2`, plus Gaussian random fields with standard
deviations 0.8 m (thickness), 0.4 and 0.01 m/yr (velocity components), 0.08 m/yr
(accumulation) and correlation lengths 96 m (75 m for the accumulation). ICESEE lowers the
first quarter of the thickness values in their storage order, which is not a region of the
domain; the bump here is placed in space.

All the physics is Icepack's (:class:`fdassim.models.icepack.IcepackModel` runs it).

References
----------
Kyanjo, B. et al. (2025). ICESEE: an ensemble Kalman filter framework for ice-sheet
models (section 4.1).

Shapero, D. et al. (2021). icepack: a new glacier flow modeling package in Python,
version 1.0. Geosci. Model Dev. 14, 4593-4616. https://doi.org/10.5194/gmd-14-4593-2021
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..options import check_options
from ..perturbations.fields import RandomField
from .icepack import IcepackExperiment, IcepackModel, friction_with_flotation

__all__ = ["IceStream"]

_FIELDS = ("thickness", "velocity x", "velocity y", "accumulation")


@dataclass(frozen=True, eq=False)
class IceStream(IcepackExperiment):
    """The synthetic ice stream twin (ICESEE section 4.1); see the module docstring.

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
    bed, surface
        Elevations at the inflow and at the terminus (m).
    speed
        Inflow and terminus speeds of the velocity's initial guess (m/yr).
    accumulation, prior_accumulation
        ``(a_in, da)`` of the true and of the members' initial accumulation (m/yr).
    bump
        Height of the thickness bump removed from the members' initial thickness (m).
    sigma
        Standard deviations of the initial perturbations of thickness (m), the velocity's
        components (m/yr) and accumulation (m/yr).
    length
        Their correlation lengths (m).
    friction_carried
        Give each member its own friction, carried to the next forecast and stored in the
        restart (for :class:`~fdassim.models.inversion.HybridInversion`).

    Raises
    ------
    ConfigError
        If a size, a standard deviation or a length is not positive.
    """

    Lx: float = 5e3
    Ly: float = 1.2e3
    nx: int = 12
    ny: int = 8
    degree: int = 2
    dt: float = 0.5
    temperature: float = 255.0
    bed: tuple[float, float] = (200.0, -400.0)
    surface: tuple[float, float] = (850.0, 50.0)
    speed: tuple[float, float] = (20.0, 2400.0)
    accumulation: tuple[float, float] = (1.7, -2.7)
    prior_accumulation: tuple[float, float] = (0.17, -0.27)
    bump: float = 350.0
    sigma: tuple[float, float, float, float] = (0.8, 0.4, 0.01, 0.08)
    length: tuple[float, float, float, float] = (96.0, 96.0, 96.0, 75.0)
    friction_carried: bool = False
    _icepack: Any = field(init=False, repr=False)
    _perturbations: tuple = field(init=False, repr=False)
    _nodes: list = field(init=False, repr=False, default_factory=list)  # (mesh, element, positions), holding the mesh

    def __post_init__(self):
        check_options(self)  # types, as every registered class (a bool is not a number)
        for name in ("Lx", "Ly", "nx", "ny", "degree", "dt", "temperature"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"IceStream: {name} must be positive, got {getattr(self, name)!r}")
        for name in ("sigma", "length"):
            bad = [f"{q} {v!r}" for q, v in zip(_FIELDS, getattr(self, name)) if not v > 0]
            if bad:
                raise ConfigError(f"IceStream: {name} must be positive, got {', '.join(bad)}")
        if self.bump < 0:
            raise ConfigError(f"IceStream: bump must be non-negative, got {self.bump!r}")
        object.__setattr__(self, "_perturbations",
                           tuple(RandomField(std=s, length=ell) for s, ell in zip(self.sigma, self.length)))
        import icepack

        flow = icepack.models.IceStream(friction=friction_with_flotation)
        object.__setattr__(self, "_icepack", IcepackModel(
            self.reference_fields, flow, state=("thickness", "velocity"), parameters=("accumulation",), dt=self.dt,
            solver_options={"dirichlet_ids": [1], "side_wall_ids": [3, 4]},
            initial=self._draw, truth=_keep, carried=("friction",) if self.friction_carried else ()))

    # -- the experiment -------------------------------------------------------------------------
    def reference_fields(self, comm) -> dict:
        """The tutorial's mesh and true fields on ``comm``; velocity from a diagnostic solve."""
        import firedrake
        import icepack
        from icepack.constants import gravity as g
        from icepack.constants import ice_density as rho_I
        from icepack.constants import weertman_sliding_law as m

        mesh = firedrake.RectangleMesh(self.nx, self.ny, self.Lx, self.Ly, quadrilateral=True, comm=comm)
        Q = firedrake.FunctionSpace(mesh, "CG", self.degree)
        V = firedrake.VectorFunctionSpace(mesh, "CG", self.degree)
        x, _ = firedrake.SpatialCoordinate(mesh)
        (b_in, b_out), (s_in, s_out), (u_in, u_out) = self.bed, self.surface, self.speed
        b = firedrake.Function(Q).interpolate(b_in - (b_in - b_out) * x / self.Lx)
        s = firedrake.Function(Q).interpolate(s_in - (s_in - s_out) * x / self.Lx)
        h = firedrake.Function(Q).interpolate(s - b)
        tau_D = -rho_I * g * (s_in - b_in) * (s_out - s_in) / self.Lx  # driving stress at the inflow
        fields = {
            "thickness": h, "surface": s, "bed": b,
            "velocity": firedrake.Function(V).interpolate(
                firedrake.as_vector((u_in + (u_out - u_in) * (x / self.Lx) ** 2, 0))),
            "fluidity": firedrake.Function(Q).assign(icepack.rate_factor(self.temperature)),
            "friction": firedrake.Function(Q).interpolate((0.95 - 0.05 * x / self.Lx) * tau_D / u_in ** (1 / m)),
            "accumulation": firedrake.Function(Q).interpolate(self._accumulation(x, *self.accumulation)),
            "thickness_inflow": h.copy(deepcopy=True),
        }
        solver = icepack.solvers.FlowSolver(self._icepack.flow, **dict(self._icepack.solver_options))
        fields["velocity"] = solver.diagnostic_solve(**{k: v for k, v in fields.items()
                                                        if k not in ("accumulation", "thickness_inflow")})
        return fields

    def _accumulation(self, x, a_in, da):
        return a_in + da * x / self.Lx

    def prior_state(self, fields: dict) -> None:
        """Turn the true fields into the members' wrong state, in place (no random part): the
        thickness bump removed, the prior accumulation. The free run starts from it."""
        h, a = fields["thickness"], fields["accumulation"]
        x = self.nodes(h)[:, 0]
        q = self.Lx / 4
        h.dat.data[:] -= self.bump * np.clip(1 - np.abs(x - q) / q, 0, None)
        a.dat.data[:] = self._accumulation(x, *self.prior_accumulation)

    def _draw(self, fields: dict, rng: np.random.Generator) -> None:
        """A member's initial fields: the wrong state plus correlated random perturbations."""
        self.prior_state(fields)
        h, u, a = fields["thickness"], fields["velocity"], fields["accumulation"]
        xy = self.nodes(h)
        dh, du, dv, da = self._perturbations
        h.dat.data[:] += dh.sample(xy, rng)
        u.dat.data[:, 0] += du.sample(xy, rng)
        u.dat.data[:, 1] += dv.sample(xy, rng)
        a.dat.data[:] += da.sample(xy, rng)

    def nodes(self, f) -> np.ndarray:
        """``(nodes, 2)`` positions of the nodes of the scalar Lagrange field ``f`` (read-only).

        Computed once per mesh and element (an interpolation of the coordinates), then shared
        by every member's draws on that mesh.
        """
        import firedrake

        mesh, element = f.function_space().mesh(), f.function_space().ufl_element()
        for m, e, xy in self._nodes:
            if m is mesh and e == element:
                return xy
        V = firedrake.VectorFunctionSpace(mesh, element)
        xy = firedrake.Function(V).interpolate(firedrake.SpatialCoordinate(mesh)).dat.data_ro.copy()
        xy.flags.writeable = False
        self._nodes.append((mesh, element, xy))
        return xy


def _keep(fields, rng) -> None:
    """The truth starts from the tutorial's state, as ``setup`` built it."""

