"""The script way: an Icepack ice-shelf script that gains assimilation in a few lines.

The first half is an ordinary Icepack script (the floating ice shelf of Icepack's tutorials:
20 km x 20 km, 500 m thick at the inflow, -19 C), written as a small class with the three
methods fdassim asks of a model. The second half is the assimilation: a twin experiment in
which the ice thickness, uncertain at the start, is observed at 12 points every half year.

Run it serially or under ``mpiexec -n 2``::

    python demos/icepack_shelf.py --members 12 --cycles 10
"""

from __future__ import annotations

import argparse

import numpy as np

import fdassim

Lx = Ly = 20e3
h0, dh, u0, T = 500.0, 100.0, 100.0, 254.15


class IceShelf:
    """Icepack's floating ice shelf; the state is the thickness."""

    fields = (fdassim.FieldSpec("thickness"),)

    def __init__(self, nx: int = 12, dt: float = 0.5):
        self.nx, self.dt = nx, dt
        self._solvers = {}

    def new_state(self, comm):
        import firedrake

        mesh = firedrake.RectangleMesh(self.nx, self.nx, Lx, Ly, comm=comm)
        return {"thickness": firedrake.Function(firedrake.FunctionSpace(mesh, "CG", 1))}

    def initial_state(self, state, rng):
        """The tutorial's thickness plus a random smooth bump of about 20 m."""
        import firedrake

        h = state["thickness"]
        x, y = firedrake.SpatialCoordinate(h.function_space().mesh())
        a, b, c = (firedrake.Constant(v) for v in rng.standard_normal(3))  # Constants: one compiled form
        bump = 20 * (a * firedrake.sin(np.pi * x / Lx) + b * firedrake.cos(np.pi * y / Ly)
                     + c * firedrake.sin(2 * np.pi * x / Lx) * firedrake.sin(np.pi * y / Ly))
        h.interpolate(h0 - dh * x / Lx + bump)

    def forecast(self, state, t0, t1):
        """Icepack's loop: diagnostic solve for the velocity, prognostic step for the thickness."""
        import firedrake
        import icepack

        h = state["thickness"]
        if id(h) not in self._solvers:  # one solver per member, built once (Icepack caches forms)
            Q = h.function_space()
            V = firedrake.VectorFunctionSpace(Q.mesh(), "CG", 1)
            x, _ = firedrake.SpatialCoordinate(Q.mesh())
            fixed = {"u": firedrake.Function(V).interpolate(firedrake.as_vector((u0 + 0 * x, 0))),
                     "A": firedrake.Function(Q).assign(icepack.rate_factor(T)),
                     "a": firedrake.Function(Q), "h_in": firedrake.Function(Q).interpolate(h0 + 0 * x)}
            solver = icepack.solvers.FlowSolver(icepack.models.IceShelf(), dirichlet_ids=[1],
                                                side_wall_ids=[3, 4])
            self._solvers[id(h)] = (solver, fixed)
        solver, f = self._solvers[id(h)]
        for _ in range(round((t1 - t0) / self.dt)):
            f["u"] = solver.diagnostic_solve(velocity=f["u"], thickness=h, fluidity=f["A"])
            h.assign(solver.prognostic_solve(self.dt, thickness=h, velocity=f["u"], accumulation=f["a"],
                                             thickness_inflow=f["h_in"]))


def main(members: int = 12, cycles: int = 10, output: str = "demo-output/icepack_shelf.h5", progress: bool = True):
    # --- the assimilation: these lines are all an Icepack script needs -------------------
    points = np.array([[x, y] for x in (2.5e3, 7.5e3, 12.5e3, 17.5e3) for y in (5e3, 10e3, 15e3)])
    ensemble = fdassim.Ensemble(IceShelf(), size=members, truth=True)
    observations = fdassim.Observations(fdassim.PointValues("thickness", points),
                                        fdassim.ObsError.from_std(5.0), points)
    times = 0.5 * np.arange(cycles + 1)  # years
    with fdassim.Store.create(output, ensemble, times, m=len(points), overwrite=True) as store:
        result = fdassim.assimilate(ensemble, fdassim.ETKF(), observations, times, seed=4,
                                    store=store, inflation=fdassim.Multiplicative(1.05), progress=progress)
    # -----------------------------------------------------------------------------------
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
