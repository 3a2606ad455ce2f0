r"""Observed quantities, their schedules, and what a cycle observes.

A :class:`Quantity` is one observed thing: an operator ``H_q`` on a member's state (a point
value, a masked field, a speed...), its error covariance ``R_q`` (standard deviations or a
full covariance), its :class:`~fdassim.observations.schedule.Schedule`, its values (given,
one row per scheduled time, or drawn from the truth of a twin experiment) and, optionally,
its outlier threshold. :class:`Observations` holds several quantities; at cycle ``k`` the
quantities observed at ``t_{k+1}`` are stacked,

.. math::
    y = (y_{q_1}; y_{q_2}; \dots), \qquad H = (H_{q_1}; H_{q_2}; \dots), \qquad
    R = \mathrm{blockdiag}(R_{q_1}, R_{q_2}, \dots),

and a cycle where nothing is observed makes no analysis (the forecast goes on).
:meth:`Observations.plan` checks every schedule against the run's analysis times, every
value array against its operator, once, before any work; :meth:`ObsPlan.batch` gives what
cycle ``k`` observes.

Synthetic observations of a twin experiment are ``y_q = H_q(x^t) + R_q^{1/2} z`` with ``z``
drawn from the :attr:`~fdassim.streams.Stream.OBS_NOISE` generator of ``(seed, cycle)`` with
``part = q`` (the quantity's index; a run of one quantity draws what :func:`fdassim.twin.simulate`
draws): never from the rank, nor from the ensemble size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..analysis.base import ObsError
from ..errors import ObservationError
from ..layout import State
from ..streams import Stream, generator
from .qc import outliers
from .schedule import Schedule

__all__ = ["Quantity", "Observations", "ObsPlan", "Batch"]


def _noise(seed: int, cycle: int, q: int, m: int) -> np.ndarray:
    """Standard normal noise of quantity ``q`` at ``cycle`` (its own generator: ``part = q``)."""
    return generator(seed, Stream.OBS_NOISE, cycle, part=q).standard_normal(m)


@dataclass(frozen=True, eq=False)
class Quantity:
    """One observed quantity.

    Parameters
    ----------
    name
        A name (an identifier): the key in ``params.yaml`` and the group in the store.
    operator
        ``H(state) -> (m,)``, called on every rank of a member's spatial communicator
        (:mod:`fdassim.observations` has operators on arrays and on Firedrake fields).
    error
        The observation-error covariance ``R`` (:class:`~fdassim.analysis.base.ObsError`; one
        variance is broadcast to all ``m`` values).
    schedule
        When it is observed (default: at every analysis time).
    values
        ``(T, m)`` observed values, one row per scheduled time; ``None`` in a twin experiment.
    positions
        ``(m, d)`` positions of the observations (default: asked from the operator).
    outlier_threshold
        Reject an observation whose innovation exceeds this many standard deviations of
        :math:`\\sqrt{\\mathrm{diag}(HPH^T) + R}` (:mod:`fdassim.observations.qc`); ``None``:
        no check.
    assimilate
        ``False``: observed (drawn in a twin, stored, checked) and handed to the run's
        after-analysis step, but not used by the analysis: the velocity that the hybrid
        inversion (:class:`~fdassim.models.inversion.HybridInversion`) fits with the friction,
        when the members' velocities are biased by a wrong friction that the analysis would
        otherwise blame on the thickness and the bed. A cycle runs an analysis (and the step)
        only when an assimilated quantity is observed.
    """

    name: str
    operator: Callable[[State], np.ndarray]
    error: ObsError
    schedule: Schedule = field(default_factory=Schedule)
    values: np.ndarray | None = None
    positions: np.ndarray | None = None
    outlier_threshold: float | None = None
    assimilate: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ObservationError(f"quantity name must be an identifier, got {self.name!r}")
        what = f"quantity {self.name!r}"
        if not callable(self.operator):
            raise ObservationError(f"{what}: the operator must be callable, got {type(self.operator).__name__}")
        if not isinstance(self.error, ObsError):
            raise ObservationError(f"{what}: error must be an ObsError (ObsError.from_std, diagonal or full)")
        if not isinstance(self.schedule, Schedule):
            raise ObservationError(f"{what}: schedule must be a Schedule, got {self.schedule!r}")
        if self.values is not None:
            v = np.asarray(self.values, dtype=float)
            if v.ndim != 2:
                raise ObservationError(f"{what}: values must be (times, m), got shape {v.shape}")
            bad = np.argwhere(~np.isfinite(v))
            if bad.size:
                raise ObservationError(f"{what}: values[{bad[0][0]}, {bad[0][1]}] is {v[tuple(bad[0])]!r}; "
                                       "observed values must be finite")
            object.__setattr__(self, "values", v)
        if self.positions is not None:
            object.__setattr__(self, "positions", np.asarray(self.positions, dtype=float))
        t = self.outlier_threshold
        if t is not None and not (np.isfinite(t) and t > 0):
            raise ObservationError(f"{what}: outlier_threshold must be a positive number of standard "
                                   f"deviations, got {t!r}")


class Observations:
    """The observed quantities of a run.

    ``Observations([q1, q2, ...])`` holds several :class:`Quantity` objects;
    ``Observations(operator, R, coords=None, values=None)`` is one quantity named ``y``
    observed at every analysis time (``values``: one row per cycle).

    Raises
    ------
    ObservationError
        If there is no quantity, two share a name, or the arguments are mixed up.
    """

    def __init__(self, quantities, R: ObsError | None = None, coords=None, values=None):
        if isinstance(quantities, Quantity):
            quantities = [quantities]
        elif callable(quantities):  # the single-operator form
            quantities = [Quantity("y", quantities, R, positions=coords, values=values)]
        elif R is not None or coords is not None or values is not None:
            raise ObservationError("Observations: R, coords and values go with a single operator; with "
                                   "several quantities give each its own (Quantity(name, operator, error, ...))")
        quantities = tuple(quantities)
        if not quantities or not all(isinstance(q, Quantity) for q in quantities):
            raise ObservationError("Observations: give one or more Quantity objects (or an operator and R)")
        names = [q.name for q in quantities]
        if len(set(names)) != len(names):
            raise ObservationError(f"Observations: quantity names must be unique, got {names}")
        self.quantities: tuple[Quantity, ...] = quantities

    def __repr__(self):
        return f"Observations({', '.join(q.name for q in self.quantities)})"

    # -- one quantity at every time (the smoothers' view) -----------------------------------------
    def single(self) -> Quantity:
        """The quantity of a run that observes one quantity at every analysis time.

        Raises
        ------
        ObservationError
            If there are several quantities, or the one has a schedule of its own.
        """
        if len(self.quantities) != 1 or self.quantities[0].schedule != Schedule():
            raise ObservationError(f"{self!r}: this needs one quantity observed at every time (no schedule), got "
                                   f"{len(self.quantities)} quantities; the smoothers take one")
        return self.quantities[0]

    @property
    def operator(self) -> Callable[[State], np.ndarray]:
        """The operator of the single quantity (:meth:`single`)."""
        return self.single().operator

    @property
    def R(self) -> ObsError:
        """The error of the single quantity (:meth:`single`)."""
        return self.single().error

    @property
    def coords(self) -> np.ndarray | None:
        """The given positions of the single quantity (:meth:`single`)."""
        return self.single().positions

    @property
    def values(self) -> np.ndarray | None:
        """The given values of the single quantity, one row per cycle (:meth:`single`)."""
        return self.single().values

    def observed(self, cycle: int, seed: int, truth_predicted: np.ndarray | None) -> np.ndarray:
        """The single quantity's observations at ``cycle``: given, or the truth's plus noise
        (the same numbers as the cycle draws, :meth:`Batch.observed`).

        Raises
        ------
        ObservationError
            If the values run out, or there are neither values nor a truth.
        """
        q = self.single()
        if q.values is not None:
            if cycle >= q.values.shape[0]:
                raise ObservationError(f"observations.{q.name}: values cover {q.values.shape[0]} cycles; cycle "
                                       f"{cycle} has none")
            return q.values[cycle]
        if truth_predicted is None:
            raise ObservationError(f"observations.{q.name}: no observed values and no truth to draw them from: "
                                   "give values (a file) or run a twin experiment")
        m = truth_predicted.size
        return truth_predicted + q.error.expand(m).color(_noise(seed, cycle, 0, m))

    def plan(self, ensemble, times) -> "ObsPlan":
        """Check every quantity against the run and fix what each cycle observes (collective).

        Parameters
        ----------
        ensemble
            The :class:`~fdassim.ensemble.Ensemble` (its model and a member's state give the
            sizes and positions of the observations).
        times
            ``t_0, t_1, ..., t_K``: the initial time and the analysis times.

        Raises
        ------
        ConfigError
            If a schedule time is not an analysis time (naming the quantity).
        ObservationError
            If values or errors do not match the operator's size, or values miss a time.
        """
        model = ensemble.model
        template = ensemble.template
        geometry = getattr(model, "geometry", None)
        coordinates = None if geometry is None else geometry.positions  # of array fields
        analysis_times = np.asarray(times, dtype=float)[1:]
        sizes, positions, errors, cycles = [], [], [], []
        for q in self.quantities:
            what = f"observations.{q.name}"
            c = q.schedule.cycles(analysis_times, f"{what}.schedule")
            m = int(np.asarray(q.operator(template)).size)
            if m == 0:
                raise ObservationError(f"{what}: the operator observes nothing (m = 0)")
            try:
                R = q.error.expand(m)
            except ObservationError as exc:
                raise ObservationError(f"{what}: {exc}") from None
            if q.values is not None:
                T, mv = q.values.shape
                if mv != m:
                    raise ObservationError(f"{what}: values have {mv} columns but the operator gives {m} values")
                default = q.schedule == Schedule()
                if T < c.size or (T > c.size and not default):
                    raise ObservationError(f"{what}: values have {T} rows for {c.size} observation times; "
                                           "give one row per time")
            p = q.positions
            if p is None and hasattr(q.operator, "positions"):
                p = q.operator.positions(template, coordinates)
            if p is not None:
                p = np.asarray(p, dtype=float).reshape(m, -1)
            sizes.append(m)
            positions.append(p)
            errors.append(R)
            cycles.append(c)
        return ObsPlan(self.quantities, tuple(cycles), tuple(sizes), tuple(positions), tuple(errors),
                       analysis_times.size)


@dataclass(frozen=True, eq=False)
class ObsPlan:
    """What every cycle of a run observes (made by :meth:`Observations.plan`).

    Attributes
    ----------
    quantities
        The quantities, in order.
    cycles
        Per quantity, the ``(T_q,)`` cycles at which it is observed.
    sizes
        Per quantity, ``m_q``.
    positions
        Per quantity, ``(m_q, d)`` positions, or ``None``.
    errors
        Per quantity, ``R_q`` for its ``m_q`` values.
    n_cycles
        ``K``.
    """

    quantities: tuple
    cycles: tuple
    sizes: tuple
    positions: tuple
    errors: tuple
    n_cycles: int

    @property
    def names(self) -> list[str]:
        return [q.name for q in self.quantities]

    def batch(self, k: int) -> "Batch | None":
        """What cycle ``k`` observes, or ``None`` when nothing is observed then."""
        parts = []
        for qi, c in enumerate(self.cycles):
            rows = np.flatnonzero(c == k)
            if rows.size:
                parts.append((qi, int(rows[0])))
        return Batch(self, k, tuple(parts)) if parts else None


@dataclass(frozen=True, eq=False)
class Batch:
    """The quantities observed at one cycle, stacked (see the module docstring).

    ``parts`` lists ``(q, j)``: quantity ``q``'s row ``j`` of its schedule.
    """

    plan: ObsPlan
    cycle: int
    parts: tuple

    @property
    def slices(self) -> list[slice]:
        """Where each part sits in the stacked vector."""
        out, start = [], 0
        for qi, _ in self.parts:
            m = self.plan.sizes[qi]
            out.append(slice(start, start + m))
            start += m
        return out

    @property
    def m(self) -> int:
        return sum(self.plan.sizes[qi] for qi, _ in self.parts)

    def operator(self, state: State) -> np.ndarray:
        """The stacked predicted observations of one member."""
        return np.concatenate([np.asarray(self.plan.quantities[qi].operator(state), dtype=float).reshape(-1)
                               for qi, _ in self.parts])

    def observed(self, seed: int, truth_predicted: np.ndarray | None) -> np.ndarray:
        """The stacked observations: given values, or the truth's plus noise per quantity.

        Raises
        ------
        ObservationError
            If a quantity has no values and there is no truth to draw them from.
        """
        y = np.empty(self.m)
        for (qi, j), s in zip(self.parts, self.slices):
            q = self.plan.quantities[qi]
            if q.values is not None:
                y[s] = q.values[j]
            elif truth_predicted is None:
                raise ObservationError(f"observations.{q.name}: no observed values and no truth to draw them "
                                       "from: give values (a file) or run a twin experiment")
            else:
                z = _noise(seed, self.cycle, qi, s.stop - s.start)
                y[s] = truth_predicted[s] + self.plan.errors[qi].color(z)
        return y

    def assimilated(self) -> np.ndarray:
        """``(m,)`` bool: the observations of quantities the analysis uses (see ``Quantity.assimilate``)."""
        return np.concatenate([np.full(s.stop - s.start, self.plan.quantities[qi].assimilate)
                               for (qi, _), s in zip(self.parts, self.slices)])

    def rejected(self, Y: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(m,)`` bool: the observations failing their quantity's outlier check."""
        out = np.zeros(self.m, dtype=bool)
        for (qi, _), s in zip(self.parts, self.slices):
            k = self.plan.quantities[qi].outlier_threshold
            if k is not None:
                out[s] = outliers(Y[s], y[s], self.plan.errors[qi].variances(), k)
        return out

    def error(self, keep: np.ndarray) -> ObsError:
        """The stacked ``R`` of the kept observations (block diagonal; dense only if a block is)."""
        blocks = [(self.plan.errors[qi], keep[s]) for (qi, _), s in zip(self.parts, self.slices)]
        if all(R.is_diagonal for R, _ in blocks):
            return ObsError.diagonal(np.concatenate([R.var[k] for R, k in blocks]))
        from scipy.linalg import block_diag

        return ObsError.full(block_diag(*[R.matrix()[np.ix_(k, k)] for R, k in blocks if k.any()]))

    def kept(self, y: np.ndarray, keep: np.ndarray) -> dict:
        """``{quantity: Observed}``: the kept observations of each quantity with positions."""
        from ..parameters import Observed

        out = {}
        for (qi, _), s in zip(self.parts, self.slices):
            p = self.plan.positions[qi]
            if p is not None:
                k = keep[s]
                out[self.plan.names[qi]] = Observed(p[k], y[s][k], np.sqrt(self.plan.errors[qi].variances()[k]))
        return out

    def positions(self, keep: np.ndarray) -> np.ndarray | None:
        """``(m_kept, d)`` positions of the kept observations, or ``None`` if one quantity has none."""
        ps = [self.plan.positions[qi] for qi, _ in self.parts]
        if any(p is None for p in ps) or len({p.shape[1] for p in ps}) != 1:
            return None
        return np.concatenate(ps)[keep]
