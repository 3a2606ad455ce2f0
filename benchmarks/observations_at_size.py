"""Observation operators and quality control at size: time and peak memory against baselines.

On a Firedrake mesh carrying about ``n = 1e6`` state values (a scalar Q1 field on a
``k x k`` quadrilateral mesh), this builds and applies fdassim's observation operators for
``m = 1e4`` and ``1e5`` observations, and runs the outlier check on an ``(m, N)`` ensemble
of predicted observations:

- ``PointValues`` at ``m`` scattered points (a ``VertexOnlyMesh`` and its interpolation
  matrix; applying it is a sparse product, a gather and a reordering);
- ``PointValues`` along flight lines (``flight_lines``: survey lines across the domain);
- ``NodalValues`` at every ``k``-th node in position order (a sort of the node positions);
- quality control (:func:`fdassim.observations.qc.outliers`) of ``N`` members.

Each time is printed as a ratio against a baseline of the same size measured in the same
run: building against a ``scipy.spatial.cKDTree`` built on the node positions and queried
at the same points (the cheapest way to find where ``m`` points fall among ``n`` nodes);
applying against a ``scipy.sparse`` CSR product with the same number of rows and columns
and 4 entries a row (a bilinear interpolation); the check against computing the ensemble
mean of the ``(m, N)`` array. Peak memory is the rise of the process's resident set during
the step (Linux's high-water mark, reset before each step, freed memory handed back to the
system first), as a multiple of the ensemble's
share ``n N`` doubles: no step may hold a dense ``n x m`` array (80 GB at ``m = 1e4``).

Usage::

    python benchmarks/observations_at_size.py                  # n ~ 1e6, m = 1e4 and 1e5, N = 20
    python benchmarks/observations_at_size.py --cells 300 --m 1000 10000   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import numpy as np


def _status(key: str) -> int:
    """A ``/proc/self/status`` size (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} is not in /proc/self/status")


def measure(step: Callable[[], object]) -> tuple[float, int, object]:
    """``(seconds, peak rise of the resident set in bytes, result)`` of ``step()``.

    Freed memory is handed back to the system first (glibc's ``malloc_trim``), so that a
    step reusing it still shows as a rise.
    """
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark (Linux >= 4.0)
        fh.write("5")
    before = _status("VmRSS")
    tic = time.perf_counter()
    out = step()
    seconds = time.perf_counter() - tic
    return seconds, max(_status("VmHWM") - before, 0), out


def best(step: Callable[[], object], repeats: int = 5) -> float:
    """The fastest of ``repeats`` calls (seconds)."""
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        step()
        times.append(time.perf_counter() - tic)
    return min(times)


def bilinear_csr(m: int, n: int, rng: np.random.Generator):
    """An ``(m, n)`` CSR matrix with 4 entries a row (the baseline of applying an operator)."""
    import scipy.sparse as sp

    cols = rng.integers(0, n, size=(m, 4))
    return sp.csr_matrix((np.full(4 * m, 0.25), cols.reshape(-1), np.arange(0, 4 * m + 1, 4)), shape=(m, n))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=999, help="k: a k x k quadrilateral mesh, (k + 1)^2 Q1 values")
    p.add_argument("--m", type=int, nargs="+", default=[10_000, 100_000], help="observation counts")
    p.add_argument("--members", type=int, default=20, help="N, for the quality control and the ensemble's share")
    a = p.parse_args(argv)

    import firedrake
    from scipy.spatial import cKDTree

    from fdassim.observations import NodalValues, PointValues, flight_lines
    from fdassim.observations.onmesh import node_coordinates
    from fdassim.observations.qc import outliers

    L = 100e3
    mesh = firedrake.RectangleMesh(a.cells, a.cells, L, L, quadrilateral=True)
    V = firedrake.FunctionSpace(mesh, "CG", 1)
    x, y = firedrake.SpatialCoordinate(mesh)
    state = {"thickness": firedrake.Function(V).interpolate(1000 + 0.01 * x - 0.005 * y)}
    nodes = node_coordinates(V)
    n, N = nodes.shape[0], a.members
    share = n * N * 8  # the ensemble's n x N doubles on this rank
    rng = np.random.default_rng(0)
    print(f"n = {n} state values (Q1 on {a.cells} x {a.cells} quadrilaterals), N = {N}: the ensemble's "
          f"share {share / 1e6:.0f} MB; a dense n x m array would be {n * 8e3 / 1e9:.0f} GB per 1000 observations")
    PointValues("thickness", np.array([[0.5 * L, 0.5 * L]]))(state)  # compiles its kernels: no row pays for it
    print("| operator | m | build (s) | build / cKDTree | apply (s) | apply / CSR product | peak (MB) | "
          "peak / ensemble share | exact |")
    print("|" + "---|" * 9)
    for m in a.m:
        points = rng.uniform(0.001 * L, 0.999 * L, size=(m, 2))
        step = L / np.sqrt(m) * 1.0  # flight lines: about m points on sqrt(m) lines
        lines = flight_lines([0, 0], [L, L], spacing=step, step=step)
        every = max(1, n // m)
        kd_build = best(lambda: cKDTree(nodes).query(points, k=4), repeats=3)
        csr = bilinear_csr(m, n, rng)
        v = rng.standard_normal(n)
        csr_apply = best(lambda: csr @ v)
        for name, op, where in (("PointValues, scattered", PointValues("thickness", points), points),
                                ("PointValues, flight lines", PointValues("thickness", lines), lines),
                                (f"NodalValues, every {every}", NodalValues("thickness", every=every), None)):
            t_build, peak, values = measure(lambda: op(state))  # the first call builds the operator
            t_apply = best(lambda: op(state))
            sites = where if where is not None else op.site_positions(state)
            truth = 1000 + 0.01 * sites[:, 0] - 0.005 * sites[:, 1]  # Q1 reproduces a bilinear field
            exact = np.allclose(values, truth, rtol=1e-12, atol=0)
            print(f"| {name} | {values.size} | {t_build:.3f} | {t_build / kd_build:.1f} | {t_apply * 1e3:.2f} ms | "
                  f"{t_apply / csr_apply:.1f} | {peak / 1e6:.1f} | {peak / share:.3f} | {exact} |")
        Y = rng.standard_normal((m, N))
        yo = rng.standard_normal(m)
        r = np.full(m, 0.5)
        mean = best(lambda: Y.mean(axis=1))
        t_qc, peak, rejected = measure(lambda: outliers(Y, yo, r, 3.0))
        t_qc = min(t_qc, best(lambda: outliers(Y, yo, r, 3.0)))
        print(f"| quality control (outliers, N = {N}) | {m} | - | - | {t_qc * 1e3:.2f} ms | "
              f"{t_qc / mean:.1f} (ensemble mean) | {peak / 1e6:.1f} | {peak / share:.3f} | "
              f"{int(rejected.sum())} rejected |")
    print(f"baselines: cKDTree on the {n} nodes queried at the m points (4 nearest); CSR (m x n, 4 per row) "
          "times a vector; the ensemble mean of (m, N)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
