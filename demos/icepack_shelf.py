"""The script way: an Icepack ice-shelf script that gains assimilation in a few lines.

The first half is an ordinary Icepack script (the floating ice shelf of Icepack's tutorials:
20 km x 20 km, 500 m thick at the inflow, -19 C), with its mesh and fields built in a
function of the communicator. The second half is the assimilation: a twin experiment in
which the ice thickness, uncertain at the start, is observed at 12 points every half year.
The velocity is not assimilated; it is carried from one diagnostic solve to the next (and
stored in the restart).

Run it serially or under ``mpiexec -n 2``::

    python demos/icepack_shelf.py --members 12 --cycles 10
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import fdassim

Lx = Ly = 20e3
h0, dh, u0, T = 500.0, 100.0, 100.0, 254.15


def setup(comm):
    """The Icepack script's mesh and fields, on the communicator ``comm``."""
    import firedrake
    import icepack

    mesh = firedrake.RectangleMesh(12, 12, Lx, Ly, comm=comm)
    Q = firedrake.FunctionSpace(mesh, "CG", 1)
    V = firedrake.VectorFunctionSpace(mesh, "CG", 1)
    x, _ = firedrake.SpatialCoordinate(mesh)
    return {"thickness": firedrake.Function(Q).interpolate(h0 - dh * x / Lx),
            "velocity": firedrake.Function(V).interpolate(firedrake.as_vector((u0 + 0 * x, 0))),
            "fluidity": firedrake.Function(Q).assign(icepack.rate_factor(T)),
            "accumulation": firedrake.Function(Q),
            "thickness_inflow": firedrake.Function(Q).assign(h0)}


def bump(fields, rng):
    """A member's initial thickness: the tutorial's, plus a random smooth bump of about 20 m."""
    import firedrake

    h = fields["thickness"]
    x, y = firedrake.SpatialCoordinate(h.function_space().mesh())
    a, b, c = (firedrake.Constant(v) for v in rng.standard_normal(3))  # Constants: one compiled form
    h.interpolate(h0 - dh * x / Lx + 20 * (a * firedrake.sin(np.pi * x / Lx) + b * firedrake.cos(np.pi * y / Ly)
                                          + c * firedrake.sin(2 * np.pi * x / Lx) * firedrake.sin(np.pi * y / Ly)))


def main(members: int = 12, cycles: int = 10, output: str = "demo-output/icepack_shelf.h5", progress: bool = True):
    import icepack

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    # --- assimilation (README) ---
    shelf = fdassim.IcepackModel(setup, icepack.models.IceShelf(), state=("thickness",), dt=0.5,
                                 solver_options={"dirichlet_ids": [1], "side_wall_ids": [3, 4]}, initial=bump)
    points = np.array([[x, y] for x in (2.5e3, 7.5e3, 12.5e3, 17.5e3) for y in (5e3, 10e3, 15e3)])
    ensemble = fdassim.Ensemble(shelf, size=members, truth=True)       # a twin experiment
    observations = fdassim.Observations(fdassim.PointValues("thickness", points),
                                        fdassim.ObsError.from_std(5.0), points)
    times = 0.5 * np.arange(cycles + 1)                                 # years
    with fdassim.Store.create(output, ensemble, times, m=len(points), overwrite=True) as store:
        result = fdassim.assimilate(ensemble, fdassim.ETKF(), observations, times, seed=4, store=store,
                                    inflation=fdassim.Multiplicative(1.05), progress=progress)
    # --- end ---
    if ensemble.world.rank == 0:
        print(f"thickness RMSE (m): forecast {result.rmse_forecast[0]:.1f} at the first cycle -> "
              f"analysis {result.rmse_analysis[-1]:.1f} at the last; spread {result.spread_analysis[-1]:.1f}")
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=12)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--output", default="demo-output/icepack_shelf.h5")
    a = p.parse_args()
    main(a.members, a.cycles, a.output)
