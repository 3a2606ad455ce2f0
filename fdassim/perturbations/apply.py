r"""Random fields on the ensemble's members: initial perturbations and AR(1) model noise.

:class:`InitialPerturbations` adds a random field to chosen fields of every member's initial
state (and of the truth of a twin experiment, one more draw); where observations of a field are
given (the bed along flight lines, say), each member's field is conditioned on them by
kriging: the perturbation :math:`q` of member :math:`i` is a draw of the random field
conditioned on the residuals :math:`q(\mathbf x_j) = y_j - x_i(\mathbf x_j)` (simple kriging
about 0, gstools' ``CondSRF``, within the observation errors), so every member honours the
observations and keeps the field's statistics far from them (the truth gets an unconditioned
draw). :class:`ModelNoise` adds model
noise with memory after each forecast: for member :math:`i` and field :math:`f`,

.. math::
    q_k = \rho\, q_{k-1} + \sqrt{1 - \rho^2}\, w_k, \qquad q_0 = w_0, \qquad
    x_f \leftarrow x_f + q_k,

with :math:`w_k` a fresh draw of the field's random field (standard deviation
:math:`\sigma_f`) at cycle :math:`k`. The noise is stationary: every :math:`q_k` has the
field's variance :math:`\sigma_f^2`, and consecutive noises are correlated by :math:`\rho`
(Evensen 2003, section 4.2: :math:`\rho = 1 - \Delta t/\tau` for a decorrelation time
:math:`\tau`; ICESEE, Kyanjo et al. 2026, section 2.3). :math:`\rho = 0` is white noise.
The noise is added to the forecast state, before the analysis, at every cycle.

Draws come from one generator per ``(seed, stream, cycle, member)`` of :mod:`fdassim.streams`
(:attr:`~fdassim.streams.Stream.RANDOM_FIELD`, :attr:`~fdassim.streams.Stream.MODEL_NOISE`;
the truth's without a member index), used where the member lives, and fields are evaluated
at node coordinates: a member's perturbation does not depend
on how members or meshes are split over ranks. A restart replays the noise of the cycles
already done (draws only) to recover :math:`q_{k-1}`, so it continues exactly.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..streams import Stream, generator

__all__ = ["InitialPerturbations", "ModelNoise"]


def _rng(seed: int, stream: Stream, cycle: int, member: int, N: int) -> np.random.Generator:
    """Member ``member``'s generator; the truth (``member == N``) has its own, with no member
    index, so that it does not depend on the ensemble size."""
    return generator(seed, stream, cycle, member=None if member == N else member)


class _FieldDraws:
    """Draws of each field's random field at a member's positions (the positions found once)."""

    def __init__(self, fields: dict):
        if not fields:
            raise ConfigError("give at least one field to perturb")
        for name, gen in fields.items():
            if not hasattr(gen, "sample"):
                raise ConfigError(f"{name}: expected a RandomField or PseudoRandomField, got {gen!r}")
        self.fields = dict(fields)
        self._where: list = []  # (mesh or None, element, positions, box), holding the mesh

    def check(self, model, key: str) -> None:
        """Raise :class:`~fdassim.errors.ConfigError` naming ``key`` if a field is not the model's."""
        names = [f.name for f in model.fields]
        for name in self.fields:
            if name not in names:
                raise ConfigError(f"{key}.{name}: not a field of the model; it has {names}")

    def _positions(self, model, value, name):
        if hasattr(value, "function_space"):
            from ..observations.onmesh import bounding_box, node_coordinates

            V = value.function_space()
            mesh, element = V.mesh(), V.ufl_element()
            for m, e, p, box in self._where:
                if m is mesh and e == element:
                    return p, box
            p, box = node_coordinates(V), bounding_box(mesh)
            self._where.append((mesh, element, p, box))
            return p, box
        geometry = getattr(model, "geometry", None)
        coords = {} if geometry is None else geometry.positions
        if name not in coords:
            raise ConfigError(f"{name}: an array field needs the positions of its values (the model's `geometry`) "
                              "for a random field")
        p = np.asarray(coords[name], dtype=float).reshape(np.asarray(value).shape[0], -1)
        return p, (p.min(axis=0), p.max(axis=0))

    def draw(self, model, state, rng: np.random.Generator, residuals=None) -> dict[str, np.ndarray]:
        """``{field: values}`` drawn for every perturbed field, in order, from ``rng``;
        ``residuals`` ``{field: (positions, values, std)}`` condition a field's draw (kriging)."""
        residuals = residuals or {}
        out = {}
        for name, gen in self.fields.items():
            if name not in state:
                raise ConfigError(f"{name}: not a field of the model; it has {sorted(state)}")
            value = state[name]
            p, box = self._positions(model, value, name)
            data = value.dat.data_ro if hasattr(value, "dat") else np.asarray(value)
            ncomp = int(np.prod(data.shape[1:], dtype=int))
            if name in residuals:
                sites, r, std = residuals[name]
                draws = [gen.conditioned(p, rng, sites, r, error=std, mean=0.0)]
            else:
                draws = [gen.sample(p, rng, *box) if _needs_box(gen) else gen.sample(p, rng) for _ in range(ncomp)]
            out[name] = np.stack(draws, axis=-1).reshape(data.shape)
        return out


def _checked_observed(obs, key: str):
    """``obs`` as an :class:`~fdassim.parameters.Observed` of finite ``(m, d)`` positions,
    ``(m,)`` values and ``(m,)`` standard deviations >= 0."""
    from ..parameters import Observed

    try:
        positions = np.asarray(obs.positions, dtype=float)
        values = np.asarray(obs.values, dtype=float).reshape(-1)
        std = np.broadcast_to(np.asarray(obs.std, dtype=float), values.shape).copy()
    except (AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: expected Observed(positions (m, d), values (m,), std (m,)): {exc}") from None
    if positions.ndim != 2 or positions.shape[0] != values.size or values.size == 0:
        raise ConfigError(f"{key}: positions of shape {positions.shape} do not fit {values.size} values")
    for what, a in (("positions", positions), ("values", values), ("std", std)):
        if not np.all(np.isfinite(a)):
            raise ConfigError(f"{key}.{what}: must be finite")
    if np.any(std < 0):
        raise ConfigError(f"{key}.std: must be >= 0 (0 honours the observations exactly)")
    return Observed(positions, values, std)


def _needs_box(gen) -> bool:
    from .fields import PseudoRandomField

    return isinstance(gen, PseudoRandomField)


def _add(state, name: str, values: np.ndarray) -> None:
    value = state[name]
    if hasattr(value, "dat"):
        value.dat.data[...] += values
    else:
        value[...] += values


class InitialPerturbations:
    """Add a random field to fields of every initial member (see the module docstring).

    Parameters
    ----------
    fields
        ``{field name: RandomField or PseudoRandomField}``.
    conditions
        ``{field name: Observed(positions, values, std)}``: observations of a scalar Firedrake
        field that every member's field is conditioned on (the field's generator must be a
        :class:`~fdassim.perturbations.RandomField`); ``std`` 0 honours them exactly.

    Raises
    ------
    ConfigError
        If a condition names a field that is not perturbed, or one perturbed by an Evensen
        field, or its positions, values and standard deviations do not match.

    Examples
    --------
    >>> InitialPerturbations({"thickness": RandomField("gaussian", std=20.0, length=5e3)})  # doctest: +SKIP
    >>> InitialPerturbations({"bed": RandomField("gaussian", std=50.0, length=4e3)},           # doctest: +SKIP
    ...                      conditions={"bed": Observed(flight_line_xy, bed_picks, np.full(m, 10.0))})
    """

    def __init__(self, fields: dict, conditions: dict | None = None):
        from .fields import RandomField

        self._draws = _FieldDraws(fields)
        self.conditions = {}
        for name, obs in (conditions or {}).items():
            key = f"conditions.{name}"
            if name not in fields:
                raise ConfigError(f"{key}: {name!r} is not a perturbed field; perturb it to condition it "
                                  f"(perturbed: {list(fields)})")
            if not isinstance(fields[name], RandomField):
                raise ConfigError(f"{key}: kriging needs a gstools field (model gaussian or exponential), "
                                  f"got {fields[name]!r}")
            self.conditions[name] = _checked_observed(obs, key)
        self._operators = {}  # field -> PointValues at its conditioning sites

    def check(self, model, key: str = "initial_perturbations", template=None) -> None:
        """Raise :class:`~fdassim.errors.ConfigError` if a perturbed field is not a field of
        ``model``, or (given a member's ``template`` state; collective) a conditioned field is
        not a scalar Firedrake field or a conditioning site lies outside its mesh."""
        self._draws.check(model, key)
        if template is None:
            return
        from ..observations.settings import _check_inside

        for name, obs in self.conditions.items():
            f = template[name]
            if not hasattr(f, "function_space") or f.function_space().value_shape:
                raise ConfigError(f"{key}.{name}: conditioning on observations needs a scalar Firedrake field; "
                                  f"{name!r} is not one")
            _check_inside(f, obs.positions, f"{key}.{name}: conditioning position")

    def _residuals(self, state) -> dict:
        """``{field: (sites, y - x(sites), std)}`` of a member (collective over its mesh)."""
        from ..observations.points import PointValues

        out = {}
        for name, obs in self.conditions.items():
            H = self._operators.setdefault(name, PointValues(name, obs.positions))
            out[name] = (obs.positions, obs.values - H(state), obs.std)
        return out

    def apply(self, ensemble, seed: int) -> None:
        """Perturb every local member (and the truth) of ``ensemble`` in place."""
        for i, state in zip(ensemble.local, ensemble.states):
            rng = _rng(seed, Stream.RANDOM_FIELD, 0, i, ensemble.size)
            residuals = self._residuals(state) if self.conditions and i != ensemble.size else None
            draws = self._draws.draw(ensemble.model, state, rng, residuals)
            for name, values in draws.items():
                _add(state, name, values)


class ModelNoise:
    """AR(1) model noise added after each forecast (see the module docstring).

    Parameters
    ----------
    fields
        ``{field name: RandomField or PseudoRandomField}`` (each with its standard deviation).
    rho
        Correlation of consecutive noises, in ``[0, 1)``.
    truth
        Add the noise to the truth of a twin experiment too (a stochastic nature run);
        ``False`` keeps the truth deterministic, as ICESEE's twins do (the noise then stands
        for the members' uncertainty only).
    """

    def __init__(self, fields: dict, rho: float = 0.0, truth: bool = True):
        if not (0.0 <= rho < 1.0):
            raise ConfigError(f"rho: must be in [0, 1), got {rho!r}")
        if not isinstance(truth, bool):
            raise ConfigError(f"truth: expected true or false, got {truth!r}")
        self._draws = _FieldDraws(fields)
        self.rho = float(rho)
        self.truth = truth
        self._q: dict[int, dict[str, np.ndarray]] = {}  # member -> field -> q_{k-1}

    def check(self, model, key: str = "model_noise.fields") -> None:
        """Raise :class:`~fdassim.errors.ConfigError` if a noisy field is not a field of ``model``."""
        self._draws.check(model, key)

    def _step(self, ensemble, seed: int, cycle: int, add: bool) -> None:
        c = np.sqrt(1.0 - self.rho ** 2)
        for i, state in zip(ensemble.local, ensemble.states):
            if i == ensemble.size and not self.truth:
                continue
            w = self._draws.draw(ensemble.model, state, _rng(seed, Stream.MODEL_NOISE, cycle, i, ensemble.size))
            prev = self._q.get(i)
            q = w if prev is None else {name: self.rho * prev[name] + c * w[name] for name in w}
            self._q[i] = q
            if add:
                for name, values in q.items():
                    _add(state, name, values)

    def apply(self, ensemble, seed: int, cycle: int) -> None:
        """Add cycle ``cycle``'s noise to every local member (and the truth, unless ``truth`` is false)."""
        self._step(ensemble, seed, cycle, add=True)

    def replay(self, ensemble, seed: int, cycles: int) -> None:
        """Recover the noise state after ``cycles`` completed cycles (for a restart)."""
        self._q.clear()
        for k in range(cycles):
            self._step(ensemble, seed, k, add=False)
