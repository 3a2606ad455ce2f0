r"""The local ensemble transform Kalman filter (LETKF; Hunt, Kostelich & Szunyogh 2007).

Every state row gets its own ETKF analysis from the observations around it, each
observation's error variance divided by its Gaspari-Cohn weight (R-localization; the
half-width convention of :mod:`fdassim.analysis.localization`):

.. math::
    \tilde R_{r}^{-1} = \operatorname{diag}\!\left(\rho(d(x_r, o_k)) / r_k\right)_{k \in L_r},
    \qquad x^a_r = X_r W_r,

with :math:`L_r` the observations closer than :math:`2c` to the row and :math:`W_r` the
symmetric, mean-preserving ETKF transform of that local problem
(:func:`fdassim.analysis.local_transforms.local_etkf`), or with the finite-size prior of
the EnKF-N in each local analysis (:class:`FiniteSize`; Bocquet 2011), which adapts the
inflation to each place and time.

``prepare`` whitens the observation anomalies and innovations and builds a KD-tree on the
observation coordinates (:class:`~fdassim.analysis.neighbours.ObsIndex`), identically on
every rank. ``apply`` groups its rows in cells (:func:`~fdassim.analysis.neighbours.cells`):
the rows at one position, or with ``cell = h`` the rows in one square of a fixed grid of
width ``h``, share one local analysis computed at the cell's centre (the weights of Yang et
al. 2009 held constant over a cell). Local analyses run in batches (stacked ``eigh``) and each
cell's rows are multiplied by its transform one row at a time (:func:`~fdassim.analysis.rowwise.row_by_row`). A cell depends on the
positions of its rows only, so a row's result depends on its neighbourhood only, never on
which rows share its block: the LETKF is bitwise independent of the split over processes.
Memory beyond the ensemble's rows is bounded by ``tile``.

References
----------
Hunt, B. R., Kostelich, E. J. and Szunyogh, I. (2007). Efficient data assimilation for
spatiotemporal chaos: a local ensemble transform Kalman filter. Physica D 230, 112-126.
https://doi.org/10.1016/j.physd.2006.11.008

Yang, S.-C., Kalnay, E., Hunt, B. and Bowler, N. E. (2009). Weight interpolation for
efficient data assimilation with the local ensemble transform Kalman filter. Q. J. R.
Meteorol. Soc. 135, 251-262. https://doi.org/10.1002/qj.353

Bocquet, M. (2011). Ensemble Kalman filtering without the intrinsic need for inflation.
Nonlin. Processes Geophys. 18, 735-750. https://doi.org/10.5194/npg-18-735-2011
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ObservationError
from ..options import check_options, option
from .base import AnalysisContext, ObsError, Rows, Scheme, Update, check_observations, check_rows, combine
from .lenkf import TILE, resolve_localization, row_coordinates
from .local_transforms import local_enkf_n, local_etkf
from .localization import AdaptiveLocalization, Localization
from .neighbours import ObsIndex, cells
from .rowwise import row_by_row

__all__ = ["LETKF", "LETKFUpdate", "FiniteSize"]

#: padded numbers of local observations are multiples of this (one stack per multiple)
_PAD = 16


@dataclass(frozen=True)
class FiniteSize:
    r"""The finite-size (EnKF-N) prior in each local analysis: adaptive inflation, no factor to tune.

    Parameters
    ----------
    eps_N
        :math:`\varepsilon_N > 0` of the Jeffreys hyperprior; ``None`` for :math:`1 + 1/N`.
    exact_hessian
        Transform with the exact Hessian of the EnKF-N cost (default) or without its
        rank-one term (DAPPER's ``Hess=False``).
    """

    eps_N: float | None = option(None, gt=0)
    exact_hessian: bool = True

    def __post_init__(self):
        check_options(self)


@dataclass(frozen=True, eq=False)
class LETKFUpdate(Update):
    """The row-wise half of :class:`LETKF`: the local analyses of a block's cells.

    Parameters
    ----------
    Sw
        ``(m, N)`` whitened observation anomalies :math:`R^{-1/2} S`.
    dw
        ``(m,)`` whitened innovations :math:`R^{-1/2}(y - \\bar Y)`.
    localization
        The resolved localization (on the model's domain).
    index
        KD-tree of the observation coordinates (``None`` with an infinite radius).
    cell, tile, finite_size
        As for :class:`LETKF`.
    """

    Sw: np.ndarray
    dw: np.ndarray
    localization: Localization
    index: ObsIndex | None
    cell: float | None
    tile: int
    finite_size: FiniteSize | None

    def transforms(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The transforms of the local analyses at ``centres``, ``(B, N, N)``, and which centres have any.

        Returns the stacked transforms of the centres with at least one observation inside
        the taper's support, and their indices into ``centres``.
        """
        N = self.Sw.shape[1]
        c = self.localization.radius
        if self.index is None:  # no localization: one global analysis
            return self._solve([np.arange(self.Sw.shape[0])], [np.ones(self.Sw.shape[0])]), np.zeros(1, int)
        ptr, idx, rho = self.index.local(centres, c)
        where = np.flatnonzero(np.diff(ptr) > 0)
        if where.size == 0:
            return np.empty((0, N, N)), where
        return self._solve([idx[ptr[j]:ptr[j + 1]] for j in where], [rho[ptr[j]:ptr[j + 1]] for j in where]), where

    def _solve(self, idx: list[np.ndarray], rho: list[np.ndarray]) -> np.ndarray:
        """Stacked transforms for the local observation sets ``idx`` with weights ``rho``."""
        N = self.Sw.shape[1]
        k = np.array([i.size for i in idx])
        padded = -(-k // _PAD) * _PAD  # the stack a local analysis joins depends on itself only
        W = np.empty((len(idx), N, N))
        for K in np.unique(padded):
            members = np.flatnonzero(padded == K)
            step = max(1, self.tile // max(int(K), N))  # (step, K, N) and (step, N, N) stacks fit a tile
            for lo in range(0, members.size, step):
                batch = members[lo:lo + step]
                Sh = np.zeros((batch.size, K, N))
                dh = np.zeros((batch.size, K))
                for b, j in enumerate(batch):
                    s = np.sqrt(rho[j])
                    Sh[b, :k[j]] = s[:, None] * self.Sw[idx[j]]
                    dh[b, :k[j]] = s * self.dw[idx[j]]
                if self.finite_size is None:
                    W[batch] = local_etkf(Sh, dh)
                else:
                    W[batch] = local_enkf_n(Sh, dh, self.finite_size.eps_N, self.finite_size.exact_hessian)[0]
        return W

    def apply(self, X: np.ndarray, rows: Rows) -> np.ndarray:
        N = self.Sw.shape[1]
        X = check_rows(X, rows, N=N)
        if self.index is None:
            return combine(X, self.transforms(np.zeros((1, 1)))[0][0], tile=self.tile)
        coords = row_coordinates(rows, X.shape[0], self.index.coords.shape[1])
        groups = cells(coords, self.cell, self.localization.periodic)
        Xa = X.copy()  # rows with no observation within reach keep their values
        step = max(1, self.tile // N)
        for lo in range(0, len(groups), step):
            W, where = self.transforms(groups.centres[lo:lo + step])
            for Wj, j in zip(W, where + lo):
                r = groups.rows(j)
                for a in range(0, r.size, self.tile):
                    part = r[a:a + self.tile]
                    Xa[part] = row_by_row(X[part], Wj)
        return Xa


@dataclass(frozen=True)
class LETKF(Scheme):
    r"""The LETKF: a local ETKF for each place, with R-localization (Hunt et al. 2007).

    Parameters
    ----------
    localization
        A :class:`~fdassim.analysis.localization.Localization` (half-width ``radius``;
        ``math.inf`` gives the global ETKF) or an
        :class:`~fdassim.analysis.localization.AdaptiveLocalization`. Its ``periodic`` defaults
        to the model's geometry.
    cell
        ``None`` (default): one local analysis per distinct row position (the exact LETKF).
        A width ``h``: the rows in each square of width ``h`` (of a grid anchored at the
        origin) share the analysis at its centre; much cheaper when many rows share a
        neighbourhood, exact as ``h -> 0``.
    tile
        Rows (and stacked local analyses) handled at once: bounds the memory beyond the
        ensemble's rows.
    finite_size
        ``None`` (default), or a :class:`FiniteSize`: the EnKF-N prior in each local
        analysis, i.e. adaptive inflation (use no other multiplicative inflation with it).

    Raises
    ------
    ConfigError
        For an option of the wrong type or out of range.

    Notes
    -----
    R-localization needs each observation's own error variance, so a finite radius needs a
    diagonal R; with ``radius = math.inf`` a full R is whitened.
    """

    localization: Localization | AdaptiveLocalization
    cell: float | None = option(None, gt=0)
    tile: int = option(TILE, ge=1)
    finite_size: FiniteSize | None = None

    def __post_init__(self):
        if self.localization is None:
            raise ConfigError("LETKF needs a localization: Localization(radius) or AdaptiveLocalization(); "
                              "Localization(math.inf) gives the global ETKF")
        super().__post_init__()

    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> LETKFUpdate:
        Y, y, R = check_observations(Y, y, R)
        m = Y.shape[0]
        loc = resolve_localization(self.localization, Y, context)
        if not loc.is_infinite and not R.is_diagonal:
            raise ObservationError("the LETKF localizes R and needs each observation's own variance: use a "
                                   "diagonal R, or radius=math.inf to whiten a full R")
        Ybar = Y.mean(axis=1)
        Sw, dw = R.whiten(Y - Ybar[:, None]), R.whiten(y - Ybar)
        index = None
        if not loc.is_infinite:
            index = ObsIndex(np.asarray(context.obs_coords, dtype=float).reshape(m, -1), loc.periodic)
        return LETKFUpdate(Sw, dw, loc, index, self.cell, int(self.tile), self.finite_size)
