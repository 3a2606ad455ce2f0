"""The localized schemes on 2 and 3 ranks, rows split unevenly: bitwise the serial analysis.

Every rank prepares the same update (identical observation-space inputs) and applies it to
its own block of rows; the blocks gathered in rank order must equal, bit for bit, the
analysis of all rows on one process. The blocks are uneven (about 30 % / 70 % on 2 ranks,
20 / 35 / 45 % on 3) and cut cells and observation neighbourhoods anywhere.
"""

import numpy as np
import pytest

mpi4py = pytest.importorskip("mpi4py", reason="mpi4py is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.analysis import AnalysisContext, ObsError, Rows  # noqa: E402
from fdassim.analysis.lenkf import LocalizedEnKF  # noqa: E402
from fdassim.analysis.letkf import LETKF, FiniteSize  # noqa: E402
from fdassim.analysis.localization import Localization, distances  # noqa: E402
from fdassim.analysis.regression import RegressionFilter  # noqa: E402

SCHEMES = {
    "letkf": LETKF(Localization(1.2)),
    "letkf-cells": LETKF(Localization(1.2), cell=0.9, tile=64),
    "letkf-n": LETKF(Localization(1.2), cell=0.9, finite_size=FiniteSize()),
    "lenkf": LocalizedEnKF(Localization(1.0), tile=37),
    "eakf": RegressionFilter(localization=Localization(1.0), tile=37),
}
CUTS = {2: [0.3], 3: [0.2, 0.55]}


def plane_problem(n=500, m=90, N=7, seed=11):
    """Rows and observations scattered on a 10 x 6 plane, periodic in x."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 1, (n, 2)) * [10.0, 6.0]
    oc = rng.uniform(0, 1, (m, 2)) * [10.0, 6.0]
    X = 3.0 + rng.standard_normal((n, N))
    near = np.argmin(distances(oc, coords, (10.0, None)), axis=1)
    Y = X[near] + 0.1 * rng.standard_normal((m, N))
    y = rng.standard_normal(m) + 3.0
    return X, Y, y, ObsError.diagonal(rng.uniform(0.5, 1.0, m)), coords, AnalysisContext(
        seed=3, obs_coords=oc, periodic=(10.0, None))


@pytest.mark.parallel(nprocs=[2, 3])
@pytest.mark.parametrize("name", SCHEMES)
def test_local_schemes_on_ranks_equal_serial_bitwise(name):
    comm = MPI.COMM_WORLD
    X, Y, y, R, coords, ctx = plane_problem()
    n = X.shape[0]
    up = SCHEMES[name].prepare(Y, y, R, ctx)
    rows = Rows.whole(n, coords=coords)
    edges = [0, *(int(f * n) for f in CUTS[comm.size]), n]
    lo, hi = edges[comm.rank], edges[comm.rank + 1]
    parts = comm.allgather(up.apply(X[lo:hi], rows.block(lo, hi)))
    serial = up.apply(X, rows)
    np.testing.assert_array_equal(np.vstack(parts), serial)
    assert np.abs(serial - X).max() > 0.1
