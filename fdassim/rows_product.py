r"""Applying an analysis update to this rank's rows, with the chosen transform product.

A transform scheme's update is :math:`X^a = X^f W` (:class:`~fdassim.analysis.base.TransformUpdate`).
:func:`apply_update` forms it as :class:`~fdassim.analysis.product.Product` says:

``TILED`` (default) and ``ORDERED``
    numpy, in :mod:`fdassim.analysis.product`: bitwise independent of the split of the rows.
``PETSC``
    PETSc (:func:`petsc_rows_product`): the rows of all ranks form an ``n x N``
    ``MATMPIDENSE`` matrix on the ensemble communicator, one block of rows per rank, the
    transform another, and ``MatMatMult`` forms the product (PETSc gathers ``W`` on every
    rank and calls its BLAS on the local block). PETSc stores dense matrices by columns, so
    the block is copied in and the product copied out. One BLAS call on the whole block makes
    a row's last bits depend on the block's shape: split-invariant to round-off only.
    Measured slower than ``TILED`` (``benchmarks/transform_speed.py``; see
    ``benchmarks/README.md``), it is kept as an option.

Other updates (localized, regression) are row-local and ignore the choice. This module is
plumbing: the analysis modules never import PETSc.
"""

from __future__ import annotations

import numpy as np

from .analysis.base import Rows, TransformUpdate, Update, check_rows
from .analysis.product import Product, rows_product
from .errors import InputError

__all__ = ["apply_update", "petsc_rows_product"]


def apply_update(update: Update, X: np.ndarray, rows: Rows, product: Product = Product.TILED,
                 comm=None) -> np.ndarray:
    """The analysis of this rank's rows ``X`` by ``update``, a transform formed as ``product`` says.

    Parameters
    ----------
    update
        From :meth:`Scheme.prepare <fdassim.analysis.base.Scheme.prepare>`.
    X, rows
        This rank's ``(nb, N)`` rows and their description.
    product
        How a transform is applied (ignored by other updates).
    comm
        The ensemble communicator, for ``Product.PETSC`` (collective on it; default
        ``COMM_SELF``).
    """
    if not isinstance(update, TransformUpdate):
        return update.apply(X, rows)
    X = check_rows(X, rows, N=update.W.shape[0])
    if product is Product.PETSC:
        from mpi4py import MPI

        return petsc_rows_product(X, update.W, comm if comm is not None else MPI.COMM_SELF)
    return rows_product(X, update.W, rows.start, product)


def petsc_rows_product(X: np.ndarray, W: np.ndarray, comm) -> np.ndarray:
    """:math:`X W` for this rank's rows ``X`` (``nb x N``) with PETSc dense matrices on ``comm``.

    Collective on ``comm``: every rank calls it with its own block (possibly empty) and the
    same ``W``.

    Returns
    -------
    numpy.ndarray
        ``(nb, N)`` rows of the product, C-ordered.
    """
    from petsc4py import PETSc

    X = np.asarray(X, dtype=float)
    W = np.asarray(W, dtype=float)
    if X.ndim != 2 or W.shape != (X.shape[1], X.shape[1]):
        raise InputError(f"cannot multiply rows of shape {X.shape} by a transform of shape {W.shape}")
    nb, N = X.shape
    A = PETSc.Mat().createDense(((nb, PETSc.DECIDE), (PETSc.DECIDE, N)), array=np.asfortranarray(X), comm=comm)
    lo, hi = A.getOwnershipRangeColumn()  # W's rows follow A's column layout
    B = PETSc.Mat().createDense(((hi - lo, N), (PETSc.DECIDE, N)), array=np.asfortranarray(W[lo:hi]), comm=comm)
    A.assemble()
    B.assemble()
    C = A.matMult(B)
    out = np.ascontiguousarray(C.getDenseArray())
    for mat in (A, B, C):
        mat.destroy()
    return out
