"""The ICESEE ice-stream twin against its floors: bare Icepack forecasts of the same configuration.

Two floors, both Icepack's own loop (prognostic solve, surface, diagnostic solve) on the
twin's mesh and fields, with no fdassim machinery:

- the *truth loop* (the issue's floor): the true state stepped after warm-up, its seconds
  per member-step times the member-steps each rank must run;
- the *free ensemble*: every member each rank holds (the truth and the members, drawn from the
  wrong state by the twin's own initial draw) stepped through the whole run with no analysis
  and no model noise. The members start far from equilibrium (thickness 350 m too low), so
  Icepack's Newton solver needs more iterations for them than for the truth (counted and
  printed): this is the cost of the ensemble itself.

Then the twin runs (``demos/icestream_twin``: the assimilation without the free run and
figures), and its wall time is compared with both. Icepack's forms are compiled once, by a
warm-up before anything is timed, so no timing includes the compilation (printed apart).
The breakdown (set-up, forecast, analysis, I/O) is printed and written to
``<output>/benchmark.json`` with the ratios.

    python benchmarks/icestream_twin.py [--short] [--members N] [--years Y]
    mpiexec -n 2 python benchmarks/icestream_twin.py                             # the demo's defaults
    mpiexec -n 2 python benchmarks/icestream_twin.py --noise 0 0 --scheme enkf   # the issue's configuration
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

import numpy as np


class _Loop:
    """Icepack's loop on this rank's own mesh: one FlowSolver, the twin's true fields."""

    def __init__(self):
        import icepack
        from mpi4py import MPI

        from fdassim.models.icestream import IceStream

        self.model = IceStream()
        self.fields = self.model.reference_fields(MPI.COMM_SELF)  # the twin's mesh and true fields
        self.solver = icepack.solvers.FlowSolver(self.model.icepack.flow, **dict(self.model.icepack.solver_options))
        self.iterations = 0

    def member(self, rng=None) -> dict:
        """A member's own thickness, velocity, accumulation and surface: the truth's, or (given
        ``rng``) drawn as the twin draws its members."""
        import icepack

        f = {k: v.copy(deepcopy=True) if k in ("thickness", "velocity", "accumulation", "surface") else v
             for k, v in self.fields.items()}
        if rng is not None:
            self.model.icepack.initial(f, rng)
            f["surface"] = icepack.compute_surface(thickness=f["thickness"], bed=f["bed"])
        return f

    def step(self, f: dict) -> None:
        import icepack

        f["thickness"] = self.solver.prognostic_solve(
            self.model.dt, thickness=f["thickness"], velocity=f["velocity"], accumulation=f["accumulation"],
            thickness_inflow=f["thickness_inflow"])
        f["surface"] = icepack.compute_surface(thickness=f["thickness"], bed=f["bed"])
        f["velocity"] = self.solver.diagnostic_solve(
            velocity=f["velocity"], thickness=f["thickness"], surface=f["surface"],
            **{k: f[k] for k in ("bed", "fluidity", "friction")})
        self.iterations += self.solver._diagnostic_solver._solver.snes.getIterationNumber()


def compile_forms() -> float:
    """Seconds to build the loop and take one step (Icepack's forms compiled, once per process)."""
    tic = time.perf_counter()
    loop = _Loop()
    loop.step(loop.member())
    return time.perf_counter() - tic


def truth_per_step(steps: int = 20, warmup: int = 4) -> tuple[float, float]:
    """``(seconds per member-step, Newton iterations per step)`` of the truth loop after warm-up."""
    loop = _Loop()
    f = loop.member()
    for _ in range(warmup):
        loop.step(f)
    loop.iterations = 0
    tic = time.perf_counter()
    for _ in range(steps):
        loop.step(f)
    return (time.perf_counter() - tic) / steps, loop.iterations / steps


def free_ensemble(members: int, truth: bool, steps_per_year: int, years: int, seed: int) -> tuple[float, float]:
    """``(seconds, Newton iterations per member-step)`` of ``members`` members drawn from the
    wrong state (one of them the truth if ``truth``) and stepped, year by year, member by member
    (as the twin does), with their set-up."""
    tic = time.perf_counter()
    loop = _Loop()
    ensemble = [loop.member(None if truth and i == 0 else np.random.default_rng([seed, i])) for i in range(members)]
    for _ in range(years):
        for f in ensemble:
            for _ in range(steps_per_year):
                loop.step(f)
    return time.perf_counter() - tic, loop.iterations / max(1, members * years * steps_per_year)


def _demo():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "demos", "icestream_twin", "twin.py")
    spec = importlib.util.spec_from_file_location("icestream_twin", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["icestream_twin"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    from mpi4py import MPI

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--short", action="store_true", help="the make demo configuration")
    p.add_argument("--members", type=int, help="fewer members than the full run's 40")
    p.add_argument("--years", type=int, help="fewer years than the full run's 100")
    p.add_argument("--scheme", help="the twin's scheme (default: its own, the localized EnKF)")
    p.add_argument("--noise", type=float, nargs=2, metavar=("THICKNESS", "SMB"),
                   help="the twin's model noise (default: its own; 0 0 for the issue's configuration)")
    p.add_argument("--output", default="demo-output/icestream_benchmark")
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    demo = _demo()
    given = {k: v for k, v in (("members", a.members), ("years", a.years), ("scheme", a.scheme),
                               ("noise", None if a.noise is None else tuple(a.noise))) if v is not None}
    config = (demo.Config.short if a.short else demo.Config)(output=a.output, **given)
    compile_s = comm.allreduce(compile_forms(), op=MPI.MAX)
    per_step, truth_its = truth_per_step()
    per_step = comm.allreduce(per_step) / comm.size  # the ranks' mean
    from fdassim.models.icestream import IceStream

    steps_per_year = round(1.0 / IceStream.dt)
    steps = config.years * steps_per_year
    members_per_rank = math.ceil((config.members + 1) / comm.size)
    truth_floor = members_per_rank * steps * per_step
    comm.Barrier()
    free_s, free_its = free_ensemble(members_per_rank, comm.rank == comm.size - 1, steps_per_year, config.years,
                                     config.seed + comm.rank)
    free_s = comm.allreduce(free_s, op=MPI.MAX)
    free_its = comm.allreduce(free_its) / comm.size
    comm.Barrier()
    tic = time.perf_counter()
    summary = demo.run(config, progress=False, figures=False)  # the assimilation: no free run, no figures
    wall = comm.allreduce(time.perf_counter() - tic, op=MPI.MAX)
    if comm.rank == 0:
        t = summary["timing_seconds"]
        result = {"ranks": comm.size, "members": config.members, "years": config.years, "steps": steps,
                  "scheme": config.scheme, "noise": list(config.noise), "noise_field": config.noise_field,
                  "compile_s": compile_s, "truth_per_member_step_s": per_step, "truth_newton_per_step": truth_its,
                  "truth_floor_s": truth_floor, "free_ensemble_s": free_s, "free_newton_per_step": free_its,
                  "run_wall_s": wall, "ratio_to_truth_floor": wall / truth_floor,
                  "ratio_to_free_ensemble": wall / free_s,
                  "run_forecast_per_member_step_s": t["forecast"] / (members_per_rank * steps),
                  "breakdown_s": t}
        print(f"compilation (once, not in any timing below): {compile_s:.1f} s")
        print(f"truth loop:    {per_step * 1e3:.1f} ms per member-step after warm-up ({truth_its:.1f} Newton "
              f"iterations a step); {members_per_rank} members x {steps} steps per rank -> {truth_floor:.1f} s")
        print(f"free ensemble: {free_s:.1f} s for {members_per_rank} members x {steps} steps per rank, set-up "
              f"included ({free_its:.1f} Newton iterations a step)")
        print(f"twin:          {wall:.1f} s on {comm.size} rank(s) = {wall / free_s:.2f} x the free ensemble, "
              f"{wall / truth_floor:.2f} x the truth loop; forecast "
              f"{result['run_forecast_per_member_step_s'] * 1e3:.1f} ms per member-step")
        print("breakdown: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
        with open(os.path.join(config.output, "benchmark.json"), "w") as fh:
            json.dump(result, fh, indent=1)
        return result
    return None


if __name__ == "__main__":
    main()
