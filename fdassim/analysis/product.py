r"""The product of ensemble rows with a transform, :math:`X W`, independent of how rows are split.

Every transform scheme ends with :math:`X^a = X^f W`: ``n x N`` times ``N x N``, the one
operation of an analysis that touches the whole ensemble. A BLAS matrix product (GEMM) is the
fastest way to form it, but a BLAS sums each entry in an order that may depend on the shape
of the call: with OpenBLAS, row ``r`` of ``X[a:b] @ W`` is not always bitwise equal to row
``r`` of ``X @ W``. The analysis must not depend on how the state is split over ranks, so
two ways are offered (:class:`Product`):

``TILED`` (the default)
    BLAS on fixed-size tiles of :data:`TILE` rows *aligned to the global row index*: global
    rows ``[k T, (k + 1) T)`` form tile ``k``, and a tile cut by the edge of a block is
    copied into a zero-padded ``T x N`` buffer. Every row is then computed by the same BLAS
    call, of the same shape, at the same position in its tile, whatever block it is in, so
    the result is bitwise the same on any split, as long as the BLAS is deterministic for a
    given call (the same library, CPU kernel and number of threads on every rank: the
    project's tests check this on 1, 2 and 3 ranks). Cost: one GEMM plus a copy of at most
    two partial tiles per block.
``ORDERED``
    Elementwise accumulation over members in the fixed order ``0, 1, ..., N - 1``
    (:func:`ordered_product`): no BLAS at all, hence bitwise split-invariant on any machine
    and library, about ten times slower than a GEMM for ``N = 64``.
``PETSC``
    PETSc dense matrices on the ensemble communicator, applied by the plumbing layer
    (:func:`fdassim.rows_product.apply_update`); split-invariant to round-off only.

A row's result never depends on the other rows of its tile: a GEMM computes row ``r`` of
:math:`X W` from row ``r`` of :math:`X` and :math:`W` only, so padding with zeros or with
other rows changes nothing.
"""

from __future__ import annotations

import enum

import numpy as np

from ..errors import InputError

__all__ = ["Product", "TILE", "rows_product", "tiled_product", "ordered_product"]

#: Rows per tile of the ``TILED`` product (``256 x 64`` doubles: 128 kB, within a core's L2).
TILE = 256


class Product(enum.Enum):
    """How :math:`X W` is formed on a block of rows (see the module docstring)."""

    TILED = "tiled"  #: BLAS on fixed global row tiles: bitwise split-invariant, GEMM speed
    ORDERED = "ordered"  #: elementwise in member order: bitwise on any BLAS, ~10x slower
    #: PETSc dense matrices on the ensemble communicator (split-invariant to round-off only):
    #: applied by the plumbing layer, :func:`fdassim.rows_product.apply_update`
    PETSC = "petsc"


def _check(X: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    W = np.asarray(W, dtype=float)
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0]:
        raise InputError(f"cannot multiply rows of shape {X.shape} by weights of shape {W.shape}")
    return X, W


def ordered_product(X: np.ndarray, W: np.ndarray, tile: int = 2048) -> np.ndarray:
    r"""Form :math:`X W`, summing over members in a fixed order (no BLAS).

    Row ``r`` of the result is :math:`\sum_{i=0}^{N-1} X_{ri} W_{ij}` accumulated for
    ``i = 0, 1, ..., N-1`` by elementwise operations, so it is bitwise the same whichever
    rows share the block. Rows are processed in tiles of ``tile`` to stay in cache.

    Parameters
    ----------
    X
        ``(nb, N)`` rows of the ensemble.
    W
        ``(N, K)`` weights.

    Returns
    -------
    numpy.ndarray
        ``(nb, K)`` product.
    """
    X, W = _check(X, W)
    out = np.empty((X.shape[0], W.shape[1]))
    tmp = np.empty((min(tile, X.shape[0]), W.shape[1]))
    for lo in range(0, X.shape[0], tile):
        hi = min(lo + tile, X.shape[0])
        o, t = out[lo:hi], tmp[: hi - lo]
        np.multiply.outer(X[lo:hi, 0], W[0], out=o)
        for i in range(1, W.shape[0]):
            np.multiply.outer(X[lo:hi, i], W[i], out=t)
            o += t
    return out


def tiled_product(X: np.ndarray, W: np.ndarray, start: int = 0, tile: int = TILE) -> np.ndarray:
    r"""Form :math:`X W` by BLAS on fixed-size tiles aligned to the global row index.

    Parameters
    ----------
    X
        ``(nb, N)`` rows ``start, ..., start + nb - 1`` of the ensemble.
    W
        ``(N, K)`` weights.
    start
        Global index of the first row of ``X``: tiles are the global rows
        ``[k tile, (k + 1) tile)``, so a row's tile does not depend on the block.
    tile
        Rows per tile; must be the same on every rank for split invariance.

    Returns
    -------
    numpy.ndarray
        ``(nb, K)`` product, each row bitwise independent of the block (see the module docstring).
    """
    X, W = _check(X, W)
    if int(start) != start or start < 0 or int(tile) != tile or tile < 1:
        raise InputError(f"start must be a non-negative integer and tile a positive one, got {start!r}, {tile!r}")
    nb = X.shape[0]
    out = np.empty((nb, W.shape[1]))
    if nb == 0:
        return out
    W = np.ascontiguousarray(W)
    direct = X.flags.c_contiguous  # BLAS reads whole tiles in place; otherwise every tile is copied
    buf = obuf = None
    first = start - start % tile  # global start of the first tile
    for g in range(first, start + nb, tile):
        lo, hi = max(g, start) - start, min(g + tile, start + nb) - start  # block rows in this tile
        if direct and hi - lo == tile:  # a whole tile inside the block: straight into the output
            np.matmul(X[lo:hi], W, out=out[lo:hi])
            continue
        if buf is None:  # a tile cut by the block's edge: zero-padded copy at its global position
            buf, obuf = np.zeros((tile, X.shape[1])), np.empty((tile, W.shape[1]))
        at = max(g, start) - g
        if hi - lo < tile:
            buf[:] = 0.0
        buf[at:at + hi - lo] = X[lo:hi]
        np.matmul(buf, W, out=obuf)
        out[lo:hi] = obuf[at:at + hi - lo]
    return out


def rows_product(X: np.ndarray, W: np.ndarray, start: int = 0, product: Product = Product.TILED) -> np.ndarray:
    """:math:`X W` for rows ``start, ...`` of the ensemble, formed as ``product`` says."""
    if product is Product.TILED:
        return tiled_product(X, W, start)
    if product is Product.ORDERED:
        return ordered_product(X, W)
    if product is Product.PETSC:
        raise InputError("Product.PETSC needs the ensemble communicator: apply the update with "
                         "fdassim.rows_product.apply_update (the analysis modules do not import PETSc)")
    raise InputError(f"product must be a fdassim.analysis.product.Product ({', '.join(p.name for p in Product)}), "
                     f"got {product!r}")
