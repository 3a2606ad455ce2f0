"""Tests of fdassim.analysis.product: X W by BLAS on global row tiles, bitwise split-invariant."""

import numpy as np
import pytest

from fdassim.analysis import Rows, TransformUpdate
from fdassim.analysis.product import TILE, Product, ordered_product, rows_product, tiled_product
from fdassim.errors import InputError

n, N = 3 * TILE + 37, 64  # n not a multiple of the tile


@pytest.fixture(scope="module")
def XW():
    rng = np.random.default_rng(0)
    return 1e3 + rng.standard_normal((n, N)), np.eye(N) + 0.3 * rng.standard_normal((N, N))


def split(total, cuts):
    bounds = [0, *cuts, total]
    return list(zip(bounds[:-1], bounds[1:]))


SPLITS = {
    "halves": [n // 2],  # 2 ranks, uneven: n odd
    "thirds": [n // 3, 2 * n // 3],  # 3 ranks
    "ragged": [1, TILE - 1, TILE, TILE + 5, 2 * TILE + 200, n - 1],  # cuts at and around tile edges
}


@pytest.mark.parametrize("cuts", SPLITS.values(), ids=SPLITS.keys())
@pytest.mark.parametrize("product", [Product.TILED, Product.ORDERED])
def test_product_rows_do_not_depend_on_their_block(XW, cuts, product):
    X, W = XW
    whole = rows_product(X, W, 0, product)
    blocks = np.vstack([rows_product(X[lo:hi], W, lo, product) for lo, hi in split(n, cuts)])
    np.testing.assert_array_equal(blocks, whole)


def test_tiled_product_equals_blas_to_round_off(XW):
    X, W = XW
    scale = np.abs(X) @ np.abs(W)  # bound of the round-off of each entry: ~N eps |X| |W|
    np.testing.assert_array_less(np.abs(tiled_product(X, W) - X @ W), 1e-14 * scale)
    np.testing.assert_array_less(np.abs(ordered_product(X, W) - X @ W), 1e-14 * scale)


def test_one_blas_call_per_block_is_not_split_invariant_here(XW):
    """Why the tiles: with this BLAS a row of X[a:b] @ W is not always bitwise the row of X @ W
    (the kernel depends on the call's shape). If this ever passes, the BLAS got more regular;
    the tiled product stays correct either way."""
    X, W = XW
    whole = X @ W
    differs = any(not np.array_equal(X[lo:hi] @ W, whole[lo:hi]) for lo, hi in split(n, [1, 3, 10, 17, 100, 333]))
    if not differs:
        pytest.skip("this BLAS gives every row the same bits whatever the call's shape")
    assert differs


def test_tiled_product_of_non_contiguous_rows_is_the_same(XW):
    """Rows viewed out of a wider array (the truth column beside the members) give the same bits."""
    X, W = XW
    wide = np.hstack([X, np.ones((n, 1))])
    np.testing.assert_array_equal(tiled_product(wide[:, :N], W, 5), tiled_product(X, W, 5))
    np.testing.assert_array_equal(tiled_product(np.asfortranarray(X), W, 5), tiled_product(X, W, 5))


def test_transform_update_applies_the_chosen_product(XW):
    X, W = XW
    rows = Rows(1000, 1000 + n)
    tiled = TransformUpdate(W).apply(X, rows)
    ordered = TransformUpdate(W, product=Product.ORDERED).apply(X, rows)
    np.testing.assert_array_less(np.abs(tiled - ordered), 1e-14 * (np.abs(X) @ np.abs(W)))
    np.testing.assert_array_equal(tiled, tiled_product(X, TransformUpdate(W).W, 1000))


def test_product_rejects_bad_input(XW):
    X, W = XW
    with pytest.raises(InputError, match=r"cannot multiply rows of shape \(10, 64\) by weights of shape \(5, 5\)"):
        tiled_product(X[:10], W[:5, :5])
    with pytest.raises(InputError, match="start must be a non-negative integer"):
        tiled_product(X, W, start=-1)
    with pytest.raises(InputError, match=r"product must be a fdassim.analysis.product.Product \(TILED, ORDERED, PETSC\)"):
        rows_product(X, W, 0, "tiled")
    with pytest.raises(InputError, match=r"product must be one of Product.TILED, Product.ORDERED, Product.PETSC, got .tiled."):
        TransformUpdate(W, product="tiled")
    with pytest.raises(InputError, match=r"Product.PETSC needs the ensemble communicator: apply the update with"):
        TransformUpdate(W, product=Product.PETSC).apply(X, Rows.whole(n))
    with pytest.raises(InputError, match=r"a transform must be a square \(N, N\) matrix"):
        TransformUpdate(W[:3])
    with pytest.raises(InputError, match="the transform W has NaN or Inf"):
        TransformUpdate(np.full((3, 3), np.nan))
    assert tiled_product(X[:0], W).shape == (0, N)
