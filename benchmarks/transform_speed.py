"""Global transform schemes against one bare GEMM of the same shape (one process, one thread).

For each transform scheme (ETKF, stochastic EnKF, DEnKF, EnKF-N, serial EnSRF) the time of
``scheme.prepare(Y, y, R, context).apply(X, rows)`` on ``n`` state rows, ``N`` members and
``m`` observations with a diagonal R, divided by the time of one numpy matrix product
``X @ W`` of shape ``(n x N)(N x N)`` measured in the same run (best of ``--repeat``). Each
scheme is timed with the tiled BLAS product (the default, bitwise split-invariant) and with
the BLAS-free ``ORDERED`` product (the former ``combine``); ``prepare`` alone is reported too.
Peak memory: the largest resident-set growth during ``apply`` relative to the ensemble
(``tracemalloc`` of numpy allocations).

A second table times the product alone, :math:`X W` on each rank's ``n / P`` rows, formed
by one bare GEMM, by the tiled product, by the ordered product and by PETSc dense matrices on
``COMM_WORLD`` (:func:`fdassim.rows_product.petsc_rows_product`); run it on ``P`` ranks with
``mpiexec`` (only that table is printed when ``P > 1``).

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/transform_speed.py
    mpiexec -n 2 python benchmarks/transform_speed.py            # the product on 2 ranks
    python benchmarks/transform_speed.py --n 20000 --repeat 3     # a quick look
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from fdassim.analysis import AnalysisContext, ObsError, Rows  # noqa: E402
from fdassim.analysis.denkf import DEnKF  # noqa: E402
from fdassim.analysis.enkf import EnKF  # noqa: E402
from fdassim.analysis.enkf_n import EnKFN  # noqa: E402
from fdassim.analysis.ensrf import EnSRF  # noqa: E402
from fdassim.analysis.etkf import ETKF  # noqa: E402
from fdassim.analysis.product import Product, ordered_product, tiled_product  # noqa: E402
from fdassim.rows_product import apply_update, petsc_rows_product  # noqa: E402


def best_of(f, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_ratio(f, nbytes: int) -> float:
    """Largest numpy allocation total during ``f()``, relative to ``nbytes``."""
    tracemalloc.start()
    f()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / nbytes


def products(comm, X, W, repeat: int) -> None:
    """Time X W on this rank's n / P rows four ways (ranks synchronised around each call)."""
    n = X.shape[0]
    lo, hi = n * comm.rank // comm.size, n * (comm.rank + 1) // comm.size
    Xb = np.ascontiguousarray(X[lo:hi])

    def timed(f):
        def run():
            comm.Barrier()
            f()
            comm.Barrier()
        return best_of(run, repeat)

    gemm = timed(lambda: Xb @ W)
    times = {"tiled (numpy, bitwise)": timed(lambda: tiled_product(Xb, W, lo)),
             "ordered (numpy, bitwise, no BLAS)": timed(lambda: ordered_product(Xb, W)),
             "PETSc MATMPIDENSE MatMatMult": timed(lambda: petsc_rows_product(Xb, W, comm))}
    if comm.rank == 0:
        print(f"X W on {hi - lo} rows per rank, {comm.size} rank(s): one bare GEMM per rank {gemm * 1e3:.1f} ms\n")
        print("| product | time (ms) | / bare GEMM |\n|---|---|---|")
        for name, t in times.items():
            print(f"| {name} | {t * 1e3:.1f} | {t / gemm:.2f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="state rows")
    parser.add_argument("--N", type=int, default=64, help="members")
    parser.add_argument("--m", type=int, default=2000, help="observations (diagonal R)")
    parser.add_argument("--repeat", type=int, default=5, help="timings per case (the best is kept)")
    args = parser.parse_args(argv)
    n, N, m = args.n, args.N, args.m
    rng = np.random.default_rng(1)
    X = 10.0 + rng.standard_normal((n, N))
    obs = np.linspace(0, n - 1, m).astype(int)
    Y = X[obs]
    y = Y.mean(axis=1) + rng.standard_normal(m)
    R = ObsError.diagonal(np.ones(m))
    rows, ctx = Rows.whole(n), AnalysisContext(seed=1, cycle=0)
    W = np.eye(N) + 0.1 * rng.standard_normal((N, N))

    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        print(f"n = {n}, N = {N}, m = {m}, diagonal R, {comm.size} rank(s) of "
              f"{os.environ['OMP_NUM_THREADS']} thread(s); numpy {np.__version__}\n")
    products(comm, X, W, args.repeat)
    if comm.size > 1:
        return
    gemm = best_of(lambda: X @ W, args.repeat)
    print(f"\none GEMM (n x N)(N x N): {gemm * 1e3:.1f} ms\n")
    print("| scheme | prepare (ms) | prepare + apply, tiled (ms) | / GEMM | ordered, no BLAS (ms) | / GEMM "
          "| peak memory of apply / ensemble |")
    print("|---|---|---|---|---|---|---|")
    for name, scheme in (("ETKF", ETKF()), ("stochastic EnKF", EnKF()), ("DEnKF", DEnKF()),
                         ("EnKF-N", EnKFN()), ("serial EnSRF", EnSRF())):
        prep = best_of(lambda: scheme.prepare(Y, y, R, ctx), args.repeat)
        update = scheme.prepare(Y, y, R, ctx)
        tiled_t = prep + best_of(lambda: apply_update(update, X, rows, Product.TILED), args.repeat)
        ordered_t = prep + best_of(lambda: apply_update(update, X, rows, Product.ORDERED), args.repeat)
        mem = peak_ratio(lambda: update.apply(X, rows), X.nbytes)
        print(f"| {name} | {prep * 1e3:.1f} | {tiled_t * 1e3:.1f} | {tiled_t / gemm:.2f} | "
              f"{ordered_t * 1e3:.1f} | {ordered_t / gemm:.1f} | {mem:.2f} |")


if __name__ == "__main__":
    main()
