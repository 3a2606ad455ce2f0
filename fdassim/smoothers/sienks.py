r"""The single-iteration ensemble Kalman smoother (SIEnKS; SIEnKS-N), SDA and MDA.

Grudzien & Bocquet (2022), Sect. 3.3 and Algorithms 3-4. A window starts from the smoothed
ensemble :math:`E_0` at its initial time :math:`t_a`. One *filter pass* runs it through the
window and analyses the observations at their times with a filter transform :math:`W_k`
(ETKF; EnKF-N for the SIEnKS-N; the MLEF, :mod:`fdassim.smoothers.gauss_newton`, when
``mlef`` asks the filter cost to be minimised for a nonlinear observation operator), each
applied at once to the initial ensemble (the EnKS's retrospective right transform),

.. math::
    E^f_k = \mathcal{M}_{k \leftarrow k-1}(E^a_{k-1}), \qquad E^a_k = E^f_k W_k, \qquad
    E_0 \leftarrow E_0 W_k,

and the smoothed :math:`E_0` is then run ``S`` steps to start the next window: a single
simulation of the window per cycle, with the filter's analyses at no model cost (the
IEnKS instead iterates simulations of the window, :mod:`fdassim.smoothers.ienks`).

SDA (single data assimilation): the pass analyses only the window's new observations (all
``L`` in the first window); the older ones were assimilated by earlier windows and
:math:`E_0` holds them. Forecast and filter statistics are those of this pass at the new
observation times; the smoother estimates of the ``S`` states that leave the window are
the smoothed :math:`E_0` as it is run to the next window's start. Cost: two simulations
(``L + S`` forecast intervals) per window.

MDA (multiple data assimilation): every observation of the window is assimilated in each
window that holds it. A *balancing* pass with the weights :math:`\beta^{\mathrm{bal}}` (the
share of each observation :math:`E_0` does not hold yet, :mod:`fdassim.smoothers.window`)
gives the forecast, filter and smoother statistics (the leaving states are reanalysed as
in the EnKS); a second pass from the same :math:`E_0` with the MDA weights
:math:`\beta^{\mathrm{MDA}}` gives the smoothed :math:`E_0` that is run to the next window.
Cost: three simulations (``2 L + S`` intervals) per window.

The run's inflation acts on the smoothed :math:`E_0` before it is run to the next window
(and, in the first window, where every observation is new, on the filter's analyses as in
a filter: the "spin" of DataAssimilationBenchmarks.jl).

References
----------
Grudzien, C. and Bocquet, M. (2022). A fast, single-iteration ensemble Kalman smoother for
sequential data assimilation. Geosci. Model Dev. 15, 7641-7681.
https://doi.org/10.5194/gmd-15-7641-2022
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..analysis.base import ObsError, combine, preserve_mean
from ..analysis.enkf_n import enkf_n_transform
from ..analysis.etkf import etkf_transform
from .base import Estimate, RerunSmoother, Trajectory, WindowCost, check_bool
from .enks import _Lagged
from .gauss_newton import Term, gauss_newton

__all__ = ["SIEnKS", "filter_transform"]


def filter_transform(Y: np.ndarray, y: np.ndarray, R: ObsError, weight: float = 1.0, finite_size: bool = False,
                     eps_N: float | None = None) -> np.ndarray:
    r"""The ETKF (or EnKF-N) transform :math:`W` of one observation time, with :math:`R` divided by ``weight``.

    With ``weight = 1`` it is bitwise the transform of :class:`~fdassim.analysis.etkf.ETKF`
    (:class:`~fdassim.analysis.enkf_n.EnKFN`); a weight :math:`\beta` scales the whitened
    anomalies and innovation by :math:`\sqrt\beta`.

    Parameters
    ----------
    Y
        ``(m, N)`` predicted observations.
    y
        ``(m,)`` observations.
    R
        Their error covariance (for ``m`` observations).
    weight
        :math:`\beta \in (0, 1]`, the MDA weight.
    finite_size, eps_N
        The EnKF-N transform and its :math:`\varepsilon_N`.
    """
    Ybar = Y.mean(axis=1)
    S, dy = Y - Ybar[:, None], y - Ybar
    if weight != 1.0:
        s = math.sqrt(weight)
        S, dy = s * S, s * dy
    if finite_size:
        return preserve_mean(enkf_n_transform(S, dy, R, eps_N)[0])
    return preserve_mean(etkf_transform(S, dy, R))  # as the filters' TransformUpdate stores it


@dataclass(frozen=True)
class SIEnKS(RerunSmoother):
    r"""The single-iteration ensemble Kalman smoother (see the module docstring).

    Parameters
    ----------
    mlef
        Minimise each filter cost by Gauss-Newton iterations on the observation operator
        (the MLEF; for nonlinear operators, at no model cost). Without it the filter
        transform is the ETKF's (EnKF-N's with ``finite_size``: the SIEnKS-N), the MLEF's
        first iteration.

    The other options are those of :class:`~fdassim.smoothers.base.RerunSmoother` (``lag``,
    ``shift``, ``finite_size`` for the SIEnKS-N, ``eps_N``, ``mda``, and ``tol`` and
    ``max_iter`` for the MLEF).

    Raises
    ------
    ConfigError
        For an option of the wrong type or out of range.
    """

    mlef: bool = False

    def __post_init__(self):
        super().__post_init__()
        check_bool("SIEnKS", "mlef", self.mlef)

    def window(self, run: Trajectory, c: int, E0) -> tuple[object, WindowCost]:
        win = self.schedule
        if self.mda:
            observed = win.observed(c)
            _, it_bal = self._pass(run, c, E0, {j: win.balancing_weight(c, j) for j in observed}, record=True)
            W, it = self._pass(run, c, E0, {j: win.mda_weight(j) for j in observed}, record=False)
            cost = WindowCost(simulations=3, iterations=it_bal + it)
        else:
            W, it = self._pass(run, c, E0, {j: 1.0 for j in win.new(c)}, record=True)
            cost = WindowCost(simulations=2, iterations=it)
        run.restore(E0, run.inflate(combine(E0.X, W), E0.X))
        for i in win.leaving(c):  # run the smoothed ensemble to the next window's start
            if not self.mda:
                run.record(Estimate.SMOOTHER, i, *run.state())
            run.advance()
        return run.snapshot(), cost

    def _pass(self, run: Trajectory, c: int, E0, weights: dict[int, float], record: bool) -> tuple[np.ndarray, int]:
        """One filter pass from ``E0`` analysing the observations of ``weights``; its transform of ``E0``."""
        win, N, rows, inflation = self.schedule, run.N, run.rows, run.inflation
        new = set(win.new(c)) if record else set()
        leaving = set(win.leaving(c))
        reanalysed = {E0.j: _Lagged(E0.X, E0.truth, np.eye(N))} if (record and self.mda) else {}
        spin = c == 0
        run.restore(E0)
        W_all, iterations = np.eye(N), 0
        for j in win.observed(c):
            run.advance()
            if j not in weights:  # SDA: an observation earlier windows assimilated
                continue
            X, truth = run.state()
            if j in new:
                run.record(Estimate.FORECAST, j, X, truth)
            Y, y = run.observe()
            if spin:  # the first window: inflate the filter's analyses, as in a filter
                X, Y = inflation.prior(X, rows), inflation.prior_obs(Y)
            W, it = self._transform(run, X, Y, y, weights[j])
            Xa = combine(X, W)
            if spin:
                Xa = inflation.posterior(Xa, X, rows, run.context())
            run.set_members(Xa)
            if j in new:
                run.record(Estimate.ANALYSIS, j, Xa, truth)
            W_all, iterations = W_all @ W, iterations + it  # E_0 <- E_0 W_k
            for state in reanalysed.values():
                state.W = state.W @ W
            if reanalysed and j in leaving:
                reanalysed[j] = _Lagged(Xa, truth, np.eye(N))
        for i, state in reanalysed.items():
            run.record(Estimate.SMOOTHER, i, combine(state.X, state.W), state.truth)
        return W_all, iterations

    def _transform(self, run: Trajectory, X: np.ndarray, Y: np.ndarray, y: np.ndarray,
                   weight: float) -> tuple[np.ndarray, int]:
        """The filter transform of the members ``X`` (observed ``Y``) and its MLEF iterations."""
        if not self.mlef:
            return filter_transform(Y, y, run.R, weight, self.finite_size, self.eps_N), 0

        def evaluate(W):  # the observation operator on the transformed members: no model run
            run.set_members(combine(X, W))
            return [run.observe()[0]]

        res = gauss_newton(evaluate, [Term(y, run.R, weight)], run.N, finite_size=self.finite_size,
                           eps_N=self.eps_N, tol=self.tol, max_iter=self.max_iter, first=[Y])
        return res.W, res.iterations
