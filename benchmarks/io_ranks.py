"""Does a run on 2 ranks lose time to I/O? Lorenz-96 on 1 and 2 ranks, with the store committed
every cycle (the small parallel writes and file syncs of the first version) and with buffered
commits (the default: cycles written together at most every `output.commit_seconds`).

Each configuration runs ``--repeat`` times, interleaved so that a drift of the machine's speed
touches all alike. Times are read from the store (``/timing/cycle``: forecast, analysis, io per
cycle), so the start-up of Python and Firedrake is not counted. Printed: the median seconds of
the cycle loop and of its I/O, and the ratios 2 ranks / 1 rank.

    python benchmarks/io_ranks.py [--cycles 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import yaml

PARAMS = {
    "model": {"name": "lorenz96", "options": {"n": 40, "F": 8.0, "dt": 0.05}},
    "ensemble": {"size": 20},
    "observations": {"field": "x", "every": 1, "std": 1.0},
    "filter": {"scheme": "etkf"},
    "inflation": [{"multiplicative": {"lam": 1.02}}],
    "run": {"interval": 0.05, "seed": 3, "progress": False},
}
MODES = {"every cycle": 0.0, "buffered": 1.0}  # output.commit_seconds


def run_once(folder: str, cycles: int, ranks: int, commit_seconds: float) -> tuple[float, float]:
    """(seconds in the cycle loop, seconds of it in I/O) of one run."""
    import h5py

    path = os.path.join(folder, f"r{ranks}-{commit_seconds}.h5")
    params = dict(PARAMS, run=dict(PARAMS["run"], cycles=cycles),
                  output={"path": path, "commit_seconds": commit_seconds})
    cfg = path.replace(".h5", ".yaml")
    with open(cfg, "w") as fh:
        yaml.safe_dump(params, fh)
    cmd = [sys.executable, "-m", "fdassim.cli", "run", cfg, "--overwrite"]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1",
                                                                    OPENBLAS_NUM_THREADS="1"))
    with h5py.File(path, "r") as h5:
        t = h5["timing/cycle"][...]
    return float(np.sum(t)), float(np.sum(t[:, 2]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(a.repeat):
            for mode, commit in MODES.items():
                for ranks in (1, 2):
                    results.setdefault((mode, ranks), []).append(run_once(folder, a.cycles, ranks, commit))
    med = {key: np.median(np.array(v), axis=0) for key, v in results.items()}
    print(f"Lorenz-96, n = 40, N = 20, ETKF, {a.cycles} cycles; medians of {a.repeat} runs (seconds)")
    print(f"{'commits':12s} {'ranks':>5s} {'loop':>8s} {'io':>8s} {'io share':>9s}")
    for (mode, ranks), (loop, io) in med.items():
        print(f"{mode:12s} {ranks:5d} {loop:8.2f} {io:8.2f} {100 * io / loop:8.0f}%")
    print("ratios 2 ranks / 1 rank:")
    for mode in MODES:
        (l1, i1), (l2, i2) = med[(mode, 1)], med[(mode, 2)]
        print(f"  {mode:12s} loop {l2 / l1:.2f}, io {i2 / i1:.2f}")
    (lo, io_old), (ln, io_new) = med[("every cycle", 2)], med[("buffered", 2)]
    print(f"on 2 ranks, buffered / every cycle: loop {ln / lo:.2f}, io {io_new / io_old:.3f}")


if __name__ == "__main__":
    main()
