"""The flowline glacier twin (ICESEE's flowline example): thickness, speed and grounding line.

A marine-terminating glacier along a flowline (:class:`fdassim.models.flowline.Flowline`)
whose accumulation is unknown: the truth thins under net ablation while the members start
from the prior accumulation. Every ``every`` years the thickness and the speed are observed
at 12 points and the grounding line position is observed; the stochastic EnKF estimates the
state and the accumulation. ICESEE's flowline example: N = 30, 150 years, observations
every 10 years (the default here; about 4 minutes on 2 ranks).

    python demos/flowline_twin.py                       # N = 30, 150 years
    mpiexec -n 2 python demos/flowline_twin.py --members 30
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


def main(members: int = 30, years: int = 150, every: int = 10, output: str = "demo-output/flowline_twin.h5",
         progress: bool = True, **options):
    from fdassim.models.flowline import Flowline

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    model = Flowline(**options)
    points = np.linspace(2.5e3, 57.5e3, 12)[:, None]
    std = np.concatenate([np.full(12, SIGMA["thickness"]), np.full(12, SIGMA["velocity"]), [SIGMA["grounding_line"]]])
    coords = np.concatenate([points, points, [[model.sill_position]]])
    observations = fdassim.Observations(FlowlineObservations(points), fdassim.ObsError.from_std(std), coords)
    ensemble = fdassim.Ensemble(model, size=members, truth=True)
    times = np.arange(0, years + 1, every, dtype=float)
    with fdassim.Store.create(output, ensemble, times, m=std.size, overwrite=True) as store:
        result = fdassim.assimilate(ensemble, fdassim.EnKF(), observations, times, seed=7, store=store,
                                    inflation=fdassim.Multiplicative(1.02, lam_param=1.1), progress=progress)
    if ensemble.world.rank == 0:
        print(f"RMSE of the whole state: forecast {result.rmse_forecast[0]:.2f} at year {every} -> "
              f"analysis {result.rmse_analysis[-1]:.2f} at year {years}")
        print(f"figure: {figure(output)}")
    return result


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
    a = p.parse_args()
    main(a.members, a.years, a.every, a.output)
