"""Analysis throughput at ice-sheet size: every scheme against one GEMM and a gather-on-root EnKF.

The problem: ``n`` state values on a square grid of unit spacing (default 1000 x 1000 =
1e6), ``N`` members (64), ``m`` observations on a coarser square grid (100 x 100 = 1e4,
spacing 10) with unit error variance, and a Gaspari-Cohn half-width ``c`` chosen so that
about 100 observations lie inside the taper's support (``pi (2 c)^2 = 100 x 100``: c = 28.2).
Each rank holds a contiguous block of rows with all members (the layout of the cycle after
its transpose), draws it from a generator per tile of rows (so the ensemble does not depend
on the number of ranks), and runs ``scheme.prepare`` then ``update.apply`` on its block.

For each scheme and number of ranks the script reports the wall time (the slowest rank's,
between barriers), its ratio to two baselines measured in the same run on the same blocks,

- (a) one bare numpy GEMM of the rank's rows, ``X @ W`` with ``X`` (rows x N) and ``W``
  (N x N), the least any transform can cost, timed in the same process right after the
  scheme (so both see the same machine load);
- (b) ``gather``: what ICESEE does, gather the whole ensemble on rank 0, compute an ETKF
  there with numpy and scatter the result back;

the peak memory per rank (resident set growth from before the ensemble was allocated, so the
rank's share of the ensemble is included) as a multiple of that share, and the speed-up of 2
ranks over 1. Each (scheme, ranks) runs in a fresh process (``mpiexec -n P python
analysis_throughput.py --worker ...``) so its peak memory is its own.

Usage::

    python benchmarks/analysis_throughput.py                      # the full size, 1 and 2 ranks
    python benchmarks/analysis_throughput.py --n 40000 --m 400   # a quick look

BLAS runs on one thread per rank (``OPENBLAS_NUM_THREADS=1`` unless set), so 2 ranks use the
2 cores. Nothing is written but the optional ``--json`` file.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve()
TILE = 4096  # rows drawn per generator: the ensemble does not depend on the number of ranks
SCHEMES = ("gather", "etkf", "enkf", "denkf", "ensrf", "enkf_n", "letkf", "letkf_n", "lenkf", "eakf")
LOCAL = ("letkf", "letkf_n", "lenkf", "eakf")


def make_scheme(name: str, c: float, cell: float):
    """The fdassim scheme benchmarked under ``name``."""
    from fdassim.analysis import (DEnKF, EnKF, EnKFN, EnSRF, ETKF, FiniteSize, LETKF, Localization,
                                  LocalizedEnKF, RegressionFilter)

    loc = Localization(c)
    return {"etkf": ETKF, "enkf": EnKF, "denkf": DEnKF, "ensrf": EnSRF, "enkf_n": EnKFN,
            "letkf": lambda: LETKF(loc, cell=cell),
            "letkf_n": lambda: LETKF(loc, cell=cell, finite_size=FiniteSize()),
            "lenkf": lambda: LocalizedEnKF(loc),
            "eakf": lambda: RegressionFilter(localization=loc)}[name]()


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(args) -> None:
    """One (scheme, ranks) measurement; rank 0 prints a JSON line."""
    from mpi4py import MPI

    from fdassim.analysis import AnalysisContext, ObsError, Rows
    from fdassim.analysis.etkf import etkf_transform

    comm = MPI.COMM_WORLD
    P, rank = comm.size, comm.rank
    side, mside = math.isqrt(args.n), math.isqrt(args.m)
    n, m, N = side * side, mside * mside, args.N
    lo, hi = rank * n // P, (rank + 1) * n // P
    base = peak_rss()
    X = np.empty((hi - lo, N))
    for t0 in range(lo - lo % TILE, hi, TILE):  # tile t's rows come from generator (seed, t)
        block = np.random.default_rng([args.seed, t0 // TILE]).standard_normal((TILE, N))
        a, b = max(t0, lo), min(t0 + TILE, hi)
        X[a - lo:b - lo] = block[a - t0:b - t0]
    idx = np.arange(lo, hi)
    coords = np.stack([idx // side, idx % side], axis=1).astype(float)
    spacing = side / mside
    g = (np.arange(mside) + 0.5) * spacing
    obs_coords = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    obs_rows = (np.floor(obs_coords[:, 0]) * side + np.floor(obs_coords[:, 1])).astype(np.int64)
    mine = (obs_rows >= lo) & (obs_rows < hi)
    Y = np.empty((m, N))
    for part_idx, part in comm.allgather((np.flatnonzero(mine), X[obs_rows[mine] - lo])):
        Y[part_idx] = part
    y = Y.mean(axis=1) + np.random.default_rng(args.seed + 1).standard_normal(m)
    R = ObsError.diagonal(np.ones(m))
    ctx = AnalysisContext(seed=args.seed, cycle=0, obs_coords=obs_coords, periodic=(None, None))
    rows = Rows(start=lo, total=n, coords=coords)
    share = X.nbytes

    comm.Barrier()
    t = time.perf_counter()
    if args.scheme == "gather":
        counts = comm.allgather(X.size)
        full = np.empty((n, N)) if rank == 0 else None
        comm.Gatherv(X, [full, counts] if rank == 0 else None, root=0)
        if rank == 0:
            Ybar = Y.mean(axis=1)
            full = full @ etkf_transform(Y - Ybar[:, None], y - Ybar, R)
        Xa = np.empty_like(X)
        comm.Scatterv([full, counts] if rank == 0 else None, Xa, root=0)
    else:
        scheme = make_scheme(args.scheme, args.radius, args.cell)
        Xa = scheme.prepare(Y, y, R, ctx).apply(X, rows)
    seconds = _slowest(comm, time.perf_counter() - t)
    if not np.all(np.isfinite(Xa)):
        raise SystemExit(f"{args.scheme}: non-finite analysis")
    memory = comm.gather((peak_rss() - base) / share)
    del Xa
    # (a) one bare numpy GEMM of this rank's rows, timed in the same process right after
    W = np.random.default_rng(args.seed + 2).standard_normal((N, N)) / N
    comm.Barrier()
    t = time.perf_counter()
    G = X @ W
    gemm = _slowest(comm, time.perf_counter() - t)
    del G
    if rank == 0:
        print(json.dumps({"scheme": args.scheme, "ranks": P, "seconds": seconds, "gemm": gemm,
                          "memory": max(memory), "share_mb": share / 1e6}), flush=True)


def _slowest(comm, elapsed: float) -> float:
    """The slowest rank's time (every rank waits at a barrier first)."""
    from mpi4py import MPI

    comm.Barrier()
    return comm.allreduce(elapsed, op=MPI.MAX)


def run(args, scheme: str, ranks: int) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", "--scheme", scheme, "--n", str(args.n), "--m", str(args.m),
           "--N", str(args.N), "--radius", str(args.radius), "--cell", str(args.cell), "--seed", str(args.seed)]
    if ranks > 1 or shutil.which("mpiexec") and args.mpiexec_always:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="state values (a square number; default 1e6)")
    p.add_argument("--m", type=int, default=10_000, help="observations (a square number; default 1e4)")
    p.add_argument("--N", type=int, default=64, help="members (default 64)")
    p.add_argument("--local-obs", type=float, default=100.0,
                   help="observations inside the taper's support (sets the radius; default 100)")
    p.add_argument("--cell", type=float, default=None, help="LETKF cell width (default: the observation spacing)")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, help="also write the measurements to this file")
    p.add_argument("--mpiexec-always", action="store_true", help="launch 1 rank through mpiexec too")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--scheme", help=argparse.SUPPRESS)
    p.add_argument("--radius", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    side, mside = math.isqrt(args.n), math.isqrt(args.m)
    spacing = side / mside
    args.radius = 0.5 * spacing * math.sqrt(args.local_obs / math.pi)  # pi (2c)^2 / spacing^2 = local obs
    args.cell = spacing if args.cell is None else args.cell
    print(f"n = {side}^2 = {side * side}, N = {args.N}, m = {mside}^2 = {mside * mside} (spacing {spacing:g}), "
          f"half-width c = {args.radius:.2f} (~{args.local_obs:g} observations within 2c), LETKF cell "
          f"{args.cell:g}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}", file=sys.stderr)
    results = {}
    for ranks in args.ranks:
        for scheme in args.schemes:
            r = run(args, scheme, ranks)
            results[scheme, ranks] = r
            print(f"  {scheme} on {ranks} rank(s): {r['seconds']:.3f} s (GEMM {r['gemm']:.3f} s), peak memory "
                  f"{r['memory']:.2f} x share", file=sys.stderr, flush=True)
    print("\n| scheme | ranks | time (s) | / GEMM | / gather-on-root | peak memory / share | 1 rank / 2 ranks |")
    print("|---|---|---|---|---|---|---|")
    for (scheme, ranks), r in results.items():
        gather = results.get(("gather", ranks))
        one, two = results.get((scheme, 1)), results.get((scheme, 2))
        speed = f"{one['seconds'] / two['seconds']:.2f}" if one and two and ranks == 2 else ""
        vs_gather = f"{r['seconds'] / gather['seconds']:.2f}" if gather else "-"
        print(f"| {scheme} | {ranks} | {r['seconds']:.2f} | {r['seconds'] / r['gemm']:.1f} | {vs_gather} | "
              f"{r['memory']:.2f} | {speed} |")
    if args.json:
        args.json.write_text(json.dumps([{**v} for v in results.values()], indent=1))


if __name__ == "__main__":
    main()
