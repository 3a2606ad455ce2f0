"""Tests of fdassim.analysis.rowwise: each row's result is bitwise independent of its block."""

import numpy as np
import pytest

from fdassim.analysis.rowwise import row_by_row, row_dots, row_sums

BLOCKS = [(0, 1), (3, 17), (100, 1011), (1500, 2000), (1, 1999)]


@pytest.mark.parametrize("N", [7, 8, 20, 64])
def test_rowwise_results_do_not_depend_on_the_block(N):
    rng = np.random.default_rng(N)
    X = 1e3 * rng.standard_normal((2000, N))
    W, s = rng.standard_normal((N, 37)), rng.standard_normal(N)
    full = row_by_row(X, W), row_sums(X), row_dots(X, s)
    np.testing.assert_allclose(full[0], X @ W, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(full[1], X.sum(axis=1), rtol=1e-12, atol=1e-9)
    for a, b in BLOCKS:
        for block in (X[a:b], np.asfortranarray(X[a:b]), X[a:b].copy()):  # any memory order
            np.testing.assert_array_equal(row_by_row(block, W), full[0][a:b])
            np.testing.assert_array_equal(row_sums(block), full[1][a:b])
            np.testing.assert_array_equal(row_dots(block, s), full[2][a:b])
