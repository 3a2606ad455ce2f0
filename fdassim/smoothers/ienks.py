r"""The iterative ensemble Kalman smoother (IEnKS; IEnKS-N; Lin-IEnKS), Gauss-Newton transform variant.

Bocquet & Sakov (2014), Algorithm 1; Grudzien & Bocquet (2022), Sect. 3.2 and Algorithm 2.
A window starts from the ensemble :math:`E_0` at its initial time and minimises the 4D cost
of the weights of its mean (:mod:`fdassim.smoothers.gauss_newton`): every iteration runs
the ensemble :math:`E_0 W_p` through the window (one ensemble simulation) and takes a
Gauss-Newton step from its observed anomalies, until a step is shorter than ``tol`` or
after ``max_iter`` iterations. The analysis :math:`E^a_0 = E_0 W` is run ``S`` steps to start
the next window. The Lin-IEnKS (:class:`LinIEnKS`) stops after one iteration: the linearised
smoother, at the cost of the SIEnKS in SDA.

SDA: the cost holds the window's new observations (all ``L`` in the first window); MDA: all
``L`` observations, first with the balancing weights (whose analysis gives the statistics),
then with the MDA weights (whose analysis starts the next window), from the same
:math:`E_0` (:mod:`fdassim.smoothers.window`). The two stages share their first simulation.

Statistics: in SDA the forecast at a new observation time is the first iteration's ensemble
there (a forecast from the window's start: with ``S > 1`` over up to ``S`` intervals, since
the window's new observations are analysed together); in MDA the window's initial ensemble
holds only part of its older observations, so the forecasts at the next window's new times
are the balanced analysis at the window's end run ``S`` intervals further (one more
simulation per window, as the reference implementation's). The filter
analysis is the last iteration's ensemble there mapped to the analysis (conditioned on all
the window's observations) to first order (:attr:`GaussNewtonResult.linearised
<fdassim.smoothers.gauss_newton.GaussNewtonResult.linearised>`, exact for a linear model;
DAPPER's iEnKS does the same); the smoother estimates of the states leaving the window
are the analysis as it is run to the next window's start (SDA), or the balancing stage's
analysis at :math:`t_a` and, linearised, at the later leaving times (MDA).

Cost per window: the iterations' simulations (the MDA stages sharing their first), one for
the shift and, in MDA, one for the forecasts: ``iterations x L + S`` forecast intervals in
SDA, ``(iterations - 1) x L + 2 S`` in MDA.

The run's inflation acts on :math:`E^a_0` before it is run to the next window, as in
Bocquet & Sakov (2014) and DAPPER.

References
----------
Bocquet, M. and Sakov, P. (2014). An iterative ensemble Kalman smoother. Q. J. R. Meteorol.
Soc. 140, 1521-1535. https://doi.org/10.1002/qj.2236

Grudzien, C. and Bocquet, M. (2022). A fast, single-iteration ensemble Kalman smoother for
sequential data assimilation. Geosci. Model Dev. 15, 7641-7681.
https://doi.org/10.5194/gmd-15-7641-2022
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.base import combine
from ..errors import ConfigError
from .base import Estimate, RerunSmoother, Snapshot, Trajectory, WindowCost
from .gauss_newton import GaussNewtonResult, Term, gauss_newton

__all__ = ["IEnKS", "LinIEnKS"]


@dataclass(frozen=True)
class IEnKS(RerunSmoother):
    r"""The IEnKS (see the module docstring).

    Its options are those of :class:`~fdassim.smoothers.base.RerunSmoother` (``lag``,
    ``shift``, ``finite_size`` for the IEnKS-N, ``eps_N``, ``mda``, and ``tol`` and
    ``max_iter``, counted per stage, each iteration a simulation of the window).

    Raises
    ------
    ConfigError
        For an option of the wrong type or out of range.
    """

    def window(self, run: Trajectory, c: int, E0) -> tuple[object, WindowCost]:
        win = self.schedule
        if self.mda:
            observed = win.observed(c)
            bal, runs_bal, kept = self._optimise(run, c, E0, {j: win.balancing_weight(c, j) for j in observed},
                                                 record=True)
            for i in win.leaving(c):  # the balanced analysis of the states that leave
                X, truth = (E0.X, E0.truth) if i == E0.j else kept[i]
                run.record(Estimate.SMOOTHER, i, combine(X, bal.W if i == E0.j else bal.linearised), truth)
            res, runs, _ = self._optimise(run, c, E0, {j: win.mda_weight(j) for j in observed}, record=False,
                                          first=bal)
            # the next window's forecasts: the balanced analysis at this window's end, run S steps
            # (its initial ensemble holds only part of its older observations)
            end = observed[-1]
            ahead = self.shift if c + 1 < win.count(run.last) else 0  # none after the last window
            if ahead:
                run.restore(Snapshot(end, combine(kept[end][0], bal.linearised), kept[end][1]))
                for _ in range(ahead):
                    run.advance()
                    run.record(Estimate.FORECAST, run.j, *run.state())
            cost = WindowCost(simulations=runs_bal + runs + 1 + (ahead > 0),
                              iterations=bal.iterations + res.iterations)
        else:
            res, runs, _ = self._optimise(run, c, E0, {j: 1.0 for j in win.new(c)}, record=True)
            cost = WindowCost(simulations=runs + 1, iterations=res.iterations)
        run.restore(E0, run.inflate(combine(E0.X, res.W), E0.X))
        for i in win.leaving(c):  # run the analysis to the next window's start
            if not self.mda:
                run.record(Estimate.SMOOTHER, i, *run.state())
            run.advance()
        return run.snapshot(), cost

    def _optimise(self, run: Trajectory, c: int, E0, weights: dict[int, float], record: bool,
                  first: GaussNewtonResult | None = None):
        """Minimise the window's cost with the observations of ``weights``.

        Returns the result, the number of window simulations run, and the last simulation's
        ``(members, truth)`` rows at the new observation times and (MDA) the leaving times.
        """
        win = self.schedule
        new = set(win.new(c)) if record else set()
        keep = new | (set(win.leaving(c)[1:]) if record and self.mda else set())
        kept: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        ys: dict[int, np.ndarray] = {}
        runs = 0

        def simulate(W: np.ndarray | None) -> list[np.ndarray]:
            """Run ``E0 W`` (``E0`` itself for ``None``) through the window; its observed ensembles."""
            nonlocal runs
            runs += 1
            run.restore(E0, None if W is None else combine(E0.X, W))
            Ys = []
            for j in win.observed(c):
                run.advance()
                if j in keep:
                    kept[j] = run.state()
                    if W is None and j in new and (c == 0 or not self.mda):
                        run.record(Estimate.FORECAST, j, *kept[j])
                if j in weights:
                    Y, ys[j] = run.observe()
                    Ys.append(Y)
            return Ys

        if first is None:
            Ys = simulate(None)
        else:  # the MDA stage: the balancing stage's first simulation is the same
            Ys, ys = first.first, {j: run.observation(j) for j in weights}
        terms = [Term(ys[j], run.R, weights[j]) for j in sorted(weights)]
        res = gauss_newton(simulate, terms, run.N, finite_size=self.finite_size, eps_N=self.eps_N, tol=self.tol,
                           max_iter=self.max_iter, first=Ys)
        for j in sorted(new):
            X, truth = kept[j]
            run.record(Estimate.ANALYSIS, j, combine(X, res.linearised), truth)
        return res, runs, kept


@dataclass(frozen=True)
class LinIEnKS(IEnKS):
    """The linearised IEnKS: one Gauss-Newton iteration per window (``max_iter`` is 1).

    Raises
    ------
    ConfigError
        If ``max_iter`` is not 1.
    """

    max_iter: int = 1

    def __post_init__(self):
        super().__post_init__()
        if self.max_iter != 1:
            raise ConfigError(f"LinIEnKS: max_iter is 1 by definition, got {self.max_iter!r} (use IEnKS to iterate)")
