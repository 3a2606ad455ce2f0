r"""Products and sums computed one row at a time: each row's result depends on that row alone.

The localized schemes multiply each tile of rows by matrices that belong to the tile's
neighbourhood (:func:`~fdassim.analysis.neighbours.row_tiles`), so the rows of a product
are not the aligned global tiles of :func:`fdassim.analysis.base.combine`'s BLAS path. Two
ways keep such products bitwise independent of how the rows are split:

- :func:`row_by_row` stacks the rows, ``(nb, 1, K) @ (K, J)``: ``numpy.matmul`` makes the same
  vector-matrix call for every row, whatever the other rows (BLAS speed per row);
- :func:`row_sums` reduces each row of a C-ordered array by numpy's pairwise summation, the
  same for every row (a Fortran-ordered array would be reduced across rows, in an order that
  depends on the block: the functions copy such input to C order first).

Both are checked on blocks cut anywhere in ``tests/analysis/test_rowwise.py``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["row_by_row", "row_sums", "row_dots"]


def row_by_row(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``(nb, J)`` product :math:`X W` of ``(nb, K)`` rows by ``(K, J)`` weights, one call per row."""
    return np.matmul(np.ascontiguousarray(X)[:, None, :], W)[:, 0, :]


def row_sums(X: np.ndarray) -> np.ndarray:
    """``(nb,)`` sum of each row (pairwise summation within the row)."""
    return np.ascontiguousarray(X).sum(axis=1)


def row_dots(X: np.ndarray, s: np.ndarray) -> np.ndarray:
    r"""``(nb,)`` dot product :math:`\sum_i X_{ri} s_i` of each row with the vector ``s``."""
    return row_sums(np.ascontiguousarray(X) * s)
