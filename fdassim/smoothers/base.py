r"""What every fixed-lag smoother shares: its window, its options, and what it asks of a run.

A smoother is a frozen dataclass of options (like an analysis scheme) whose window
algorithm is written against :class:`Trajectory`, the few operations it needs on the
distributed ensemble: move the members through time, read their rows, observe them, set
them back to an earlier state and record statistics. The plumbing behind it
(:mod:`fdassim.smoothers.runner`) deals members over ranks and rows as the filters do; the
algorithms see only rows (``(nb, N)`` blocks of state variables with all members) and
ensemble-space matrices, so their results do not depend on how members and rows are split.

Re-running members (what the SIEnKS and the IEnKS ask of a model)
------------------------------------------------------------------
The EnKS runs each member forward once, as a filter does. The SIEnKS and the IEnKS
re-run the members from the window's start (with new initial states), so a model used
with them must be *re-runnable*: its forecast from ``t0`` to ``t1`` must depend only on the
member's fields at ``t0``, the analysed and the carried ones (what the ensemble saves and
writes back; a model keeps what its next forecast needs, such as the previous velocity of
an ice-flow solve, in carried fields, :mod:`fdassim.models.base`), not on hidden state kept
between calls (a counter, a solver's own copy of a solution, a random draw of its own), so
that writing saved fields back into a member and forecasting again reproduces the run. What
a model must provide for this is therefore nothing beyond the protocol, but all of its state
in its fields: whatever a forecast keeps for the next one is declared a carried field
(``FieldSpec(name, carried=True)``). The cycle checks this before the first window (it runs
every member twice over the first two intervals from the same fields and compares, bit for
bit) and otherwise stops with a :class:`~fdassim.errors.ConfigError` naming the member, the
fields that differ and this fix.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import numpy as np

from ..analysis.base import AnalysisContext, ObsError, Rows
from ..errors import ConfigError
from ..inflation import Inflation
from .window import Window, check_int

__all__ = ["Smoother", "RerunSmoother", "Trajectory", "WindowCost", "Estimate", "Snapshot", "check_bool",
           "check_tolerance"]


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The ensemble at time index ``j``, as this rank holds it.

    ``X`` and ``truth`` are this rank's rows of the members ``(nb, N)`` and of the truth
    ``(nb,)`` (or ``None``); ``carried`` the carried fields of the members (and truth) that
    live here, ``{member: values}`` (``None`` for a model without carried fields,
    :mod:`fdassim.models.base`).
    """

    j: int
    X: np.ndarray
    truth: np.ndarray | None
    carried: dict[int, np.ndarray] | None = None


class Estimate(Enum):
    """Which estimate of the state at an observation time a statistic is of."""

    FORECAST = "forecast"  #: before its observation is assimilated
    ANALYSIS = "analysis"  #: the filter: just after
    SMOOTHER = "smoother"  #: final, once the state has left the window


def check_bool(owner: str, key: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{owner}: {key} must be true or false, got {value!r}")
    return bool(value)


def check_tolerance(owner: str, key: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{owner}: {key} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class WindowCost:
    """What one window cost.

    Attributes
    ----------
    simulations
        Ensemble simulations: runs of the whole ensemble through (part of) the window, the
        cost measure of Grudzien & Bocquet (2022): one per pass through the window, one for
        the shift to the next window's start.
    iterations
        Gauss-Newton iterations of the window (IEnKS: one window simulation each; SIEnKS with
        the MLEF: observation-operator evaluations, no model runs); 0 when not iterative.
    """

    simulations: int
    iterations: int = 0


class Trajectory(Protocol):
    """The operations a window algorithm performs on the ensemble (see :mod:`fdassim.smoothers.runner`).

    The members are at time index ``j`` (``times[j]``, ``last`` the last observation time).
    A :class:`Snapshot` holds the members' rows (and the truth's, in a twin experiment) at
    one time.
    """

    j: int
    last: int
    N: int
    rows: Rows
    R: ObsError
    inflation: Inflation

    def snapshot(self) -> Snapshot: ...

    def restore(self, snapshot: Snapshot, X: np.ndarray | None = None) -> None: ...

    def advance(self) -> None: ...

    def state(self) -> tuple[np.ndarray, np.ndarray | None]: ...

    def set_members(self, X: np.ndarray) -> None: ...

    def observe(self) -> tuple[np.ndarray, np.ndarray]: ...

    def observation(self, j: int) -> np.ndarray: ...

    def context(self) -> AnalysisContext: ...

    def inflate(self, Xa: np.ndarray, Xf: np.ndarray) -> np.ndarray: ...

    def record(self, estimate: Estimate, j: int, X: np.ndarray, truth: np.ndarray | None) -> None: ...


@dataclass(frozen=True)
class Smoother(ABC):
    r"""A fixed-lag smoother: the options every method has (a frozen dataclass; methods add theirs).

    Subclasses define :meth:`start` (the state carried between windows) and :meth:`window`
    (one window's algorithm).

    Parameters
    ----------
    lag
        ``L``: observation times of a window.
    shift
        ``S``, ``1 <= S <= L``: observation times a window moves by.
    finite_size
        The finite-size variant (EnKF-N prior: adaptive inflation; the ``-N`` methods).
    eps_N
        Its :math:`\varepsilon_N` (``None``: :math:`1 + 1/N`).

    Raises
    ------
    ConfigError
        For an option of the wrong type or out of range.
    """

    lag: int = 1
    shift: int = 1
    finite_size: bool = False
    eps_N: float | None = None

    #: whether the window algorithm re-runs members from the window's start
    reruns = True

    def __post_init__(self):
        name = type(self).__name__
        check_int(name, "lag", self.lag, 1)
        check_int(name, "shift", self.shift, 1, self.lag)
        check_bool(name, "finite_size", self.finite_size)
        check_tolerance(name, "eps_N", self.eps_N, allow_none=True)

    @property
    def schedule(self) -> Window:
        """The window schedule of this smoother's lag and shift."""
        return Window(self.lag, self.shift)

    @abstractmethod
    def start(self, run: Trajectory) -> Any:
        """The state carried into the first window (the members are at ``times[0]``)."""

    @abstractmethod
    def window(self, run: Trajectory, c: int, carry: Any) -> tuple[Any, WindowCost]:
        """Run window ``c`` from its start; return the state carried into the next window and the cost."""


@dataclass(frozen=True)
class RerunSmoother(Smoother):
    r"""A smoother that re-runs the window from its start (SIEnKS, IEnKS): MDA and a stopping rule.

    Parameters
    ----------
    mda
        Multiple data assimilation (balancing and MDA passes or stages) instead of single;
        needs ``shift < lag``.
    tol, max_iter
        The Gauss-Newton stopping rule (the IEnKS's, the SIEnKS's MLEF): a step
        :math:`\|\Delta w\|` below ``tol``, or ``max_iter`` iterations.
    """

    mda: bool = False
    tol: float = 1e-3
    max_iter: int = 10

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        check_bool(name, "mda", self.mda)
        check_tolerance(name, "tol", self.tol)
        check_int(name, "max_iter", self.max_iter, 1)
        if self.mda and self.shift == self.lag:
            raise ConfigError(f"{name}: MDA needs shift < lag (each observation in several windows); "
                              f"got shift = lag = {self.lag}: use mda: false")

    def start(self, run: Trajectory) -> Snapshot:
        return run.snapshot()
