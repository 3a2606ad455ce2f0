r"""The sequential regression filter (Anderson 2003) and its parallel form (Anderson & Collins 2007).

Observations are assimilated one at a time, in index order. For observation :math:`k` with
prior ensemble :math:`y^k` (its predicted observations, updated by the observations
before it), variance :math:`\sigma_p^2` and error variance :math:`r_k`:

1. *Observation increments* :math:`\Delta y_i`, by the EAKF (Anderson 2001; deterministic)

   .. math::
       \sigma_a^2 = (\sigma_p^{-2} + r_k^{-1})^{-1}, \quad
       \bar y^a = \sigma_a^2 (\bar y / \sigma_p^2 + y_k / r_k), \quad
       \Delta y_i = \bar y^a + \sqrt{\sigma_a^2 / \sigma_p^2}\,(y^k_i - \bar y) - y^k_i

   or by perturbed observations (stochastic), :math:`\Delta y_i = \sigma_p^2 /
   (\sigma_p^2 + r_k) \, (y_k + \sqrt{r_k}\,\varepsilon_{ki} - y^k_i)`.
2. *Regression* of the increments onto every state row and onto the priors of the later
   observations :math:`j > k` (Anderson 2003, the least-squares step):

   .. math::
       \Delta x_i = \rho \, \frac{\operatorname{cov}(x, y^k)}{\sigma_p^2} \, \Delta y_i

   with :math:`\rho` the Gaspari-Cohn taper between the row (or observation :math:`j`) and
   observation :math:`k` (1 without localization).

``prepare`` runs the whole observation-space sequence and stores, for each :math:`k`, the
prior :math:`y^k` at the time it is processed and :math:`\Delta y`; ``apply`` replays the
regressions onto a block of rows, which makes each row independent of its block. With
localization both run over neighbours found through a KD-tree on the observation
coordinates (:class:`~fdassim.analysis.neighbours.ObsIndex`): ``prepare`` regresses
observation :math:`k` onto the later observations its taper reaches, and ``apply`` works in
tiles of rows (:func:`~fdassim.analysis.neighbours.row_tiles`), each replaying in index
order the observations that reach it. What is skipped would add exact zeros, so the result
is bitwise that of the sequence over every observation and every row, the serial
dependence over observations (Anderson & Collins 2007) is kept, and memory beyond the
ensemble's rows is bounded by a tile.
:func:`regression_parallel` simulates the layout of Anderson & Collins (2007, their
"parallel algorithm"): state rows and observation priors are dealt to processes; the owner
of observation :math:`k` computes its increments and broadcasts :math:`(y^k, \Delta y)`;
every process regresses them onto its own rows. Both paths call the same two functions,
:func:`obs_increments` and :func:`regress`, so they agree bitwise.

A full :math:`R = L L^T` is handled by whitening, :math:`y \leftarrow L^{-1} y`,
:math:`Y \leftarrow L^{-1} Y`, :math:`R \leftarrow I`. The whitened observations are
combinations of the original ones and have no location, so localization needs a diagonal
:math:`R` (with diagonal :math:`R` the observations keep ``context.obs_coords``).

The perturbations :math:`\varepsilon_{ki}` are entry :math:`k` of member :math:`i`'s column
of :meth:`AnalysisContext.perturbation_normals
<fdassim.analysis.base.AnalysisContext.perturbation_normals>` (standard normal, centred over
members), the draws of the (localized) stochastic EnKF, so the schemes see the same
perturbations.

An observation whose (whitened) prior has zero ensemble spread carries no information the
ensemble can use: its increments are zero and nothing is regressed on it, as in the transform
schemes (see :mod:`fdassim.analysis.base`).

References
----------
Anderson, J. L. (2001). An ensemble adjustment Kalman filter for data assimilation. Mon. Wea.
Rev. 129, 2884-2903. https://doi.org/10.1175/1520-0493(2001)129<2884:AEAKFF>2.0.CO;2

Anderson, J. L. (2003). A local least squares framework for ensemble filtering. Mon. Wea.
Rev. 131, 634-642. https://doi.org/10.1175/1520-0493(2003)131<0634:ALLSFF>2.0.CO;2

Anderson, J. L. and Collins, N. (2007). Scalable implementations of ensemble filter
algorithms for data assimilation. J. Atmos. Oceanic Technol. 24, 1452-1463.
https://doi.org/10.1175/JTECH2049.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import InputError, ObservationError
from ..options import option
from .base import (AnalysisContext, ObsError, Rows, Scheme, Update, check_ensemble,
                   check_observations, check_rows, combine, row_mean)
from .lenkf import TILE, localized_rows, resolve_localization, row_coordinates
from .localization import AdaptiveLocalization, Localization
from .neighbours import ObsIndex, row_tiles
from .rowwise import row_sums

__all__ = ["Increments", "RegressionFilter", "RegressionUpdate", "obs_increments", "regress", "regress_rows",
           "regression_parallel"]


class Increments(str, Enum):
    """How the scalar observation increments are computed."""

    EAKF = "eakf"  #: deterministic: shift the mean, scale the spread (Anderson 2001)
    PERTURBED = "perturbed"  #: stochastic: perturbed observations


def obs_increments(yk: np.ndarray, obs: float, r: float, kind: Increments, eps: np.ndarray | None) -> np.ndarray:
    """``(N,)`` increments of the prior ``yk`` of observation ``k`` (formulas in the module docstring).

    Zero when the prior has no spread: the observation carries no information the ensemble
    can use (see :mod:`fdassim.analysis.base`).
    """
    N = yk.size
    ybar = yk.mean()
    a = yk - ybar
    var_p = float(a @ a) / (N - 1)
    if var_p == 0.0:
        return np.zeros(N)
    if kind is Increments.EAKF:
        var_a = 1.0 / (1.0 / var_p + 1.0 / r)
        mean_a = var_a * (ybar / var_p + obs / r)
        return mean_a + math.sqrt(var_a / var_p) * a - yk
    return var_p / (var_p + r) * (obs + math.sqrt(r) * eps - yk)


def regress(Xb: np.ndarray, yk: np.ndarray, dy: np.ndarray, rho: np.ndarray | None, ordered: bool = False) -> None:
    r"""Add to the rows ``Xb`` (in place) their regression on the increments ``dy`` of ``yk``.

    :math:`X_b \mathrel{+}= \rho\, b\, \Delta y^T` with
    :math:`b = \sum_i A_i a_i / \sum_i a_i^2` (:math:`a` the anomalies of ``yk``, :math:`A`
    those of the rows), i.e. :math:`\operatorname{cov}(x, y^k) / \sigma_p^2`. The sums over
    members run row by row (:func:`~fdassim.analysis.rowwise.row_dots`), or with ``ordered``
    in member order (:func:`~fdassim.analysis.base.combine`); either way each row's result
    depends on that row only. ``Xb`` must be C-ordered (a view of rows, or a copy).
    """
    a = yk - yk.mean()
    aa = float(a @ a)
    if Xb.shape[0] == 0 or aa == 0.0:  # no rows, or a prior without spread (zero increments)
        return
    s = a / aa
    if ordered:
        b = combine(Xb - row_mean(Xb)[:, None], s[:, None])[:, 0]
        if rho is not None:
            b = b * rho
        Xb += b[:, None] * dy[None, :]
        return
    A = Xb - (row_sums(Xb) / Xb.shape[1])[:, None]  # anomalies: one buffer, reused below
    A *= s
    b = row_sums(A)  # = row_dots(anomalies, s)
    if rho is not None:
        b *= rho
    Xb += np.multiply.outer(b, dy, out=A)


def regress_rows(X: np.ndarray, Yp: np.ndarray, dY: np.ndarray, obs, rho: np.ndarray | None,
                 ordered: bool = False) -> np.ndarray:
    r"""The rows ``X`` after the regressions of the observations ``obs``, in that order.

    For each :math:`k` in ``obs`` (column ``j`` of the taper ``rho``, ``None``: no taper), the
    rows move by :math:`\rho_{\cdot j}\, b\, \Delta y_k^T` with :math:`b` their regression
    coefficient on the prior ``Yp[k]`` (:func:`regress`). Row by row (the default) the rows are
    held as their mean and anomalies, :math:`X = \bar x 1^T + A`: each observation costs
    :math:`b = A s` and :math:`A \mathrel{+}= b (\Delta y - \overline{\Delta y})^T`,
    :math:`\bar x \mathrel{+}= b\, \overline{\Delta y}` (the same update, without
    recomputing the mean). With ``ordered`` each observation is :func:`regress` with sums in
    member order. Either way each row's result depends on that row only.

    Returns
    -------
    numpy.ndarray
        The analysis rows (a new array).
    """
    X = np.array(X, dtype=float, order="C")
    if ordered:
        for j, k in enumerate(obs):
            regress(X, Yp[k], dY[k], None if rho is None else rho[:, j], True)
        return X
    mean = row_sums(X) / X.shape[1]
    A = X - mean[:, None]
    tmp = np.empty_like(A)
    for j, k in enumerate(obs):
        a = Yp[k] - Yp[k].mean()
        aa = float(a @ a)
        if aa == 0.0:  # a prior without spread: no regression (and zero increments)
            continue
        np.multiply(A, a / aa, out=tmp)
        b = row_sums(tmp)
        if rho is not None:
            b *= rho[:, j]
        dbar = dY[k].mean()
        A += np.multiply.outer(b, dY[k] - dbar, out=tmp)
        mean += b * dbar
    return A + mean[:, None]


@dataclass(frozen=True, eq=False)
class _ObsSpace:
    """Checked (and, for a full R, whitened) observation-space inputs shared by both paths."""

    Y: np.ndarray
    y: np.ndarray
    r: np.ndarray
    eps: np.ndarray | None
    loc: Localization | None
    obs_coords: np.ndarray | None
    index: ObsIndex | None

    def rho_obs(self, idx: np.ndarray, k: int) -> np.ndarray | None:
        """Taper between the observations ``idx`` and observation ``k`` (``None``: none)."""
        if self.loc is None or not self.loc.obs_obs:
            return None
        return self.loc.taper(self.obs_coords[idx], self.obs_coords[k:k + 1])[:, 0]

    def later_neighbours(self) -> list[np.ndarray] | None:
        """For each observation ``k``, the observations ``j > k`` its taper reaches (``None``: all)."""
        if self.loc is None or not self.loc.obs_obs:
            return None
        ptr, idx, _ = self.index.local(self.obs_coords, self.loc.radius)
        return [idx[ptr[k]:ptr[k + 1]][idx[ptr[k]:ptr[k + 1]] > k] for k in range(self.Y.shape[0])]


@dataclass(frozen=True, eq=False)
class RegressionUpdate(Update):
    """The row-wise half of :class:`RegressionFilter`: replays the regressions onto rows.

    Rows are handled in tiles (:func:`~fdassim.analysis.neighbours.row_tiles`), each replaying
    in index order only the observations whose taper reaches it: the others would add exact
    zeros, so each row's result is bitwise that of replaying every observation, and does not
    depend on its block.

    Parameters
    ----------
    Yp
        ``(m, N)``: row ``k`` is the prior of observation ``k`` when it was processed.
    dY
        ``(m, N)``: row ``k`` is its increments.
    localization
        The resolved localization, or ``None``.
    index
        KD-tree of the observation coordinates, or ``None`` without localization.
    tile
        Rows handled at once (see :class:`RegressionFilter`).
    """

    Yp: np.ndarray
    dY: np.ndarray
    localization: Localization | None
    index: ObsIndex | None
    tile: int = TILE
    ordered: bool = False

    def apply(self, X: np.ndarray, rows: Rows) -> np.ndarray:
        N = self.Yp.shape[1]
        X = check_rows(X, rows, N=N)
        Xa = X.copy()  # rows no observation reaches keep their values
        if self.localization is None:
            every = range(self.Yp.shape[0])
            for lo in range(0, X.shape[0], self.tile):
                Xa[lo:lo + self.tile] = regress_rows(X[lo:lo + self.tile], self.Yp, self.dY, every, None, self.ordered)
            return Xa
        coords = row_coordinates(rows, X.shape[0], self.index.coords.shape[1])
        for part, obs, rho in row_tiles(coords, self.index, self.localization.radius, self.tile * N):
            Xa[part] = regress_rows(X[part], self.Yp, self.dY, obs, rho, self.ordered)  # obs in index order
        return Xa


@dataclass(frozen=True)
class RegressionFilter(Scheme):
    """Sequential regression filter: EAKF or perturbed-observation increments (Anderson 2003).

    Parameters
    ----------
    increments
        :class:`Increments`, its value or its name: ``"eakf"`` (default) or ``"perturbed"``.
    localization
        ``None`` (default), a :class:`~fdassim.analysis.localization.Localization` or an
        :class:`~fdassim.analysis.localization.AdaptiveLocalization`; needs a diagonal R.
    tile
        Rows handled at once: the memory beyond the ensemble's rows is that of ``tile`` rows
        of ``N`` values.
    ordered
        Regress with sums over members in member order (bitwise the implementation without
        tiles) instead of holding each tile's rows as mean and anomalies with numpy's row
        sums (:func:`regress_rows`, faster); both are bitwise independent of the split.

    Raises
    ------
    ConfigError
        If an option has a value outside the allowed ones.
    """

    increments: Increments = Increments.EAKF
    localization: Localization | AdaptiveLocalization | None = None
    tile: int = option(TILE, ge=1)
    ordered: bool = False

    def observation_space(self, Y, y, R: ObsError, context: AnalysisContext) -> _ObsSpace:
        """Check the inputs, whiten a full R, resolve the localization and draw perturbations."""
        Y, y, R = check_observations(Y, y, R)
        m, N = Y.shape
        loc = self.localization
        if loc is not None and not (isinstance(loc, Localization) and loc.is_infinite) and not R.is_diagonal:
            raise ObservationError("the regression filter cannot localize with a full R: whitening mixes "
                                   "observations, which then have no location; use a diagonal R or "
                                   "localization=None")
        if not R.is_diagonal:
            Y, y, r = R.whiten(Y), R.whiten(y), np.ones(m)
        else:
            r = R.variances()
        loc = resolve_localization(loc, Y, context)
        if loc is not None and loc.is_infinite:
            loc = None
        oc = None if loc is None else np.asarray(context.obs_coords, dtype=float).reshape(m, -1)
        eps = context.perturbation_normals(m, N) if self.increments is Increments.PERTURBED else None
        return _ObsSpace(Y, y, r, eps, loc, oc, None if loc is None else ObsIndex(oc, loc.periodic))

    def prepare(self, Y, y, R: ObsError, context: AnalysisContext) -> RegressionUpdate:
        obs = self.observation_space(Y, y, R, context)
        m = obs.Y.shape[0]
        Yc = obs.Y.copy()
        Yp, dY = np.empty_like(Yc), np.empty_like(Yc)
        near = obs.later_neighbours()
        for k in range(m):
            Yp[k] = Yc[k]
            dY[k] = obs_increments(Yp[k], obs.y[k], obs.r[k], self.increments,
                                   None if obs.eps is None else obs.eps[k])
            if near is None:
                later = Yc[k + 1:]  # a view: updated in place
                regress(later, Yp[k], dY[k], None, self.ordered)
            elif near[k].size:  # only the later observations the taper reaches change
                later = Yc[near[k]]
                regress(later, Yp[k], dY[k], obs.rho_obs(near[k], k), self.ordered)
                Yc[near[k]] = later
        return RegressionUpdate(Yp, dY, obs.loc, obs.index, int(self.tile), self.ordered)


def _check_partition(blocks, size: int, name: str) -> list[np.ndarray]:
    out = [np.asarray(b, dtype=int).reshape(-1) for b in blocks]
    allidx = np.sort(np.concatenate(out)) if out else np.empty(0, int)
    if allidx.shape != (size,) or not np.array_equal(allidx, np.arange(size)):
        raise InputError(f"{name} must partition range({size}): every index exactly once")
    return out


def regression_parallel(X, Y, y, R: ObsError, state_blocks, obs_blocks, *,
                        scheme: RegressionFilter | None = None, rows: Rows | None = None,
                        context: AnalysisContext | None = None) -> np.ndarray:
    """The regression filter in the layout of Anderson & Collins (2007), simulated with numpy.

    Process ``p`` owns the state rows ``state_blocks[p]`` and the observation priors
    ``obs_blocks[p]`` (each with all members). For ``k = 0, 1, ..., m-1`` the owner of
    observation ``k`` computes its increments from its current prior and "broadcasts"
    ``(prior, increments)``; every process then regresses them onto its state rows and onto
    its priors of the observations ``j > k``. The result equals
    ``scheme.analyse(X, Y, y, R, rows, context)`` for any split.

    Parameters
    ----------
    X
        ``(n, N)`` forecast ensemble.
    Y, y, R
        Predicted observations, observations and their error covariance.
    state_blocks, obs_blocks
        Sequences of ``P`` index arrays (one per process; may be empty) partitioning
        ``range(n)`` and ``range(m)``.
    scheme
        The filter options (default ``RegressionFilter()``).
    rows
        Coordinates of the state rows (needed with localization).
    context
        Seed, cycle and observation coordinates.

    Returns
    -------
    numpy.ndarray
        ``(n, N)`` analysis ensemble.
    """
    scheme = scheme or RegressionFilter()
    context = context or AnalysisContext()
    X = check_ensemble(X)
    n, N = X.shape
    rows = rows or Rows.whole(n)
    if len(state_blocks) != len(obs_blocks):
        raise InputError(f"{len(state_blocks)} state blocks but {len(obs_blocks)} observation blocks: "
                         "give one of each per process")
    obs = scheme.observation_space(Y, y, R, context)
    if obs.Y.shape[1] != N:
        raise InputError(f"Y has {obs.Y.shape[1]} members but the ensemble has {N}")
    m = obs.Y.shape[0]
    sblocks = _check_partition(state_blocks, n, "state_blocks")
    oblocks = _check_partition(obs_blocks, m, "obs_blocks")
    owner, pos = np.empty(m, int), np.empty(m, int)
    for p, idx in enumerate(oblocks):
        owner[idx], pos[idx] = p, np.arange(idx.size)
    # each process: its state rows, their taper to every observation, its observation priors
    Xb = [X[idx].copy() for idx in sblocks]
    rho = [localized_rows(obs.loc, Rows(coords=None if rows.coords is None else rows.coords[idx]),
                          idx.size, obs.obs_coords) for idx in sblocks]
    Yb = [obs.Y[idx].copy() for idx in oblocks]
    sent = np.empty((2, m, N))  # the broadcast (prior, increments) of each observation
    for k in range(m):
        yk = Yb[owner[k]][pos[k]].copy()  # on the owner of k
        dy = obs_increments(yk, obs.y[k], obs.r[k], scheme.increments,
                            None if obs.eps is None else obs.eps[k])
        sent[:, k] = yk, dy
        for p in range(len(sblocks)):  # every process, with the broadcast (yk, dy): its later priors
            later = oblocks[p] > k
            if later.any():
                sub = Yb[p][later]
                regress(sub, yk, dy, obs.rho_obs(oblocks[p][later], k), scheme.ordered)
                Yb[p][later] = sub
    # and its state rows, which nothing else reads, with the same sequence of (yk, dy)
    Xa = np.empty_like(X)
    for idx, block, r in zip(sblocks, Xb, rho):
        Xa[idx] = regress_rows(block, sent[0], sent[1], range(m), r, scheme.ordered)
    return Xa
