"""fdassim's own time in an Icepack twin experiment, as a fraction of the run.

The model's forecast is the work a user wants done; the rest is initialization (the model's
set-up and initial draws, and the store's creation), the observation operator, the
transposes, the analysis and the store. This script runs the twin of :mod:`scaling`
(``benchmarks/scaling.py``; by default the ICESEE ice-stream twin) and prints, per run,

- ``overhead``: everything but the forecast, over the run's wall time (the issue's measure;
  the target: < 5 %);
- ``fdassim's own``: what fdassim's plumbing alone takes (analysis, I/O and the store's
  creation: initialization without the model's set-up and initial draws, which run the
  model's own code), over the run's wall time;
- ``per cycle``: analysis and I/O over the cycles' time (initialization left out: what a
  long run tends to);
- ``imports, untimed``: the imports of Firedrake, Icepack and gstools in each process,
  before the run's clock starts (Python's start-up, not the run's), and ``overhead with
  imports``: the overhead had they been counted.

All are ratios of times measured in the same run. It also times the ice-stream twin's
initial draw of a member against its former way (:func:`initial_draws`, alternated in one
process, same fields bitwise), and a draw of a gstools field against one of Evensen's FFT
field at 425 and 20000 positions (:func:`field_draws`). ``--profile`` also runs the experiment serially under
cProfile and prints the functions where the non-forecast time goes.

Usage::

    python benchmarks/overhead.py                           # N = 16, 10 cycles, 1 and 2 ranks
    python benchmarks/overhead.py --members 32 --cycles 20 --ranks 2 --profile
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from scaling import MODELS, PARTS, launch, machine, run_one


def fractions(r: dict) -> tuple[float, float, float]:
    """(everything but the forecast, fdassim's own plumbing, overhead per cycle), each a
    fraction of one run's timings."""
    total = sum(r[p] for p in PARTS)
    cycles = r["forecast"] + r["analysis"] + r["io"]
    own = r["analysis"] + r["io"] + r["init_store"]
    return 1 - r["forecast"] / total, own / total, (r["analysis"] + r["io"]) / cycles


def with_imports(r: dict) -> float:
    """Everything but the forecast over the run's wall time, the libraries' imports counted
    in both (what a run of one process pays from start to end, less Python itself)."""
    total = sum(r[p] for p in PARTS) + r["imports"]
    return 1 - r["forecast"] / total


def profile(model: str, members: int, cycles: int, out: Path, top: int = 25) -> None:
    """Run serially under cProfile; print fdassim's ``top`` functions by cumulative time
    (the model's, the forecast, left out)."""
    import cProfile
    import pstats

    import firedrake  # noqa: F401  (imports are not the run's)
    import gstools  # noqa: F401
    import icepack  # noqa: F401

    prof = cProfile.Profile()
    prof.enable()
    run_one(model, members, cycles, str(out / "profile.h5"))
    prof.disable()
    (out / "profile.h5").unlink(missing_ok=True)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(r"fdassim/(?!models/)", top)


def provenance_lookup() -> str:
    """The store's provenance (:func:`fdassim.io.versions`), the slowest of fdassim's own
    steps the profile found, against its former way (every installed distribution read)."""
    import importlib.metadata as md
    import time

    from fdassim.io import versions

    def every():
        return {d.metadata["Name"].lower(): d.version for d in md.distributions()}

    def best(f):  # the fastest of 3 calls: both ways timed with the file cache warm
        times = []
        for _ in range(3):
            tic = time.perf_counter()
            f()
            times.append(time.perf_counter() - tic)
        return min(times)

    before, after = min(best(every), best(every)), min(best(versions), best(versions))
    assert all(every()[name] == v for name, v in versions().items())
    return f"provenance lookup: {before:.3f} s reading every distribution -> {after:.3f} s by name ({before / after:.1f}x)"


def _former_draw(model, fields: dict, rng) -> None:
    """``IceStream``'s initial draw as it was before the node positions were kept: the
    positions interpolated afresh twice per member (the baseline of :func:`initial_draws`)."""
    import firedrake

    def nodes(f):
        mesh = f.function_space().mesh()
        V = firedrake.VectorFunctionSpace(mesh, f.function_space().ufl_element())
        return firedrake.Function(V).interpolate(firedrake.SpatialCoordinate(mesh)).dat.data_ro

    h, u, a = fields["thickness"], fields["velocity"], fields["accumulation"]
    x, q = nodes(h)[:, 0], model.Lx / 4
    h.dat.data[:] -= model.bump * np.clip(1 - np.abs(x - q) / q, 0, None)
    a.dat.data[:] = model.prior_accumulation[0] + model.prior_accumulation[1] * x / model.Lx
    xy = nodes(h)
    dh, du, dv, da = model._perturbations
    h.dat.data[:] += dh.sample(xy, rng)
    u.dat.data[:, 0] += du.sample(xy, rng)
    u.dat.data[:, 1] += dv.sample(xy, rng)
    a.dat.data[:] += da.sample(xy, rng)


def initial_draws(repeats: int = 8) -> str:
    """A member's initial draw of the ice-stream twin (the model's set-up's largest per-member
    step), now and as it was (:func:`_former_draw`), alternated in one process; checks that
    both give the same fields bitwise."""
    import time

    import firedrake
    import gstools  # noqa: F401  (imported once, before either is timed)

    from fdassim.models.icestream import IceStream

    model = IceStream()
    member = model.member(model.domain(firedrake.COMM_SELF), 0)

    def draw(how, seed):
        tic = time.perf_counter()
        member._draw(how, np.random.default_rng(seed))
        return time.perf_counter() - tic, {k: f.dat.data_ro.copy() for k, f in member.state.items()}

    def former(fields, rng):
        _former_draw(model, fields, rng)

    draw(model._draw, 0)  # compiles the interpolation kernels for both
    ratios, now, then = [], [], []
    for seed in range(repeats):
        t_new, new = draw(model._draw, seed)
        t_old, old = draw(former, seed)
        if not all(np.array_equal(new[k], old[k]) for k in new):
            raise AssertionError(f"seed {seed}: the initial draw differs from the former one")
        ratios.append(t_old / t_new)
        now.append(t_new)
        then.append(t_old)
    return (f"initial draw per member: {np.median(then):.3f} s before -> {np.median(now):.3f} s now "
            f"(median ratio {np.median(ratios):.2f}x over {repeats} alternated pairs; same fields bitwise)")


def field_draws(sizes=(425, 20_000), repeats: int = 3) -> str:
    """One draw of a gstools field (:class:`~fdassim.perturbations.RandomField`, 1000 modes
    summed at every position) against one of Evensen's FFT field
    (:class:`~fdassim.perturbations.PseudoRandomField`) at ``n`` positions in the twin's
    domain, same length and standard deviation, alternated in one process."""
    import time

    import gstools  # noqa: F401  (imported before either is timed)

    from fdassim.perturbations import PseudoRandomField, RandomField

    lower, upper = np.zeros(2), np.array([5e3, 1.2e3])
    gs_field, fft_field = RandomField(std=0.8, length=96.0), PseudoRandomField(std=0.8, length=96.0)
    out = []
    for n in sizes:
        xy = np.random.default_rng(0).uniform(lower, upper, size=(n, 2))
        rng = np.random.default_rng(1)
        times = {"gstools": [], "evensen": []}
        for _ in range(repeats + 1):  # the first of each is not counted (set-up)
            for name, draw in (("gstools", lambda: gs_field.sample(xy, rng)),
                               ("evensen", lambda: fft_field.sample(xy, rng, lower, upper))):
                tic = time.perf_counter()
                draw()
                times[name].append(time.perf_counter() - tic)
        g, e = (min(times[k][1:]) for k in ("gstools", "evensen"))
        out.append(f"{n} positions: gstools {g:.3f} s, evensen {e:.3f} s ({g / e:.1f}x)")
    return "a random-field draw at " + "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="stream")
    p.add_argument("--members", type=int, default=16)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", type=Path, default=Path("results/overhead"))
    p.add_argument("--profile", action="store_true", help="also profile a serial run")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    launch(a.model, 1, 2, 1, a.out)  # compiles the kernels, so no timed run pays for it
    head = ("| ranks | members | cycles | forecast (s) | init: model (s) | init: store (s) | analysis (s) | I/O (s) "
            "| overhead | fdassim's own | per cycle | imports, untimed (s) | overhead with imports |")
    lines = [head, "|" + "---|" * 13]
    for P in a.ranks:
        r = launch(a.model, P, a.members, a.cycles, a.out)
        whole, own, per_cycle = fractions(r)
        lines.append(f"| {P} | {a.members} | {a.cycles} | {r['forecast']:.2f} | {r['init_model']:.2f} | "
                     f"{r['init_store']:.2f} | {r['analysis']:.2f} | {r['io']:.2f} | {100 * whole:.1f} % | "
                     f"{100 * own:.1f} % | {100 * per_cycle:.1f} % | {r['imports']:.2f} | "
                     f"{100 * with_imports(r):.1f} % |")
    print("\n".join(lines))
    print(provenance_lookup())
    if a.model == "stream":
        print(initial_draws())
        print(field_draws())
    if a.profile:
        profile(a.model, a.members, a.cycles, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
