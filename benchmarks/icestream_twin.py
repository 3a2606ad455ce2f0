"""The ICESEE ice-stream twin against its floor: bare Icepack forecasts of the same configuration.

The floor is what the ensemble costs without any assimilation machinery: Icepack's own loop
(prognostic solve, surface, diagnostic solve) on the twin's mesh and fields, timed per
member-step after warm-up, times the member-steps each rank must run, plus the one-off set-up
(form compilation, first solves) measured in the same process. Then the twin runs
(``demos/icestream_twin``, the assimilation without the free run and figures) and its wall
time is compared with the floor, as is its forecast time per member-step with the floor's;
the breakdown (set-up, forecast, analysis, I/O) is printed and written to
``<output>/benchmark.json``. The floor runs first and pays Icepack's form compilation,
which the twin then finds compiled: the twin's set-up is its own (members, random fields,
store), without the compilation.

    python benchmarks/icestream_twin.py [--short] [--members N] [--years Y]
    mpiexec -n 2 python benchmarks/icestream_twin.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time


def floor_per_step(steps: int = 20, warmup: int = 4) -> tuple[float, float]:
    """``(set-up seconds, seconds per member-step)`` of a bare Icepack loop on this rank."""
    import icepack
    from mpi4py import MPI

    from fdassim.models.icestream import IceStream

    tic = time.perf_counter()
    model = IceStream()
    f = model.reference_fields(MPI.COMM_SELF)  # the twin's mesh and true fields, from its own set-up code
    solver = icepack.solvers.FlowSolver(model.icepack.flow, **dict(model.icepack.solver_options))
    h, u, s = f["thickness"], f["velocity"], f["surface"]
    diagnostic = {k: f[k] for k in ("bed", "fluidity", "friction")}

    def step():
        nonlocal h, u, s
        h = solver.prognostic_solve(model.dt, thickness=h, velocity=u, accumulation=f["accumulation"],
                                    thickness_inflow=f["thickness_inflow"])
        s = icepack.compute_surface(thickness=h, bed=f["bed"])
        u = solver.diagnostic_solve(velocity=u, thickness=h, surface=s, **diagnostic)

    for _ in range(warmup):
        step()
    setup = time.perf_counter() - tic
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    return setup, (time.perf_counter() - tic) / steps


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
    p.add_argument("--output", default="demo-output/icestream_benchmark")
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    demo = _demo()
    given = {k: v for k, v in (("members", a.members), ("years", a.years)) if v is not None}
    config = (demo.Config.short if a.short else demo.Config)(output=a.output, **given)
    setup, per_step = floor_per_step()
    per_step = comm.allreduce(per_step) / comm.size  # the ranks' mean
    setup = comm.allreduce(setup, op=MPI.MAX)
    steps = round(config.years / 0.5)
    members_per_rank = math.ceil((config.members + 1) / comm.size)
    floor = setup + members_per_rank * steps * per_step
    tic = time.perf_counter()
    summary = demo.run(config, progress=False, figures=False)  # the assimilation: no free run, no figures
    wall = comm.allreduce(time.perf_counter() - tic, op=MPI.MAX)
    if comm.rank == 0:
        result = {"ranks": comm.size, "members": config.members, "years": config.years, "steps": steps,
                  "floor_setup_s": setup, "floor_per_member_step_s": per_step, "floor_total_s": floor,
                  "run_wall_s": wall, "ratio_run_to_floor": wall / floor,
                  "run_forecast_per_member_step_s": summary["timing_seconds"]["forecast"] / (members_per_rank * steps),
                  "ratio_forecast_per_member_step": summary["timing_seconds"]["forecast"]
                  / (members_per_rank * steps) / per_step,
                  "breakdown_s": summary["timing_seconds"]}
        print(f"floor: {per_step * 1e3:.1f} ms per member-step after warm-up, set-up {setup:.1f} s; "
              f"{members_per_rank} members x {steps} steps per rank -> {floor:.1f} s")
        print(f"twin:  {wall:.1f} s on {comm.size} rank(s) = {wall / floor:.2f} x the floor; forecast "
              f"{result['run_forecast_per_member_step_s'] * 1e3:.1f} ms per member-step")
        print("breakdown: " + ", ".join(f"{k} {v:.1f} s" for k, v in summary["timing_seconds"].items()))
        with open(os.path.join(config.output, "benchmark.json"), "w") as fh:
            json.dump(result, fh, indent=1)
        return result
    return None


if __name__ == "__main__":
    main()
