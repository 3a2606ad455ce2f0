r"""Filter divergence: an ensemble that no longer contains the truth.

A healthy ensemble filter has an analysis RMSE about equal to its ensemble spread (the
spread is the filter's own estimate of its error). When the spread is far too small (too few
members, too little inflation, spurious long-range correlations without localization) the
filter trusts its forecast, ignores the observations and drifts away from the truth: the
RMSE grows to many times the spread, or the spread collapses (Houtekamer & Zhang 2016,
sect. 4; Anderson 2001).

:func:`divergence` looks at the last ``window`` cycles of the per-cycle diagnostics:

* with a truth (a twin experiment): the mean analysis RMSE exceeds ``ratio`` times the mean
  analysis spread;
* without one: the mean analysis spread has fallen below ``collapse`` times its value at the
  first cycle.

References
----------
Anderson, J. L. (2001). An ensemble adjustment Kalman filter for data assimilation. Mon.
Wea. Rev. 129, 2884-2903. https://doi.org/10.1175/1520-0493(2001)129<2884:AEAKFF>2.0.CO;2

Houtekamer, P. L. and Zhang, F. (2016). Review of the ensemble Kalman filter for atmospheric
data assimilation. Mon. Wea. Rev. 144, 4489-4532. https://doi.org/10.1175/MWR-D-15-0440.1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DivergenceRule", "divergence", "ADVICE"]

#: what to try, appended to the warning (and said in the README)
ADVICE = "try more inflation, localization, or more members"


@dataclass(frozen=True)
class DivergenceRule:
    """When a filter is called divergent.

    Parameters
    ----------
    ratio
        Mean analysis RMSE over mean analysis spread above which a twin run has diverged.
    collapse
        Fraction of the first cycle's analysis spread below which the spread has collapsed.
    window
        Cycles the means are taken over.
    """

    ratio: float = 5.0
    collapse: float = 1e-3
    window: int = 10


def divergence(rmse: np.ndarray, spread: np.ndarray, k: int, rule: DivergenceRule = DivergenceRule()) -> str | None:
    """Whether the filter has diverged by cycle ``k``: a sentence with the numbers, or ``None``.

    Parameters
    ----------
    rmse, spread
        Per-cycle analysis RMSE (NaN without a truth) and spread, filled up to cycle ``k``.
    k
        The cycle just completed.
    """
    lo = k + 1 - rule.window
    if lo < 0:
        return None
    r, s = np.asarray(rmse[lo:k + 1], dtype=float), np.asarray(spread[lo:k + 1], dtype=float)
    ms = float(np.mean(s))
    if np.all(np.isfinite(r)):
        mr = float(np.mean(r))
        if mr > rule.ratio * ms:
            times = f"{mr / ms:.1f} times" if ms > 0 else "infinitely many times"
            return (f"the filter diverges at cycle {k}: its analysis RMSE {mr:.3g} is {times} its ensemble "
                    f"spread {ms:.3g} (means over cycles {lo}-{k}); {ADVICE}")
        return None
    s0 = float(spread[0])
    if np.isfinite(s0) and s0 > 0 and ms < rule.collapse * s0:
        return (f"the filter diverges at cycle {k}: its ensemble spread collapsed from {s0:.3g} at cycle 0 "
                f"to {ms:.3g} (mean over cycles {lo}-{k}); {ADVICE}")
    return None
