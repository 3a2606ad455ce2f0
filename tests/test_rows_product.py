"""Tests of fdassim.rows_product: a transform applied by PETSc dense matrices, and the product choice."""

import numpy as np
import pytest

from fdassim.analysis import AnalysisContext, ObsError, Rows
from fdassim.analysis.etkf import ETKF
from fdassim.analysis.lenkf import LocalizedEnKF
from fdassim.analysis.localization import Localization
from fdassim.analysis.product import Product
from fdassim.rows_product import apply_update

pytest.importorskip("petsc4py", reason="petsc4py is not installed (make install)")
from mpi4py import MPI  # noqa: E402

n, N, m = 601, 16, 12


def problem():
    rng = np.random.default_rng(3)
    X = 100.0 + rng.standard_normal((n, N))
    obs = np.linspace(0, n - 1, m).astype(int)
    y = X[obs].mean(axis=1) + rng.standard_normal(m)
    return X, X[obs], y, ObsError.diagonal(np.ones(m)), obs


def test_apply_update_with_each_product_gives_the_transform():
    """TILED and ORDERED agree to round-off, PETSc too (on COMM_SELF): |X| |W| eps-relative, 1e-14."""
    X, Y, y, R, _ = problem()
    update = ETKF().prepare(Y, y, R, AnalysisContext())
    results = {p: apply_update(update, X, Rows.whole(n), p) for p in Product}
    bound = 1e-14 * (np.abs(X) @ np.abs(update.W))
    for p in (Product.ORDERED, Product.PETSC):
        np.testing.assert_array_less(np.abs(results[p] - results[Product.TILED]), bound, err_msg=p.name)
    np.testing.assert_array_equal(results[Product.TILED], update.apply(X, Rows.whole(n)))


def test_apply_update_leaves_row_local_updates_alone():
    X, Y, y, R, obs = problem()
    rows = Rows.whole(n, coords=np.arange(n, dtype=float))
    update = LocalizedEnKF(Localization(50.0)).prepare(Y, y, R, AnalysisContext(obs_coords=obs.astype(float)))
    np.testing.assert_array_equal(apply_update(update, X, rows, Product.PETSC), update.apply(X, rows))


@pytest.mark.parallel(nprocs=2)
def test_petsc_product_on_uneven_row_blocks_matches_numpy():
    """Rows 0:250 on rank 0 and 250:601 on rank 1 (uneven), one MPIDense matrix on COMM_WORLD:
    each block's product equals the serial numpy one to round-off (1e-14 |X| |W|)."""
    comm = MPI.COMM_WORLD
    X, Y, y, R, _ = problem()
    update = ETKF().prepare(Y, y, R, AnalysisContext())
    lo, hi = (0, 250) if comm.rank == 0 else (250, n)
    mine = apply_update(update, X[lo:hi], Rows(lo, n), Product.PETSC, comm)
    serial = update.apply(X, Rows.whole(n))[lo:hi]
    np.testing.assert_array_less(np.abs(mine - serial), 1e-14 * (np.abs(X[lo:hi]) @ np.abs(update.W)))
