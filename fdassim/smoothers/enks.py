r"""The fixed-lag ensemble Kalman smoother, right-transform form (EnKS; EnKS-N).

The filter runs unchanged: at each new observation time :math:`t_k` the forecast is
analysed by the ETKF (or the EnKF-N, ``finite_size``), with the run's inflation, exactly as
in :func:`fdassim.assimilate`. The analysis is a right transform of the (inflated) forecast,
:math:`E^a_k = E^f_k W_k`; since every lagged state of the window is a combination of the same
members, conditioning it on :math:`y_k` is the same right transform (Evensen & van Leeuwen
2000; Grudzien & Bocquet 2022, Sect. 3.1, Eq. 27):

.. math::
    E^s_{l|k} = E^s_{l|k-1} W_k, \qquad l = k - L, \dots, k - 1.

Each lagged state keeps its filter rows and the product of the transforms it has received
(``N x N``, the same on every rank); its smoother estimate is formed once, when it leaves the
window, by one combination of rows. The states held are those from the window's start to
the current time, ``L + 1`` row blocks at most (the memory of a fixed-lag smoother).

The forecast and filter statistics are those of the filter, whatever the lag; the
smoother estimate of :math:`x_l` is conditioned on the observations up to
:math:`t_{l + L - (l \bmod S)}`, as in the SIEnKS and the IEnKS (:mod:`fdassim.smoothers.window`).
Cost: one ensemble simulation per window (the ``S`` forecasts of the filter).

References
----------
Evensen, G. and van Leeuwen, P. J. (2000). An ensemble Kalman smoother for nonlinear
dynamics. Mon. Wea. Rev. 128, 1852-1867.
https://doi.org/10.1175/1520-0493(2000)128<1852:AEKSFN>2.0.CO;2

Grudzien, C. and Bocquet, M. (2022). A fast, single-iteration ensemble Kalman smoother for
sequential data assimilation. Geosci. Model Dev. 15, 7641-7681.
https://doi.org/10.5194/gmd-15-7641-2022
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.base import Scheme, TransformUpdate, combine
from ..analysis.enkf_n import EnKFN
from ..analysis.etkf import ETKF
from ..errors import FdassimError
from .base import Estimate, Smoother, Trajectory, WindowCost

__all__ = ["EnKS"]


@dataclass
class _Lagged:
    """A lagged state: its filter rows, the truth's, and the transforms it has received since."""

    X: np.ndarray
    truth: np.ndarray | None
    W: np.ndarray


@dataclass(frozen=True)
class EnKS(Smoother):
    """The fixed-lag EnKS with the ETKF (or, ``finite_size``, the EnKF-N: the EnKS-N) as its filter.

    Its options are those of :class:`~fdassim.smoothers.base.Smoother` (``lag``, ``shift``,
    ``finite_size``, ``eps_N``); it writes smoother estimates ``S`` at a time.
    """

    reruns = False

    @property
    def scheme(self) -> Scheme:
        """The filter's analysis scheme."""
        return EnKFN(eps_N=self.eps_N) if self.finite_size else ETKF()

    def start(self, run: Trajectory) -> dict[int, _Lagged]:
        return {run.j: _Lagged(*run.state(), np.eye(run.N))}

    def window(self, run: Trajectory, c: int, lagged: dict[int, _Lagged]) -> tuple[dict[int, _Lagged], WindowCost]:
        scheme, rows, inflation, N = self.scheme, run.rows, run.inflation, run.N
        for j in self.schedule.new(c):
            run.advance()
            Xf, truth = run.state()
            run.record(Estimate.FORECAST, j, Xf, truth)
            Y, y = run.observe()
            X, Yp = inflation.prior(Xf, rows), inflation.prior_obs(Y)
            update = scheme.prepare(Yp, y, run.R, run.context())
            if not isinstance(update, TransformUpdate):
                raise FdassimError(f"EnKS: the filter {type(scheme).__name__} gave no transform to reanalyse "
                                   "the lagged states with")
            Xa = inflation.posterior(update.apply(X, rows), X, rows, run.context())
            run.set_members(Xa)
            run.record(Estimate.ANALYSIS, j, Xa, truth)
            for state in lagged.values():
                state.W = state.W @ update.W  # E_l <- E_l W_k, accumulated in ensemble space
            lagged[j] = _Lagged(Xa, truth, np.eye(N))
        for i in self.schedule.leaving(c):
            state = lagged.pop(i)
            run.record(Estimate.SMOOTHER, i, combine(state.X, state.W), state.truth)
        return lagged, WindowCost(simulations=1)
