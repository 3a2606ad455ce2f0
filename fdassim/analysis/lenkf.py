r"""The localized stochastic EnKF: Schur-product localization of the Kalman gain.

.. math::
    K_{rows} = \left(\rho_{xo} \circ A_{rows} S^T\right)
               \left[\rho_{oo} \circ S S^T + (N-1) R\right]^{-1}, \qquad
    X^a_{rows} = X_{rows} + K_{rows} (D - Y), \quad D = y \mathbf{1}^T + E

(Houtekamer & Mitchell 1998, 2001; notation of Evensen 2003; the factors :math:`1/(N-1)` of
the sample covariances cancel.) Column :math:`i` of :math:`E` is :math:`R^{1/2} z_i` with
:math:`z_i` member ``i``'s column of
:meth:`AnalysisContext.perturbation_normals <fdassim.analysis.base.AnalysisContext.perturbation_normals>`,
standard normal draws centred over members (the draws of the stochastic EnKF, so that
``LocalizedEnKF(Localization(inf))`` equals ``EnKF()`` to round-off).

``prepare`` does the observation-space work once: :math:`S` and
:math:`Z = [\rho_{oo} \circ S S^T + (N-1) R]^{-1} (D - Y)`. With a finite radius the
matrix is sparse (only pairs of observations closer than ``2 c`` are nonzero), is assembled
through a KD-tree on the observation coordinates
(:class:`~fdassim.analysis.neighbours.ObsIndex`) and factorised by SuperLU, so no
``(m, m)`` array is formed (unless ``obs_obs`` is off or ``R`` is full). ``apply`` needs only
the rows, their coordinates and these:
:math:`X^a_{rows} = X_{rows} + (\rho_{xo} \circ A_{rows} S^T) Z`, in tiles of rows
(:func:`~fdassim.analysis.neighbours.row_tiles`) each with only the observations whose taper
reaches it; the sums run over members and over those observations in index order
(:func:`~fdassim.analysis.base.combine`). The observations skipped contribute exact zeros to
the dense formula, so each row's result is bitwise that of the dense formula, independent of
its block, and the memory beyond the ensemble's rows is bounded by the tile. Without
localization the gain is applied as one ``N x N`` combination,
:math:`X^a = X + A (S^T Z)`.

Glossary: as in :mod:`fdassim.analysis.base`; ``rho_xo``, ``rho_oo`` as in
:mod:`fdassim.analysis.localization`; ``Z`` the ``(m, N)`` weighted innovations above.

References
----------
Houtekamer, P. L. and Mitchell, H. L. (1998). Data assimilation using an ensemble Kalman
filter technique. Mon. Wea. Rev. 126, 796-811.
https://doi.org/10.1175/1520-0493(1998)126<0796:DAUAEK>2.0.CO;2

Houtekamer, P. L. and Mitchell, H. L. (2001). A sequential ensemble Kalman filter for
atmospheric data assimilation. Mon. Wea. Rev. 129, 123-137.
https://doi.org/10.1175/1520-0493(2001)129<0123:ASEKFF>2.0.CO;2

Evensen, G. (2003). The Ensemble Kalman Filter: theoretical formulation and practical
implementation. Ocean Dynamics 53, 343-367. https://doi.org/10.1007/s10236-003-0036-9
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from ..errors import ConfigError, InputError, ObservationError
from ..options import option
from .base import (AnalysisContext, ObsError, Rows, Scheme, Update, check_observations, check_rows,
                   combine, row_mean)
from .localization import AdaptiveLocalization, Localization
from .neighbours import ObsIndex, row_tiles
from .rowwise import row_by_row, row_sums

#: default number of rows handled at once by the row-tiled schemes
TILE = 4096

__all__ = ["LocalizedEnKF", "LocalizedEnKFUpdate", "resolve_localization", "localized_rows", "row_coordinates",
           "perturbations"]


def perturbations(R: ObsError, N: int, context: AnalysisContext) -> np.ndarray:
    r"""``(m, N)`` centred observation perturbations :math:`E = R^{1/2} Z`, :math:`Z` from ``context.perturbation_normals``."""
    return R.color(context.perturbation_normals(R.m, N))


def resolve_localization(localization, Y: np.ndarray, context: AnalysisContext) -> Localization | None:
    """The fixed localization to use with these predicted observations (``None``: none).

    The localization takes the periods of the model's domain from ``context.periodic``
    (:func:`~fdassim.analysis.localization.on_domain`); an :class:`AdaptiveLocalization` is
    then fitted to ``Y`` at ``context.obs_coords``. Raises :class:`ObservationError` if a
    finite localization needs observation coordinates that ``context`` lacks or that do not
    match ``Y``, and :class:`ConfigError` if its ``periodic`` contradicts the model's.
    """
    if localization is None:
        return None
    localization = localization.on_domain(context.periodic)
    if isinstance(localization, Localization) and localization.is_infinite:
        return localization
    m = Y.shape[0]
    if context.obs_coords is None:
        raise ObservationError("localization needs the observation coordinates: pass "
                               "AnalysisContext(obs_coords=...) with an (m, d) array")
    oc = np.asarray(context.obs_coords, dtype=float)
    oc = oc.reshape(-1, 1) if oc.ndim == 1 else oc
    if oc.ndim != 2 or oc.shape[0] != m:
        raise ObservationError(f"context.obs_coords must be ({m}, d) for {m} observations, got shape {oc.shape}")
    if isinstance(localization, AdaptiveLocalization):
        return localization.resolve(Y, oc)
    return localization


def row_coordinates(rows: Rows, nb: int, d: int) -> np.ndarray:
    """The ``(nb, d)`` coordinates of a block's rows, checked against the observations' ``d``.

    Raises :class:`InputError` naming the fix when the rows have no coordinates or their
    shape does not fit.
    """
    if rows.coords is None:
        raise InputError("localization needs the coordinates of the state rows but rows.coords is "
                         "None: pass Rows.whole(n, coords=...) (or Rows(..., coords=...))")
    coords = np.asarray(rows.coords, dtype=float)
    coords = coords.reshape(-1, 1) if coords.ndim == 1 else coords
    if coords.shape[0] != nb:
        raise InputError(f"rows.coords has {coords.shape[0]} points but the block has {nb} rows")
    if coords.shape[1] != d:
        raise InputError(f"rows.coords has {coords.shape[1]} dimensions but obs_coords has {d}")
    return coords


def localized_rows(localization: Localization | None, rows: Rows, nb: int, obs_coords) -> np.ndarray | None:
    """``(nb, m)`` taper of the rows, or ``None`` without (or with infinite) localization.

    Raises :class:`InputError` naming the fix when the rows have no coordinates.
    """
    if localization is None or localization.is_infinite:
        return None
    oc = np.asarray(obs_coords, dtype=float)
    oc = oc.reshape(-1, 1) if oc.ndim == 1 else oc
    return localization.rho_xo(row_coordinates(rows, nb, oc.shape[1]), oc)


def localized_solve(S: np.ndarray, R: ObsError, rhs: np.ndarray, loc: Localization, index: ObsIndex) -> np.ndarray:
    r"""Solve :math:`[\rho_{oo} \circ S S^T + (N-1) R] Z = \mathrm{rhs}` for a finite radius.

    With ``obs_obs`` and a diagonal :math:`R` the matrix is sparse: its entries are the pairs
    of observations closer than ``2 c`` (found through ``index``), each
    :math:`\rho_{ij} \sum_l S_{il} S_{jl}` summed over members in order (so the matrix is
    exactly symmetric), and it is factorised by SuperLU. Otherwise (no taper between
    observations, or a full :math:`R`) the dense ``(m, m)`` matrix is solved.
    """
    m, N = S.shape
    if not (loc.obs_obs and R.is_diagonal):
        SS = S @ S.T
        if loc.obs_obs:
            SS *= loc.rho_oo(index.coords)
        return scipy.linalg.solve(SS + (N - 1) * R.matrix(), rhs, assume_a="sym")
    ptr, idx, rho = index.local(index.coords, loc.radius)
    owner = np.repeat(np.arange(m), np.diff(ptr))
    vals = np.empty(idx.size)
    for lo in range(0, idx.size, TILE):  # pairs in chunks: (TILE, N) products at a time
        sl = slice(lo, lo + TILE)
        vals[sl] = rho[sl] * np.einsum("ij,ij->i", S[owner[sl]], S[idx[sl]])
    C = scipy.sparse.csc_matrix((vals, (owner, idx)), shape=(m, m))
    C = C + scipy.sparse.diags((N - 1) * R.variances(), format="csc")
    return scipy.sparse.linalg.splu(C.tocsc()).solve(np.ascontiguousarray(rhs))


@dataclass(frozen=True, eq=False)
class LocalizedEnKFUpdate(Update):
    r"""The row-wise half of :class:`LocalizedEnKF` (see the module docstring).

    Parameters
    ----------
    S
        ``(m, N)`` observation-space anomalies.
    Z
        ``(m, N)`` weighted innovations :math:`[\rho_{oo} \circ S S^T + (N-1) R]^{-1}(D - Y)`.
    localization
        The resolved localization, or ``None``.
    index
        KD-tree of the observation coordinates, or ``None`` without (or with infinite)
        localization.
    tile
        Rows handled at once (see :class:`LocalizedEnKF`).
    """

    S: np.ndarray
    Z: np.ndarray
    localization: Localization | None
    index: ObsIndex | None
    tile: int = TILE
    ordered: bool = False

    def apply(self, X: np.ndarray, rows: Rows) -> np.ndarray:
        N = self.S.shape[1]
        X = check_rows(X, rows, N=N)
        Xa = X.copy()  # rows no observation reaches keep their values
        if self.index is None:  # no localization: X + A (S^T Z), one N x N combination
            W = self.S.T @ self.Z
            for lo in range(0, X.shape[0], self.tile):
                Xt = X[lo:lo + self.tile]
                Xa[lo:lo + self.tile] += combine(Xt - row_mean(Xt)[:, None], W)
            return Xa
        coords = row_coordinates(rows, X.shape[0], self.index.coords.shape[1])
        for part, obs, rho in row_tiles(coords, self.index, self.localization.radius, self.tile * N):
            Xt = X[part]
            if self.ordered:  # sums over members, then over observations, in index order
                AS = combine(Xt - row_mean(Xt)[:, None], self.S[obs].T)
                AS *= rho
                Xa[part] = Xt + combine(AS, self.Z[obs])
            else:  # the same sums by BLAS, one row at a time
                AS = row_by_row(Xt - row_sums(Xt)[:, None] / N, self.S[obs].T)
                AS *= rho
                Xa[part] = Xt + row_by_row(AS, self.Z[obs])
        return Xa


@dataclass(frozen=True)
class LocalizedEnKF(Scheme):
    """Stochastic EnKF with Gaspari-Cohn localization of the gain (Houtekamer & Mitchell 2001).

    Parameters
    ----------
    localization
        A :class:`~fdassim.analysis.localization.Localization` (``radius=math.inf`` gives the
        plain stochastic EnKF), or an
        :class:`~fdassim.analysis.localization.AdaptiveLocalization` fitted to ``Y`` in
        :meth:`prepare`.

    tile
        Rows handled at once: the memory beyond the ensemble's rows is that of ``tile`` rows
        of ``N`` values.
    ordered
        Form the products by sums in member and observation order without BLAS (bitwise the
        dense implementation) instead of row by row with BLAS (faster); both are bitwise
        independent of the split.

    Raises
    ------
    ConfigError
        If ``localization`` is of another type or ``tile`` is not a positive integer.
    """

    localization: Localization | AdaptiveLocalization
    tile: int = option(TILE, ge=1)
    ordered: bool = False

    def __post_init__(self):
        if self.localization is None:
            raise ConfigError("LocalizedEnKF needs a localization: Localization(radius) or "
                              "AdaptiveLocalization(); Localization(math.inf) means none")
        super().__post_init__()

    def prepare(self, Y, y, R: ObsError, context: AnalysisContext) -> LocalizedEnKFUpdate:
        Y, y, R = check_observations(Y, y, R)
        m, N = Y.shape
        loc = resolve_localization(self.localization, Y, context)
        S = Y - Y.mean(axis=1, keepdims=True)
        D = y[:, None] + perturbations(R, N, context)
        index = None
        if loc is None or loc.is_infinite:
            Z = scipy.linalg.solve(S @ S.T + (N - 1) * R.matrix(), D - Y, assume_a="sym")
        else:
            index = ObsIndex(np.asarray(context.obs_coords, dtype=float).reshape(m, -1), loc.periodic)
            Z = localized_solve(S, R, D - Y, loc, index)
        return LocalizedEnKFUpdate(S, Z, loc, index, int(self.tile), self.ordered)
