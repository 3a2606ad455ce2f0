r"""A marine-terminating glacier along a flowline, on Icepack's ice stream model in 1-D.

In the spirit of Robel's flowline model as the ICESEE paper uses it (shallow-shelf flow, a
grounding line, a bed with a sill), built on Firedrake: an interval mesh from an inflow
boundary (:math:`x = 0`: ice from upstream at a fixed speed and thickness) to the calving
front (:math:`x = L`), and Icepack's ``IceStream`` physics with a scalar velocity (Icepack's
calculus accepts 1-D meshes; its ``IceShelf`` and side-friction terms do not): membrane
stresses, Weertman sliding whose coefficient is scaled by the fraction of the overburden not
borne by water (so the ice slides freely where it floats), the terminal stress of the ice
front, and mass transport. The grounding line is where the ice reaches flotation,
:math:`h = -(\rho_W / \rho_I) b`.

The bed deepens downstream with a sill (a Gaussian ridge) in front of a trough; the glacier
is spun up (with the prior accumulation) to a steady state whose grounding line sits on the
sill's seaward flank. The accumulation is a parameter: the members start from the prior
value plus a random field, the truth has ``accumulation_truth`` (net ablation by default),
so the glacier thins and its grounding line moves while the assimilation learns the
accumulation.

State: ``thickness``, ``velocity``, ``grounding_line`` (the grounding line position, m, a
one-value array diagnosed from the thickness after every step; in the state so that it can
be observed and its analysis reported, and recomputed by the forecast from the analysed
thickness, since on a fixed grid the thickness decides where the ice floats), and the
``accumulation`` parameter. A flowline member is not split over ranks.

References
----------
Robel, A. A., Wilson, E. and Seroussi, H. (2022). Layered seawater intrusion and melt under
grounded ice. The Cryosphere 16, 451-469 (the flowline model ICESEE uses descends from
Robel's group's models).

Schoof, C. (2007). Ice sheet grounding line dynamics: steady states, stability, and
hysteresis. J. Geophys. Res. 112, F03S28. https://doi.org/10.1029/2006JF000664
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..options import check_options, option
from .icepack import IcepackModel

__all__ = ["Flowline", "FlowlineMember", "grounding_line"]


def grounding_line(x: np.ndarray, h: np.ndarray, b: np.ndarray, rho_ratio: float) -> float:
    r"""The first position downstream where the ice floats.

    The height above flotation :math:`f = h + \rho_W / \rho_I \, \min(b, 0)` is positive
    where the ice is grounded; the grounding line is the first zero of :math:`f` along
    increasing :math:`x`, by linear interpolation between nodes (the end of the domain if
    the ice is grounded everywhere, its start if it floats everywhere).

    Parameters
    ----------
    x, h, b
        Node positions, thickness and bed elevation (any order).
    rho_ratio
        :math:`\rho_W / \rho_I`.
    """
    order = np.argsort(x)
    x, f = x[order], (h + rho_ratio * np.minimum(b, 0.0))[order]
    afloat = np.flatnonzero(f <= 0)
    if afloat.size == 0:
        return float(x[-1])
    j = int(afloat[0])
    if j == 0:
        return float(x[0])
    return float(x[j - 1] + (x[j] - x[j - 1]) * f[j - 1] / (f[j - 1] - f[j]))


@dataclass(frozen=True, eq=False)
class Flowline:
    """The flowline glacier twin; see the module docstring.

    Parameters
    ----------
    length
        Distance from the inflow boundary to the calving front (m).
    cells
        Cells of the interval mesh (continuous piecewise-linear elements).
    dt
        Time step (years).
    temperature
        Ice temperature (K), for the fluidity.
    friction
        Weertman sliding coefficient (MPa (m/yr)^(-1/3)).
    inflow_speed
        Speed of the ice entering at ``x = 0`` (m/yr).
    surface
        Surface elevations at the inflow and the front of the first guess the spin-up starts
        from (m); the inflow thickness is the first guess's.
    accumulation
        The members' prior accumulation, also the spin-up's (m/yr).
    accumulation_truth
        The truth's accumulation from ``t = 0`` (m/yr).
    bed_inflow, bed_slope
        Bed elevation at the inflow (m) and its slope (m per km).
    sill_height, sill_position, sill_width
        The Gaussian sill on the bed (m).
    spinup, spinup_dt
        Years of spin-up to the steady state, and its time step.
    sigma
        Standard deviations of the members' initial thickness (m) and accumulation (m/yr).
    correlation
        Correlation length of those perturbations (m).

    Raises
    ------
    OptionError
        Naming the option, if an option has the wrong type or a size, a rate or a standard
        deviation is out of range (:func:`fdassim.options.check_options`).
    """

    length: float = option(60e3, gt=0)
    cells: int = option(60, gt=0)
    dt: float = option(1.0, gt=0)
    temperature: float = option(255.0, gt=0)
    friction: float = option(0.03, gt=0)
    inflow_speed: float = option(50.0, gt=0)
    surface: tuple[float, float] = (600.0, 50.0)
    accumulation: float = 0.5
    accumulation_truth: float = -0.5
    bed_inflow: float = -50.0
    bed_slope: float = -10.0
    sill_height: float = 250.0
    sill_position: float = 35e3
    sill_width: float = option(4e3, gt=0)
    spinup: float = option(100.0, ge=0)
    spinup_dt: float = option(2.0, gt=0)
    sigma: tuple[float, float] = option((20.0, 0.6), gt=0)
    correlation: float = option(10e3, gt=0)
    _icepack: Any = field(init=False, repr=False)

    def __post_init__(self):
        check_options(self)  # types and bounds, as every registered class (a bool is not a number)
        import icepack

        from .icepack import friction_with_flotation

        object.__setattr__(self, "_icepack", IcepackModel(
            self._setup, icepack.models.IceStream(friction=friction_with_flotation),
            state=("thickness", "velocity"), parameters=("accumulation",), dt=self.dt,
            solver_options={"dirichlet_ids": [1]}, initial=self._draw, truth=self._truth))

    # -- the Model protocol --------------------------------------------------------------------
    @property
    def fields(self):
        from ..layout import FieldSpec

        return self._icepack.fields + (FieldSpec("grounding_line"),)

    @property
    def geometry(self):
        """A line (not periodic); the grounding line's value sits, for localization, at the sill."""
        from ..geometry import Geometry

        return Geometry(periodic=(None,), positions={"grounding_line": np.array([[self.sill_position]])})

    def domain(self, comm):
        if comm.size > 1:
            raise ConfigError(f"Flowline: a flowline member is not split over ranks (got {comm.size}); "
                              "use ranks_per_member: 1")
        return self._icepack.domain(comm)

    def member(self, domain, index) -> "FlowlineMember":
        return FlowlineMember(self, self._icepack.member(domain, index))

    # -- the glacier ---------------------------------------------------------------------------
    def bed(self, x):
        """Bed elevation (m) at ``x``: a UFL expression (or numbers, with ``exp=numpy.exp``)."""
        import firedrake

        return (self.bed_inflow + self.bed_slope * x / 1e3
                + self.sill_height * firedrake.exp(-((x - self.sill_position) / self.sill_width) ** 2))

    def _setup(self, comm) -> dict:
        """Mesh, fields and the spun-up steady state on ``comm``."""
        import firedrake
        import icepack

        mesh = firedrake.IntervalMesh(self.cells, self.length, comm=comm)
        Q = firedrake.FunctionSpace(mesh, "CG", 1)
        x, = firedrake.SpatialCoordinate(mesh)
        b = firedrake.Function(Q).interpolate(self.bed(x))
        (s_in, s_out), L = self.surface, self.length
        h = firedrake.Function(Q).interpolate(firedrake.max_value(s_in - (s_in - s_out) * x / L - b, 50.0))
        u_in = self.inflow_speed
        fields = {"thickness": h, "bed": b, "surface": icepack.compute_surface(thickness=h, bed=b),
                  "velocity": firedrake.Function(Q).interpolate(u_in + 10 * u_in * (x / L) ** 2),
                  "fluidity": firedrake.Function(Q).assign(icepack.rate_factor(self.temperature)),
                  "friction": firedrake.Function(Q).assign(self.friction),
                  "accumulation": firedrake.Function(Q).assign(self.accumulation),
                  "thickness_inflow": h.copy(deepcopy=True)}
        solver = icepack.solvers.FlowSolver(self._icepack.flow, dirichlet_ids=[1])
        diagnostic = [k for k in fields if k not in ("accumulation", "thickness_inflow")]
        transport = ("thickness", "velocity", "accumulation", "thickness_inflow")
        fields["velocity"] = solver.diagnostic_solve(**{k: fields[k] for k in diagnostic})
        for _ in range(round(self.spinup / self.spinup_dt)):
            fields["thickness"] = solver.prognostic_solve(self.spinup_dt, **{k: fields[k] for k in transport})
            fields["surface"] = icepack.compute_surface(thickness=fields["thickness"], bed=b)
            fields["velocity"] = solver.diagnostic_solve(**{k: fields[k] for k in diagnostic})
        return fields

    def _draw(self, fields: dict, rng: np.random.Generator) -> None:
        """A member: the steady state, thickness and accumulation perturbed by random fields."""
        from ..perturbations.fields import RandomField

        h, a = fields["thickness"], fields["accumulation"]
        x = _nodes(h)
        xy = np.column_stack([x, np.zeros_like(x)])
        dh, da = (RandomField(std=s, length=self.correlation) for s in self.sigma)
        h.dat.data[:] = np.maximum(h.dat.data_ro + dh.sample(xy, rng), 10.0)
        a.dat.data[:] = self.accumulation + da.sample(xy, rng)

    def _truth(self, fields: dict, rng: np.random.Generator) -> None:
        """The truth: the steady state, with the true accumulation."""
        fields["accumulation"].assign(self.accumulation_truth)


class FlowlineMember:
    """A flowline member: an Icepack member plus its diagnosed grounding line."""

    def __init__(self, model: Flowline, inner):
        self.model, self.inner = model, inner
        self.state = dict(inner.state, grounding_line=np.zeros(1))

    def _diagnose_grounding_line(self) -> None:
        from icepack.constants import ice_density, water_density

        f = self.inner.fields
        self.state["grounding_line"][0] = grounding_line(_nodes(f["thickness"]), f["thickness"].dat.data_ro,
                                                         f["bed"].dat.data_ro, water_density / ice_density)

    def initial_state(self, rng) -> None:
        self.inner.initial_state(rng)
        self._diagnose_grounding_line()

    def truth_state(self, rng) -> None:
        self.inner.truth_state(rng)
        self._diagnose_grounding_line()

    def forecast(self, t0: float, t1: float) -> None:
        self.inner.forecast(t0, t1)
        self._diagnose_grounding_line()


def _nodes(f) -> np.ndarray:
    """Positions of the nodes of the P1 Function ``f`` on an interval mesh."""
    return f.function_space().mesh().coordinates.dat.data_ro.reshape(-1)


