"""The plumbing under a smoother's window algorithm: the distributed ensemble moved through time.

:class:`Runner` implements :class:`~fdassim.smoothers.base.Trajectory` on an
:class:`~fdassim.ensemble.Ensemble`: members forecast where they live, rows after one
all-to-all (:meth:`Ensemble.to_rows <fdassim.ensemble.Ensemble.to_rows>`), predicted
observations allgathered in member order, exactly as in the filter cycle. A snapshot keeps
this rank's rows of the members (and of the truth of a twin experiment) at one time, a
share of the ``n x N`` ensemble like the analysis' own rows; restoring it writes them back
into the members with one all-to-all. The truth is a member too: it is restored and run
again with the others, so it is at the members' time whenever they are observed (its
forecast, like theirs, is deterministic: :mod:`fdassim.smoothers.base`).

Observations of time ``j`` are drawn (or read) once, when the members first reach it, with
the filter cycle's keys ``(seed, j - 1)``, so a smoother sees the observations a filter run
with the same seed sees.
"""

from __future__ import annotations

import time
import numpy as np

from ..analysis.base import AnalysisContext
from ..errors import ConfigError
from ..inflation import Inflation
from .base import Estimate, Snapshot

__all__ = ["Runner"]


class Runner:
    """A smoother's view of the distributed ensemble (see the module docstring).

    Parameters
    ----------
    ensemble
        The ensemble, its members initialized at ``times[0]``.
    observations
        What is observed at each time.
    times
        ``t_0, ..., t_K``.
    seed
        The run's seed.
    inflation
        The run's inflation.
    record
        ``record(estimate, j, X, truth, y)``: called with the rows of every statistic.
    """

    def __init__(self, ensemble, observations, times: np.ndarray, seed: int, inflation: Inflation, record):
        self.ens = ensemble
        self.N = ensemble.size
        self.rows = ensemble.rows
        self.observations = observations
        self.times = times
        self.seed = seed
        self.inflation = inflation
        self._record = record
        self.j = 0
        self.last = times.size - 1  #: index of the last observation time
        self.propagations = 0  #: ensemble forecasts over one observation interval so far
        self.forecast_seconds = 0.0
        self._y: dict[int, np.ndarray] = {}
        m = (observations.values.shape[1] if observations.values is not None
             else ensemble.observe(observations.operator).shape[0])
        self.R = observations.R.expand(m)

    # -- members through time ------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The members' (and the truth's) rows and carried fields at the current time."""
        X, truth = self.state()
        carried = dict(self.ens.carried_values()) if self.ens.carried is not None else None
        return Snapshot(self.j, X, truth, carried)

    def restore(self, snapshot: Snapshot, X: np.ndarray | None = None) -> None:
        """Set the members to ``snapshot`` (with ``X``: its rows replaced by ``X``), the truth to its."""
        rows = np.empty((self.rows_count, self.ens.n_total))
        rows[:, :self.N] = snapshot.X if X is None else X
        if snapshot.truth is not None:
            rows[:, self.N] = snapshot.truth
        self.ens.from_rows(rows, all_members=True)
        if snapshot.carried is not None:
            self.ens.set_carried(snapshot.carried)
        self.j = snapshot.j

    @property
    def rows_count(self) -> int:
        return self.ens.row_slice.stop - self.ens.row_slice.start

    def advance(self) -> None:
        """Forecast every member (and the truth) from ``times[j]`` to ``times[j + 1]``."""
        tic = time.perf_counter()
        self.ens.forecast(self.times[self.j], self.times[self.j + 1], self.j)
        self.j += 1
        self.propagations += 1
        self.forecast_seconds += time.perf_counter() - tic

    def state(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(X, truth)``: this rank's rows of the members ``(nb, N)`` and of the truth ``(nb,)`` or ``None``."""
        rows = self.ens.to_rows()
        return rows[:, :self.N], (rows[:, self.N].copy() if self.ens.has_truth else None)

    def set_members(self, X: np.ndarray) -> None:
        """Write this rank's rows ``X`` into the members (the truth is left as it is)."""
        self.ens.from_rows(X)

    # -- observations --------------------------------------------------------------------------
    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """``(Y, y)``: the members' predicted observations ``(m, N)`` and the observations at the current time."""
        Y = self.ens.observe(self.observations.operator)
        if self.j not in self._y:
            truth = Y[:, self.N] if self.ens.has_truth else None
            self._y[self.j] = self.observations.observed(self.j - 1, self.seed, truth)
        return Y[:, :self.N], self._y[self.j]

    def observation(self, j: int) -> np.ndarray:
        """The observations of time ``j`` (drawn when the members first reached it)."""
        return self._y[j]

    def forget(self, before: int) -> None:
        """Drop the observations of the times before ``before`` (no later window holds them)."""
        for j in [j for j in self._y if j < before]:
            del self._y[j]

    def context(self) -> AnalysisContext:
        """The analysis context of the current time (the filter cycle's: cycle ``j - 1``)."""
        return AnalysisContext(seed=self.seed, cycle=self.j - 1, obs_coords=self.observations.coords,
                               periodic=self.ens.periodic)

    def inflate(self, Xa: np.ndarray, Xf: np.ndarray) -> np.ndarray:
        """The run's inflation of the analysis rows ``Xa`` of the prior rows ``Xf`` (prior, then posterior stage)."""
        X = self.inflation.prior(Xa, self.rows)
        return self.inflation.posterior(X, Xf, self.rows, self.context())

    def record(self, estimate: Estimate, j: int, X: np.ndarray, truth: np.ndarray | None) -> None:
        """Record a statistic of the state at time ``j``."""
        self._record(estimate, j, X, truth, self._y.get(j))

    # -- the re-run check ----------------------------------------------------------------------
    def check_rerun(self, method: str) -> None:
        """Forecast the members twice over the first two intervals from the same fields (as a
        window is re-run); stop if the two runs differ.

        Two intervals, so that a model keeping its previous state hidden between forecasts
        (a multistep scheme without a carried field) is caught too: its re-run starts from the
        state the first run left behind.

        Raises
        ------
        ConfigError
            On every rank, naming the lowest member whose two runs differ and the fields
            that differ (see :mod:`fdassim.smoothers.base`: re-runnable models).
        """
        start = self.snapshot()
        counted = self.propagations, self.forecast_seconds
        steps = min(2, self.last)
        runs = []
        for _ in range(2):
            self.restore(start)
            states = []
            for _ in range(steps):
                self.advance()
                states.append(self.state()[0])
            runs.append(np.concatenate(states, axis=1))
        differ = (runs[0] != runs[1]).reshape(-1, steps, self.N).any(axis=1)  # (rows, members)
        self.restore(start)
        self.propagations, self.forecast_seconds = counted
        found = self.ens.world.allgather((np.flatnonzero(differ.any(axis=0)).tolist(),
                                          self._fields_of(np.flatnonzero(differ.any(axis=1)))))
        bad = [m for members, _ in found for m in members]
        if bad:
            fields = sorted({name for _, names in found for name in names})
            raise ConfigError(
                f"smoother.method: {method} re-runs members from the window's start, but "
                f"{type(self.ens.model).__name__} is not re-runnable: forecasting member {min(bad)} twice from "
                f"the same fields over [{self.times[0]}, {self.times[steps]}] gave different values of "
                f"{', '.join(fields)}. Its forecast must depend only on the member's fields: keep what it needs "
                "from one forecast to the next (a previous state, a solver's initial guess) in a carried field, "
                "FieldSpec(name, carried=True), not in the model object, and draw no random numbers of its own "
                "(see fdassim.models.base); or use the EnKS, which never re-runs a member")

    def _fields_of(self, rows: np.ndarray) -> list[str]:
        """The names of the fields that this rank's rows ``rows`` belong to."""
        L, i = self.ens.layout, rows + self.ens.row_slice.start
        return [f.name for f in L.fields if np.any((i >= L.slice(f.name).start) & (i < L.slice(f.name).stop))]
