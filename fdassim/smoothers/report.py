"""What ``fdassim report`` adds for the store of a smoother run: the smoother's RMSE and spread
and the cost of its windows.

A smoother store (:mod:`fdassim.io`) holds, beside the filter's diagnostics, the smoother's
``rmse_smoother`` and ``spread_smoother`` per observation time (NaN until the state has left
its last window, so at the last ``L - 1`` or so times of a run) and, per window, the ensemble
simulations (Grudzien & Bocquet 2022's cost measure), forecast intervals and Gauss-Newton
iterations (NaN for windows not run yet).
"""

from __future__ import annotations

import numpy as np

from .. import store_layout as layout

__all__ = ["read", "lines", "plot", "RESTART"]

#: what a user is told to do with an interrupted smoother run (it cannot be continued)
RESTART = "a smoother run cannot be continued: start it again with fdassim run --overwrite"


def read(h5, k: int) -> dict | None:
    """The smoother's part of an open store whose first ``k`` observation times are committed
    (``None`` for the store of a filter run)."""
    if "smoother" not in h5.attrs:
        return None
    out = {name: h5[layout.diagnostic(name)][:k] for name in layout.SMOOTHER_DIAGNOSTICS}
    out.update({name: h5[layout.window(name)][:] for name in layout.WINDOW_COSTS})
    out.update(method=str(h5.attrs["smoother"]), lag=int(h5.attrs["lag"]), shift=int(h5.attrs["shift"]))
    return out


def lines(s: dict, burn_in: int) -> list[str]:
    """The report's lines for the smoother part ``s`` (:func:`read`), averaged from ``burn_in`` on.

    The smoother row is averaged over the observation times from ``burn_in`` on that have a
    smoother estimate; the costs over the windows run, after the first (which assimilates all
    ``L`` observations of its window), as :meth:`SmootherResult.summary
    <fdassim.smoothers.cycle.SmootherResult.summary>` does.
    """
    have = np.isfinite(s["rmse_smoother"])
    have[:burn_in] = False
    out = []
    if have.any():
        out.append(f"{'smoother':10s} {np.mean(s['rmse_smoother'][have]):10.4f} "
                   f"{np.mean(s['spread_smoother'][have]):10.4f}   ({have.sum()} times smoothed to the end)")
    else:
        out.append(f"{'smoother':10s} no time after the burn-in has left its last window yet")
    run = np.flatnonzero(np.isfinite(s["simulations"]))
    later = run[1:] if run.size > 1 else run
    if later.size:
        mean = {name: float(np.mean(s[name][later])) for name in layout.WINDOW_COSTS}
        out.append(f"{s['method']}: {run.size} of {s['simulations'].size} windows run; per window {mean['simulations']:.2f} ensemble simulations, {mean['propagations']:.1f} forecast "
                   f"intervals, {mean['iterations']:.2f} Gauss-Newton iterations")
    return out


def plot(ax, times: np.ndarray, s: dict) -> None:
    """Add the smoother's RMSE and spread against time to the report's axes."""
    ax.plot(times, s["rmse_smoother"], ":", label="RMSE smoother")
    ax.plot(times, s["spread_smoother"], ":", alpha=0.6, label="spread smoother")
