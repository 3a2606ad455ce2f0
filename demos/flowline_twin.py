"""The flowline glacier twin (ICESEE's flowline example): thickness, speed and grounding line.

A marine-terminating glacier along a flowline (:class:`fdassim.models.flowline.Flowline`)
whose accumulation is unknown: the truth thins under net ablation while the members start
from the prior accumulation. Every ``every`` years the thickness and the speed are observed
at 12 points and the grounding line position is observed; the stochastic EnKF estimates the
state and the accumulation. ICESEE's flowline example: N = 30, 150 years, observations
every 10 years (the default here; about 1.5 minutes on 2 ranks). ``--smoother sienks`` runs
the single-iteration ensemble Kalman smoother over a lag of ``--lag`` observation times
instead of the filter (the same observations; each window's states are smoothed).

    python demos/flowline_twin.py                       # N = 30, 150 years
    mpiexec -n 2 python demos/flowline_twin.py --members 30
    mpiexec -n 2 python demos/flowline_twin.py --smoother sienks --lag 3
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import fdassim

SIGMA = {"thickness": 10.0, "velocity": 5.0, "grounding_line": 500.0}  # observation errors (m, m/yr, m)


class FlowlineObservations:
    """Thickness and speed at ``points`` and the grounding line position, stacked."""

    def __init__(self, points: np.ndarray):
        self.h = fdassim.PointValues("thickness", points)
        self.u = fdassim.PointValues("velocity", points)

    def __call__(self, state) -> np.ndarray:
        return np.concatenate([self.h(state), self.u(state), state["grounding_line"]])


SMOOTHERS = ("enks", "sienks", "sienks-mda")


def main(members: int = 30, years: int = 150, every: int = 10, output: str = "demo-output/flowline_twin.h5",
         progress: bool = True, smoother: str | None = None, lag: int = 3, **options):
    """Run the twin (the filter, or ``smoother`` over ``lag`` observation times) and write the
    store and its figure; return the run's result. ``options`` are the
    :class:`~fdassim.models.flowline.Flowline`'s."""
    from fdassim.models.flowline import Flowline

    method = None if smoother is None else _smoother(smoother, lag)  # a bad name stops before any work

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    model = Flowline(**options)
    points = np.linspace(2.5e3, 57.5e3, 12)[:, None]
    std = np.concatenate([np.full(12, SIGMA["thickness"]), np.full(12, SIGMA["velocity"]), [SIGMA["grounding_line"]]])
    coords = np.concatenate([points, points, [[model.sill_position]]])
    observations = fdassim.Observations(FlowlineObservations(points), fdassim.ObsError.from_std(std), coords)
    ensemble = fdassim.Ensemble(model, size=members, truth=True)
    times = np.arange(0, years + 1, every, dtype=float)
    inflation = fdassim.Multiplicative(1.02, lam_param=1.1)
    with fdassim.Store.create(output, ensemble, times, m=std.size, overwrite=True, smoother=method) as store:
        if method is None:
            result = fdassim.assimilate(ensemble, fdassim.EnKF(), observations, times, seed=7, store=store,
                                        inflation=inflation, progress=progress)
        else:
            result = fdassim.smooth(ensemble, method, observations, times, seed=7, store=store, inflation=inflation,
                                    progress=progress)
    if ensemble.world.rank == 0:
        print(f"RMSE of the whole state: forecast {result.rmse_forecast[0]:.2f} at year {every} -> "
              f"analysis {result.rmse_analysis[-1]:.2f} at year {years}")
        if method is not None:
            have = np.isfinite(result.rmse_smoother)
            print(f"{smoother} (lag {lag}), over the {int(have.sum())} smoothed times: RMSE "
                  f"{np.mean(result.rmse_smoother[have]):.2f} (filter {np.mean(result.rmse_analysis[have]):.2f}), "
                  f"spread {np.mean(result.spread_smoother[have]):.2f} "
                  f"(filter {np.mean(result.spread_analysis[have]):.2f})")
        print(f"figure: {figure(output)}")
    return result


def _smoother(name: str, lag: int):
    """The smoother ``name`` (one of :data:`SMOOTHERS`) over ``lag`` observation times."""
    if name not in SMOOTHERS:
        raise fdassim.ConfigError(f"smoother: {name!r} is not one of {', '.join(SMOOTHERS)}")
    if name == "enks":
        return fdassim.EnKS(lag=lag)
    return fdassim.SIEnKS(lag=lag, mda=name == "sienks-mda")


def figure(path: str) -> str:
    """Grounding line, accumulation and thickness at mid-flowline against time, forecast then
    analysis at each cycle (ensemble mean, +-2 sigma, truth), next to the store; its path."""
    import h5py

    from fdassim import plots
    from fdassim import store_layout as sl

    with h5py.File(path, "r") as h5:
        t = np.repeat(h5[sl.TIMES][1:], 2)  # each cycle: its forecast, then its analysis
        x = h5[sl.positions("thickness")][:, 0]
        mid = int(np.argmin(np.abs(x - 0.5 * (x.min() + x.max()))))
        panels = []
        for field, label, pick, scale in (("grounding_line", "grounding line (km)", 0, 1e-3),
                                          ("accumulation", "accumulation (m/yr)", None, 1.0),
                                          ("thickness", f"thickness at {x[mid] / 1e3:.0f} km (m)", mid, 1.0)):
            ens = np.stack([h5[sl.ensemble(kind, field)][...] for kind in ("forecast", "analysis")], axis=1)
            truth = np.repeat(h5[sl.truth(field)][...], 2, axis=0)
            ens = ens.reshape(-1, *ens.shape[2:])  # (2K, n, N)
            if pick is None:  # the field's mean along the flowline
                ens, truth = ens.mean(axis=1), truth.mean(axis=1)
            else:
                ens, truth = ens[:, pick], truth[:, pick]
            panels.append({"label": label, "truth": scale * truth, "mean": scale * ens.mean(axis=-1),
                           "std": scale * ens.std(axis=-1, ddof=1)})
    out = os.path.splitext(path)[0] + ".png"
    plots.point_series(out, t, panels, title="flowline twin: forecast then analysis at each cycle")
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=30)
    p.add_argument("--years", type=int, default=150)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--output", default="demo-output/flowline_twin.h5")
    p.add_argument("--smoother", choices=SMOOTHERS, help="a smoother instead of the filter")
    p.add_argument("--lag", type=int, default=3, help="the smoother's lag, in observation times")
    a = p.parse_args()
    main(a.members, a.years, a.every, a.output, smoother=a.smoother, lag=a.lag)
