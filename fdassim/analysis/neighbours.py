r"""Which observations are near which rows: a KD-tree on the observations and cells of rows.

Localized schemes touch, for each state row, only the observations inside the support of
the Gaspari-Cohn taper (distance below ``2 c``, :mod:`fdassim.analysis.localization`).
:class:`ObsIndex` finds them through :class:`scipy.spatial.cKDTree` on the observation
coordinates; periodic axes use the tree's ``boxsize`` (coordinates wrapped into
``[0, P)``, a length of 0 marking a non-periodic axis). The tree only proposes candidates,
with a radius a little larger than asked; the distances that decide and the taper values
are computed by :func:`~fdassim.analysis.localization.distances`, so the result is the
same, bit for bit, as the dense computation over all observations.

Rows are grouped in *cells* (:func:`cells`): the squares (cubes) of a fixed grid of width
``h`` anchored at the origin, or, with ``h = None``, the sets of rows at the same position.
A row's cell depends on its position only, never on the other rows of its block, so any
work shared by a cell keeps each row's result independent of how rows are split over
processes. All observations that can reach a row of a cell lie within ``2 c + h \sqrt{d}/2``
of the cell's centre (:meth:`ObsIndex.near`).

Glossary: ``c`` the taper's half-width, ``h`` the cell width, ``d`` the number of axes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import ConfigError, InputError
from .localization import distances, gaspari_cohn, paired_distances

__all__ = ["ObsIndex", "Cells", "cells", "wrap", "row_tiles"]

#: relative margin on the search radius of the tree: candidates only, distances decide
_MARGIN = 1e-9


def wrap(points: np.ndarray, periodic) -> np.ndarray:
    """``points`` with each periodic coordinate reduced into ``[0, P)``."""
    points = np.array(points, dtype=float)
    if periodic is None:
        return points
    for j, p in enumerate(periodic):
        if p is not None:
            col = np.mod(points[:, j], p)
            col[col >= p] = 0.0  # np.mod(-1e-17, P) rounds to P
            points[:, j] = col
    return points


class ObsIndex:
    """A KD-tree on observation coordinates, for the observations near given points.

    Parameters
    ----------
    coords
        ``(m, d)`` observation coordinates.
    periodic
        ``d`` domain lengths (``None`` for a non-periodic axis), or ``None``.
    """

    def __init__(self, coords: np.ndarray, periodic=None):
        coords = np.asarray(coords, dtype=float)
        self.coords = coords.reshape(-1, 1) if coords.ndim == 1 else coords
        if not np.all(np.isfinite(self.coords)):
            raise InputError("observation coordinates have NaN or Inf values")
        if periodic is not None and len(periodic) != self.coords.shape[1]:
            raise ConfigError(f"periodic has {len(periodic)} lengths but the observation coordinates have "
                              f"{self.coords.shape[1]} dimensions")
        self.periodic = periodic
        box = None
        if periodic is not None and any(p is not None for p in periodic):
            box = np.array([0.0 if p is None else p for p in periodic])
        self._tree = cKDTree(wrap(self.coords, periodic), boxsize=box)

    @property
    def m(self) -> int:
        return self.coords.shape[0]

    def near(self, centres: np.ndarray, radius: float) -> list[np.ndarray]:
        """For each centre, the sorted indices of the observations within ``radius`` (or a hair more).

        The lists are supersets of the observations strictly closer than ``radius``; callers
        compute the exact distances with :func:`~fdassim.analysis.localization.distances`.
        """
        if math.isinf(radius):
            everything = np.arange(self.m)
            return [everything for _ in range(len(centres))]
        found = self._tree.query_ball_point(wrap(centres, self.periodic), radius * (1 + _MARGIN) + _MARGIN,
                                            return_sorted=True)
        return [np.asarray(f, dtype=np.intp) for f in found]

    def local(self, points: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""The observations inside the taper's support around each point, and their weights.

        Returns
        -------
        ptr, idx, rho
            For point ``i``, the observations ``idx[ptr[i]:ptr[i + 1]]`` (in index order) with
            Gaspari-Cohn weights ``rho[ptr[i]:ptr[i + 1]] > 0``, :math:`GC(d / c)`.
        """
        points = np.asarray(points, dtype=float).reshape(len(points), -1)
        near = self.near(points, 2.0 * c)
        counts = np.array([a.size for a in near], dtype=np.intp)
        idx = np.concatenate(near) if near else np.empty(0, np.intp)
        owner = np.repeat(np.arange(len(points)), counts)
        if math.isinf(c):
            rho = np.ones(idx.size)
        else:
            rho = gaspari_cohn(paired_distances(points[owner], self.coords[idx], self.periodic) / c)
        keep = rho > 0.0
        ptr = np.zeros(len(points) + 1, dtype=np.intp)
        np.cumsum(np.bincount(owner[keep], minlength=len(points)), out=ptr[1:])
        return ptr, idx[keep], rho[keep]

    def taper(self, points: np.ndarray, idx: np.ndarray, c: float) -> np.ndarray:
        r"""``(len(points), len(idx))`` Gaspari-Cohn taper :math:`GC(d / c)` to the observations ``idx``."""
        if math.isinf(c):
            return np.ones((len(points), len(idx)))
        return gaspari_cohn(distances(points, self.coords[idx], self.periodic) / c)

    def pairs(self, radius: float) -> list[np.ndarray]:
        """For each observation, the sorted indices of the observations within ``radius`` (a superset)."""
        return self.near(self.coords, radius)


@dataclass(frozen=True, eq=False)
class Cells:
    r"""Rows grouped by cell (see :func:`cells`).

    Attributes
    ----------
    centres
        ``(ncells, d)`` the centre of each cell (the common position with ``h = None``).
    order
        Row indices sorted by cell (stable: rows of a cell keep their order).
    bounds
        ``(ncells + 1,)``: the rows of cell ``j`` are ``order[bounds[j]:bounds[j + 1]]``.
    half_diagonal
        :math:`h \sqrt{d} / 2`, the largest distance from a centre to a row of its cell (0
        with ``h = None``).
    """

    centres: np.ndarray
    order: np.ndarray
    bounds: np.ndarray
    half_diagonal: float

    def __len__(self) -> int:
        return self.centres.shape[0]

    def rows(self, j: int) -> np.ndarray:
        """Indices of the rows of cell ``j``."""
        return self.order[self.bounds[j]:self.bounds[j + 1]]


def cells(coords: np.ndarray, h: float | None, periodic=None) -> Cells:
    """Group rows by the cell of a fixed grid of width ``h`` their position falls in.

    Parameters
    ----------
    coords
        ``(nb, d)`` row coordinates.
    h
        Cell width, in the units of the coordinates; ``None`` groups the rows that share a
        position exactly; ``math.inf`` puts every row in one cell (centred at the origin).
    periodic
        Domain lengths: positions are wrapped into ``[0, P)`` before they are binned.

    Returns
    -------
    Cells
        A cell's key, hence its centre, depends on the positions of its rows only.
    """
    coords = np.asarray(coords, dtype=float)
    coords = coords.reshape(-1, 1) if coords.ndim == 1 else coords
    nb, d = coords.shape
    if h is not None and math.isinf(h):
        return Cells(np.zeros((1 if nb else 0, d)), np.arange(nb), np.array([0, nb] if nb else [0]), math.inf)
    x = wrap(coords, periodic)
    keys = x if h is None else np.floor(x / h)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(uniq.shape[0] + 1))
    if h is None:
        return Cells(uniq, order, bounds, 0.0)
    return Cells(wrap((uniq + 0.5) * h, periodic), order, bounds, h * math.sqrt(d) / 2)


def row_tiles(coords: np.ndarray, index: ObsIndex, c: float, budget: int
              ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    r"""Tiles of rows, each with the observations that reach it and their tapers.

    Rows are grouped in cells of width ``c`` (:func:`cells`); the candidates of a cell are the
    observations within :math:`2c + c\sqrt{d}/2` of its centre (so they depend on the cell
    only, never on the block), and each tile of at most ``budget / K`` of its rows (``K``
    candidates) gets its ``(rows, K)`` taper computed exactly (:meth:`ObsIndex.taper`). A
    tile that no observation reaches is skipped.

    Parameters
    ----------
    coords
        ``(nb, d)`` row coordinates.
    index
        The observations.
    c
        Half-width of the taper (finite).
    budget
        Largest number of entries of a tile's ``(rows, K)`` taper.

    Yields
    ------
    rows, obs, rho
        Row indices (into ``coords``), the candidates' indices (increasing, the same for
        every tile of a cell) and the ``(len(rows), len(obs))`` taper, zero beyond the
        support. Rows out of every observation's reach are in no tile.
    """
    groups = cells(coords, c, index.periodic)
    step = max(1, budget // max(1, index.m))  # cells whose candidate lists are held at once
    for lo in range(0, len(groups), step):
        near = index.near(groups.centres[lo:lo + step], 2.0 * c + groups.half_diagonal)
        for j, cand in enumerate(near, start=lo):
            if cand.size == 0:
                continue
            r = groups.rows(j)
            per = max(1, budget // cand.size)
            for a in range(0, r.size, per):
                part = r[a:a + per]
                rho = index.taper(coords[part], cand, c)
                if rho.any():
                    yield part, cand, rho
