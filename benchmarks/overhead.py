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
  long run tends to).

All are ratios of times measured in the same run. ``--profile`` also runs the experiment
serially under cProfile and prints the functions where the non-forecast time goes.

Usage::

    python benchmarks/overhead.py                           # N = 16, 10 cycles, 1 and 2 ranks
    python benchmarks/overhead.py --members 32 --cycles 20 --ranks 2 --profile
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling import MODELS, PARTS, launch, machine, run_one


def fractions(r: dict) -> tuple[float, float, float]:
    """(everything but the forecast, fdassim's own plumbing, overhead per cycle), each a
    fraction of one run's timings."""
    total = sum(r[p] for p in PARTS)
    cycles = r["forecast"] + r["analysis"] + r["io"]
    own = r["analysis"] + r["io"] + r["init_store"]
    return 1 - r["forecast"] / total, own / total, (r["analysis"] + r["io"]) / cycles


def profile(model: str, members: int, cycles: int, out: Path, top: int = 25) -> None:
    """Run serially under cProfile; print fdassim's ``top`` functions by cumulative time
    (the model's, the forecast, left out)."""
    import cProfile
    import pstats

    import firedrake  # noqa: F401  (imports are not the run's)
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
            "| overhead | fdassim's own | per cycle |")
    lines = [head, "|" + "---|" * 11]
    for P in a.ranks:
        r = launch(a.model, P, a.members, a.cycles, a.out)
        whole, own, per_cycle = fractions(r)
        lines.append(f"| {P} | {a.members} | {a.cycles} | {r['forecast']:.2f} | {r['init_model']:.2f} | "
                     f"{r['init_store']:.2f} | {r['analysis']:.2f} | {r['io']:.2f} | {100 * whole:.1f} % | "
                     f"{100 * own:.1f} % | {100 * per_cycle:.1f} % |")
    print("\n".join(lines))
    print(provenance_lookup())
    if a.profile:
        profile(a.model, a.members, a.cycles, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
