"""Icepack flow models as fdassim models: an Icepack script gains assimilation.

An Icepack script builds a mesh and fields, chooses a flow model (``IceShelf``,
``IceStream``, ``HybridModel``...) and a ``FlowSolver``, and steps in time: a prognostic
solve for the thickness, the surface from the new thickness, a diagnostic solve for the
velocity. :class:`IcepackModel` runs that loop for every member of an ensemble. The user
gives

- ``setup(comm)``: the script's mesh and fields built on the communicator ``comm``, as a
  dict in Icepack's vocabulary (``thickness``, ``surface``, ``bed``, ``velocity``,
  ``accumulation``, ``friction``, ``fluidity``, ``thickness_inflow``...);
- the flow model and the ``FlowSolver`` options;
- which fields are assimilated (``state``) and which are parameters (``parameters``);
- the time step, and how to draw a member's initial fields.

Every field the forecast changes but the analysis does not see (the velocity when it is not
assimilated, the thickness when only parameters are) is *carried*: stored in the restart,
so a killed run restarts bitwise; the velocity is the next diagnostic solve's initial guess.

Each member owns a ``Function`` for every state field, parameter and carried field (Icepack
ignores a changed ``Constant`` after its first solve, so parameters must be Functions); the
other fields (bed, inflow thickness...) are shared, read-only, by the members of one spatial
communicator, with the mesh. The members of a communicator also share one ``FlowSolver``:
Icepack copies the fields it is given into the solver before each solve, so a solver serves
every member in turn, and its forms and factorization set-up are paid once per rank rather
than once per member.

No ice physics is written here: the flow, the mass transport and the surface are Icepack's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..layout import FieldSpec
from .base import whole_steps

__all__ = ["IcepackModel", "IcepackDomain", "IcepackMember", "IcepackExperiment", "SOLVER_OPTIONS",
           "friction_with_flotation", "node_positions"]

#: the keyword arguments Icepack's FlowSolver understands (a misspelt one is an error here,
#: where Icepack would ignore it)
SOLVER_OPTIONS = ("dirichlet_ids", "side_wall_ids", "diagnostic_solver_type", "diagnostic_solver_parameters",
                  "prognostic_solver_type", "prognostic_solver_parameters")
#: the inputs of Icepack's mass transport (Continuity): not passed to the diagnostic solve
_TRANSPORT_ONLY = ("accumulation", "thickness_inflow")


@dataclass(frozen=True, eq=False)
class IcepackModel:
    """An Icepack flow model and its solver, as a fdassim model (full form).

    Parameters
    ----------
    setup
        ``setup(comm) -> {name: Function or Constant}``: builds the mesh on ``comm`` and the
        fields of the simulation, by Icepack's names. Called once per spatial communicator.
    flow
        The Icepack flow model, e.g. ``icepack.models.IceStream(friction=my_law)``.
    state
        Names of the assimilated state fields (``thickness``, ``velocity``...).
    parameters
        Names of the parameter fields estimated with the state (``accumulation``,
        ``friction``, ``fluidity``...).
    dt
        Time step (years); forecasts span whole numbers of steps.
    solver_options
        Keyword arguments of ``icepack.solvers.FlowSolver`` (see :data:`SOLVER_OPTIONS`).
    initial
        ``initial(fields, rng)``: draw a member's initial fields in place (its own Functions
        for the state, parameters and carried fields; ``rng`` is the member's generator).
        ``None`` leaves every member at the reference fields of ``setup``.
    truth
        ``truth(fields, rng)``: the initial fields of a twin experiment's truth; ``None``: the
        truth is one more draw of ``initial``.
    forcing
        ``forcing(t, fields)``: update the member's fields (e.g. a time-varying accumulation)
        before the step starting at time ``t``.
    diagnose
        Solve for the velocity after the initial draw, so that it is consistent with the
        drawn thickness and parameters.
    prognostic
        Evolve the thickness (``False``: only diagnostic solves, e.g. for an inversion).
    carried
        More fields each member owns, not assimilated but stored in the restart: a friction
        that :class:`~fdassim.models.inversion.HybridInversion` infers after each analysis.

    Raises
    ------
    ConfigError
        For an unknown solver option, a non-positive time step, or a field named twice; when
        the fields are built, for a named field that ``setup`` lacks or that is a
        ``Constant`` where the member needs its own ``Function``.

    Examples
    --------
    See ``demos/icepack_shelf.py`` and ``demos/icestream_twin``.
    """

    setup: Callable[[Any], Mapping[str, Any]]
    flow: Any
    state: tuple[str, ...] = ("thickness",)
    parameters: tuple[str, ...] = ()
    dt: float = 1.0
    solver_options: Mapping[str, Any] = field(default_factory=dict)
    initial: Callable[[dict, np.random.Generator], None] | None = None
    truth: Callable[[dict, np.random.Generator], None] | None = None
    forcing: Callable[[float, dict], None] | None = None
    diagnose: bool = False
    prognostic: bool = True
    carried: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("state", "parameters", "carried"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        bad = [k for k in self.solver_options if k not in SOLVER_OPTIONS]
        if bad:
            raise ConfigError(f"IcepackModel.solver_options: unknown option {bad[0]!r}; FlowSolver takes "
                              f"{', '.join(SOLVER_OPTIONS)}")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ConfigError(f"IcepackModel.dt: must be positive, got {self.dt!r}")
        names = self.state + self.parameters + self.carried
        if len(set(names)) != len(names) or not self.state:
            raise ConfigError(f"IcepackModel: state {self.state}, parameters {self.parameters} and carried "
                              f"{self.carried} must name distinct fields, with at least one state field")

    @property
    def evolved(self) -> tuple[str, ...]:
        """The fields a forecast changes: the velocity, and the thickness if prognostic."""
        return ("thickness", "velocity") if self.prognostic else ("velocity",)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        carried = tuple(name for name in self.evolved if name not in self.state + self.parameters + self.carried)
        carried += self.carried
        return (tuple(FieldSpec(n) for n in self.state) + tuple(FieldSpec(n, parameter=True) for n in self.parameters)
                + tuple(FieldSpec(n, carried=True) for n in carried))

    # -- the Model protocol (full form) ---------------------------------------------------------
    def domain(self, comm) -> "IcepackDomain":
        return IcepackDomain(self, comm)

    def member(self, domain: "IcepackDomain", index: int) -> "IcepackMember":
        return IcepackMember(self, domain)


class IcepackDomain:
    """The mesh and shared fields of one spatial communicator, and its ``FlowSolver``.

    Attributes
    ----------
    reference : dict
        The fields ``setup(comm)`` built (members copy their own from it).
    own : tuple of str
        The fields each member holds its own Function of: the model's fields, and the
        surface when it follows the thickness over a bed.
    """

    def __init__(self, model: IcepackModel, comm):
        import firedrake

        self.model = model
        self.reference = dict(model.setup(comm))
        names = [f.name for f in model.fields]
        missing = [n for n in names if n not in self.reference]
        if missing:
            raise ConfigError(f"IcepackModel: field(s) {missing} are named but setup(comm) does not build them; "
                              f"it builds {sorted(self.reference)}")
        self.follow_surface = model.prognostic and "surface" in self.reference and "bed" in self.reference
        self.own = tuple(names) + (("surface",) if self.follow_surface and "surface" not in names else ())
        constants = [n for n in self.own if not isinstance(self.reference[n], firedrake.Function)]
        if constants:
            raise ConfigError(f"IcepackModel: field(s) {constants} must be Functions, not "
                              f"{type(self.reference[constants[0]]).__name__}: each member needs its own values, "
                              "and Icepack ignores a changed Constant after its first solve "
                              "(use firedrake.Function(Q).assign(value))")
        self._solver = None

    def flow_solver(self):
        """The FlowSolver the members on this communicator share (built on first use)."""
        if self._solver is None:
            import icepack

            self._solver = icepack.solvers.FlowSolver(self.model.flow, **dict(self.model.solver_options))
        return self._solver

    def start(self) -> None:
        self.flow_solver()

    def close(self) -> None:
        self._solver = None


class IcepackMember:
    """One member: its own Functions (state, parameters, carried) over the shared fields."""

    def __init__(self, model: IcepackModel, domain: IcepackDomain):
        self.model, self.domain = model, domain
        #: every field of the simulation: the member's own, then the shared ones
        self.fields = dict(domain.reference)
        for name in domain.own:
            self.fields[name] = domain.reference[name].copy(deepcopy=True)
        self.state = {f.name: self.fields[f.name] for f in model.fields}

    def initial_state(self, rng: np.random.Generator) -> None:
        self._draw(self.model.initial, rng)

    def truth_state(self, rng: np.random.Generator) -> None:
        self._draw(self.model.truth or self.model.initial, rng)

    def _draw(self, draw, rng) -> None:
        for name in self.domain.own:  # from the reference, so a draw never sees an earlier one
            self.fields[name].assign(self.domain.reference[name])
        if draw is not None:
            draw(self.fields, rng)
        self._update_surface()
        if self.model.diagnose:
            self.diagnose()

    def _update_surface(self) -> None:
        if self.domain.follow_surface:
            import icepack

            f = self.fields
            f["surface"].assign(icepack.compute_surface(thickness=f["thickness"], bed=f["bed"]))

    def diagnose(self) -> None:
        """Solve for the velocity from the current fields (Icepack's diagnostic solve)."""
        inputs = {k: v for k, v in self.fields.items() if k not in _TRANSPORT_ONLY}
        self.fields["velocity"].assign(self.domain.flow_solver().diagnostic_solve(**inputs))

    def forecast(self, t0: float, t1: float) -> None:
        """Icepack's loop: prognostic solve, surface, diagnostic solve, for each step."""
        m, f = self.model, self.fields
        n = whole_steps(t0, t1, m.dt, "IcepackModel")
        solver = self.domain.flow_solver()
        self._update_surface()  # the analysis may have moved the thickness
        transport = {k: f[k] for k in ("thickness", "velocity") + _TRANSPORT_ONLY if k in f}
        for step in range(n):
            if m.forcing is not None:
                m.forcing(t0 + step * m.dt, f)
            if m.prognostic:
                f["thickness"].assign(solver.prognostic_solve(m.dt, **transport))
                self._update_surface()
            self.diagnose()


class IcepackExperiment:
    """The Model protocol of an experiment class that builds an :class:`IcepackModel` into
    ``self._icepack`` (its fields, domains and members are the adapter's)."""

    _icepack: IcepackModel

    @property
    def fields(self):
        return self._icepack.fields

    def domain(self, comm):
        return self._icepack.domain(comm)

    def member(self, domain, index):
        return self._icepack.member(domain, index)

    @property
    def icepack(self) -> IcepackModel:
        """The Icepack adapter running this model (its flow model and solver options)."""
        return self._icepack


def node_positions(f) -> np.ndarray:
    """``(nodes, d)`` positions of the nodes of the scalar Lagrange field ``f`` on this rank."""
    import firedrake

    mesh = f.function_space().mesh()
    V = firedrake.VectorFunctionSpace(mesh, f.function_space().ufl_element())
    return firedrake.Function(V).interpolate(firedrake.SpatialCoordinate(mesh)).dat.data_ro


def friction_with_flotation(**kwargs):
    """The sliding law of Icepack's synthetic ice-stream tutorial: Icepack's Weertman
    ``bed_friction`` with the coefficient scaled by :math:`\\phi = 1 - p_W / p_I`, the fraction of
    the overburden not borne by water, so that friction vanishes where the ice floats.

    Pass it as ``icepack.models.IceStream(friction=friction_with_flotation)``.
    """
    import firedrake
    from icepack.constants import gravity as g
    from icepack.constants import ice_density as rho_I
    from icepack.constants import water_density as rho_W
    from icepack.models.friction import bed_friction

    u, h, s, C = (kwargs[k] for k in ("velocity", "thickness", "surface", "friction"))
    phi = 1 - rho_W * g * firedrake.max_value(0, h - s) / (rho_I * g * h)
    return bed_friction(velocity=u, friction=C * phi)
