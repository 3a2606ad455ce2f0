"""Transform analyses on rows split unevenly over 2 and 3 ranks equal the serial ones, bit for bit.

Each rank prepares the update from the same observation-space inputs, applies it to its own
block of rows (an uneven split of n = 3 * 256 + 37 rows, cut inside tiles), and the
gathered blocks are compared with the whole state analysed on one rank. This is what the
parallel cycle does after its transpose (``Ensemble.rows``); here without Firedrake, so the
3-rank group stays cheap.
"""

import numpy as np
import pytest

from fdassim.analysis import AnalysisContext, ObsError
from fdassim.analysis.denkf import DEnKF
from fdassim.analysis.enkf import EnKF
from fdassim.analysis.enkf_n import EnKFN
from fdassim.analysis.ensrf import EnSRF
from fdassim.analysis.etkf import ETKF
from fdassim.analysis.product import TILE, Product, rows_product

MPI = pytest.importorskip("mpi4py.MPI", reason="mpi4py is not installed")

n, N, m = 3 * TILE + 37, 20, 30
CUTS = {2: [0, 301, n], 3: [0, 257, 700, n]}  # uneven, inside tiles, n not a multiple of the tile
SCHEMES = {"etkf": ETKF(), "enkf": EnKF(), "denkf": DEnKF(), "enkf_n": EnKFN(), "ensrf": EnSRF()}


def analyses(product):
    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(8)
    X = 5.0 + rng.standard_normal((n, N))  # every rank builds the same ensemble
    obs = np.linspace(0, n - 1, m).astype(int)
    Y, R = X[obs], ObsError.diagonal(np.full(m, 0.5))
    y = Y.mean(axis=1) + rng.standard_normal(m)
    lo, hi = CUTS[comm.size][comm.rank], CUTS[comm.size][comm.rank + 1]
    out = {}
    for name, scheme in SCHEMES.items():
        W = scheme.prepare(Y, y, R, AnalysisContext(seed=2, cycle=7)).W
        mine = rows_product(X[lo:hi], W, lo, product)
        out[name] = (np.vstack(comm.allgather(mine)), rows_product(X, W, 0, product))
    return out


@pytest.mark.parallel(nprocs=[2, 3])
@pytest.mark.parametrize("product", [Product.TILED, Product.ORDERED], ids=["tiled", "ordered"])
def test_transforms_on_uneven_row_splits_are_bitwise_serial(product):
    for name, (split, serial) in analyses(product).items():
        np.testing.assert_array_equal(split, serial, err_msg=f"{name} on {MPI.COMM_WORLD.size} ranks")
