"""Strong and weak scaling of an Icepack twin experiment, with the time broken down.

Each configuration (``P`` ranks, ``N`` members) is one run under ``mpiexec -n P`` of the
same twin experiment, the store written as ``fdassim run`` writes it. The default model is
the ICESEE paper's ice-stream twin (``--model stream``: Icepack's synthetic ice stream,
:class:`fdassim.models.icestream.IceStream`, thickness, velocity and accumulation observed at
every node, the stochastic EnKF, analyses every year); ``--model shelf`` runs the floating
ice shelf of ``demos/icepack_shelf.py`` instead. A run reports the wall time of

- initialization: building the ensemble's meshes and fields, the store, the initial draws;
- forecast: the members' Icepack solves;
- analysis: observing, the transposes, the analysis and inflation;
- I/O: writing each cycle to the store,

as the ICESEE paper does (its Tables 1 and 2, Figures 9 and 10). Strong scaling keeps ``N``
and grows ``P``; weak scaling grows ``N`` with ``P`` (``N / P`` fixed). Speed-ups and
efficiencies are ratios between runs of the same invocation, so they do not depend on how
fast the machine is, only on how steady it is while they run.

Usage::

    python benchmarks/scaling.py                       # strong: N = 64 on 1, 2 ranks; weak: N = 8 per rank
    python benchmarks/scaling.py --ranks 1 2 4 --strong-members 64 --weak-members 16 --cycles 3
    python benchmarks/scaling.py --model shelf         # the ice shelf instead of the ice stream

It prints the tables (and the machine they ran on) and writes ``scaling.png`` and
``scaling.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
PARTS = ("init", "forecast", "analysis", "io")
LABELS = {"init": "initialization", "forecast": "forecast", "analysis": "analysis", "io": "I/O"}


# -- one run (the child, under mpiexec) ----------------------------------------------------------
class Twin(NamedTuple):
    """One benchmarked twin experiment: the model, what is observed, the analysis."""

    model: object
    H: Callable  # the observation operator
    R: object  # fdassim.ObsError
    coords: np.ndarray | None  # observation positions (None: none needed)
    m: int  # observations per cycle
    dt: float  # years between analyses
    scheme: object
    inflation: object


class NodalFields:
    """``H(x)``: the values of ``fields`` at every node, concatenated (as the ICESEE twin
    observes thickness, both velocity components and the accumulation everywhere).

    The benchmark places each member on its own rank (one rank per ensemble group), so a
    member's fields are whole on its rank and need no gather.
    """

    def __init__(self, fields: tuple[str, ...]):
        self.fields = fields

    def __call__(self, state) -> np.ndarray:
        parts = []
        for name in self.fields:
            f = state[name]
            if f.function_space().mesh().comm.size > 1:
                raise ValueError(f"NodalFields({name!r}): a member's mesh is split over ranks; run the "
                                 "benchmark with no more ranks than members (one rank per member)")
            parts.append(np.asarray(f.dat.data_ro).T.reshape(-1))  # a vector field: x then y
        return np.concatenate(parts)


def _stream_model():
    """The ICESEE ice-stream twin (:class:`fdassim.models.icestream.IceStream`: 12 x 8
    quadrilaterals of degree 2, 425 nodes; thickness and velocity the state, the accumulation
    a parameter), observed at every node: thickness (std 0.5 m), both velocity components
    (0.1 m/yr) and the accumulation (0.1 m/yr), m = 1700; analyses every year (2 Icepack steps
    of 0.5 yr) by the stochastic EnKF, the accumulation inflated by 1.12 (the ICESEE paper's
    scheme and inflation: ``demos/icestream_twin --scheme enkf``, which observes every 8
    years)."""
    import fdassim
    from fdassim.models.icestream import IceStream

    model = IceStream()
    n = (model.degree * model.nx + 1) * (model.degree * model.ny + 1)  # nodes of the Lagrange space
    std = np.concatenate([np.full(n, 0.5), np.full(2 * n, 0.1), np.full(n, 0.1)])
    H = NodalFields(("thickness", "velocity", "accumulation"))
    return Twin(model, H, fdassim.ObsError.from_std(std), None, std.size, 1.0, fdassim.EnKF(),
                fdassim.Multiplicative(1.0, lam_param=1.12))


def _shelf_model():
    """The Icepack floating ice shelf of ``demos/icepack_shelf.py`` (mesh, fields and initial
    draw from the demo; thickness assimilated, velocity carried), thickness observed at 12
    points (std 5 m); analyses every 0.5 yr by the ETKF, inflation 1.05."""
    import icepack

    import fdassim

    spec = importlib.util.spec_from_file_location("icepack_shelf", HERE.parent / "demos" / "icepack_shelf.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    model = fdassim.IcepackModel(demo.setup, icepack.models.IceShelf(), state=("thickness",), dt=0.5,
                                 solver_options={"dirichlet_ids": [1], "side_wall_ids": [3, 4]}, initial=demo.bump)
    points = np.array([[x, y] for x in (2.5e3, 7.5e3, 12.5e3, 17.5e3) for y in (5e3, 10e3, 15e3)])
    return Twin(model, fdassim.PointValues("thickness", points), fdassim.ObsError.from_std(5.0), points, len(points), 0.5,
                fdassim.ETKF(), fdassim.Multiplicative(1.05))


MODELS = {"stream": _stream_model, "shelf": _shelf_model}


def run_one(model: str, members: int, cycles: int, store: str) -> dict:
    """One twin run on the ranks of ``COMM_WORLD``; the time of each part (same on every rank).

    The clock starts after the imports of the libraries the run uses (Firedrake, Icepack and
    gstools, whose random fields draw the members' initial states: Python's start-up, paid
    once per process however long the run); their time is returned as ``imports``.
    """
    tic = time.perf_counter()
    import firedrake  # noqa: F401  (imported before the clock starts)
    import gstools  # noqa: F401
    import icepack  # noqa: F401

    import fdassim

    imports = time.perf_counter() - tic
    tic = time.perf_counter()
    twin = MODELS[model]()
    ensemble = fdassim.Ensemble(twin.model, size=members, truth=True)
    observations = fdassim.Observations(twin.H, twin.R, twin.coords)
    times = twin.dt * np.arange(cycles + 1)
    ensemble.world.barrier()  # the store's creation is collective: waiting for a slower rank is set-up time
    built = time.perf_counter()
    with fdassim.Store.create(store, ensemble, times, m=twin.m, overwrite=True) as st:
        created = time.perf_counter()
        result = fdassim.assimilate(ensemble, twin.scheme, observations, times, seed=4, store=st,
                                    inflation=twin.inflation, progress=False)
    out = {k: float(result.timing[k]) for k in PARTS}
    # initialization = the model's set-up (mesh, fields, members) + the store's creation + the
    # cycle's start (the members' initial draws); the store's creation is fdassim's alone
    out["init_store"] = created - built
    out["init_model"] = built - tic + out["init"]
    out["init"] += created - tic
    out["total"] = time.perf_counter() - tic
    out["imports"] = imports
    out["ranks"], out["members"], out["groups"] = ensemble.world.size, members, ensemble.groups
    out["rmse_analysis"] = float(result.rmse_analysis[-1])
    return out


# -- the driver -------------------------------------------------------------------------------------
def launch(model: str, ranks: int, members: int, cycles: int, out: Path) -> dict:
    """Run one configuration under ``mpiexec -n ranks``; return its timings."""
    store = out / f"run-{ranks}x{members}.h5"
    cmd = ["mpiexec", "-n", str(ranks), sys.executable, str(Path(__file__).resolve()), "--child",
           "--model", model, "--members", str(members), "--cycles", str(cycles), "--store", str(store)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1]
    store.unlink(missing_ok=True)
    return json.loads(line)


def table(runs: list[dict], base: dict, title: str, weak: bool) -> str:
    """The runs as a Markdown table: seconds per part, total, speed-up (strong) or
    efficiency (weak) against ``base``."""
    head = f"| ranks | members | {' | '.join(LABELS[p] + ' (s)' for p in PARTS)} | total (s) | " + \
        ("efficiency T1/TP |" if weak else "speed-up T1/TP | efficiency |")
    lines = [f"**{title}**", "", head, "|" + "---|" * (head.count("|") - 1)]
    for r in runs:
        total = sum(r[p] for p in PARTS)
        base_total = sum(base[p] for p in PARTS)
        cells = [str(r["ranks"]), str(r["members"])] + [f"{r[p]:.2f}" for p in PARTS] + [f"{total:.2f}"]
        if weak:
            cells.append(f"{base_total / total:.2f}")
        else:
            s = base_total / total
            cells += [f"{s:.2f}", f"{s * base['ranks'] / r['ranks']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(strong: list[dict], weak: list[dict], path: Path) -> None:
    """Stacked bars of the parts per run, strong scaling beside weak scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, runs, title in ((axes[0], strong, "strong scaling"), (axes[1], weak, "weak scaling")):
        x = np.arange(len(runs))
        bottom = np.zeros(len(runs))
        for p in PARTS:
            v = np.array([r[p] for r in runs])
            ax.bar(x, v, bottom=bottom, label=LABELS[p])
            bottom += v
        ax.set_xticks(x, [f"{r['ranks']} rank{'s' * (r['ranks'] > 1)}\nN = {r['members']}" for r in runs])
        ax.set_ylabel("wall time (s)")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load {load:.1f} at the start, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="stream")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--strong-members", type=int, default=64, help="N of the strong-scaling runs")
    p.add_argument("--weak-members", type=int, default=8, help="N per rank of the weak-scaling runs")
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("results/scaling"))
    # one run, under mpiexec (what the driver launches)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--members", type=int, help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        out = run_one(a.model, a.members, a.cycles, a.store)
        from mpi4py import MPI

        if MPI.COMM_WORLD.rank == 0:
            print(json.dumps(out), flush=True)
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"model: {a.model}, {a.cycles} cycles per run; ranks {a.ranks}")
    # a first small run compiles Firedrake's and Icepack's kernels, so no timed run pays for it
    launch(a.model, 1, 2, 1, a.out)
    strong = [launch(a.model, P, a.strong_members, a.cycles, a.out) for P in a.ranks]
    weak = [launch(a.model, P, a.weak_members * P, a.cycles, a.out) for P in a.ranks]
    text = "\n\n".join([table(strong, strong[0], f"Strong scaling: N = {a.strong_members}", weak=False),
                        table(weak, weak[0], f"Weak scaling: N = {a.weak_members} per rank", weak=True)])
    print(text)
    figure(strong, weak, a.out / "scaling.png")
    with open(a.out / "scaling.json", "w") as fh:
        json.dump({"machine": machine(), "model": a.model, "cycles": a.cycles, "strong": strong, "weak": weak}, fh,
                  indent=1)
    print(f"figure: {a.out / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
