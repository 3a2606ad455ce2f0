r"""The vocabulary every analysis scheme shares.

An analysis scheme maps a forecast ensemble and observations to an analysis ensemble. Every
scheme in :mod:`fdassim.analysis` is split in two steps so that one parallel mechanism can
apply any of them to distributed members:

1. :meth:`Scheme.prepare` works in observation space only. It takes the predicted
   observations ``Y`` (``m x N``, ``Y[:, i] = H(x_i)``), the observations ``y``, their error
   covariance ``R`` and an :class:`AnalysisContext` (seed, cycle, observation coordinates),
   and returns an :class:`Update`. Its inputs are small and identical on every rank, and it
   is computed identically everywhere.
2. :meth:`Update.apply` works on *rows*: a block ``X`` (``nb x N``) of state variables with
   all ``N`` members (an "ensemble-complete" block, Anderson & Collins 2007), described by
   :class:`Rows` (coordinates, parameter mask). It returns the analysis rows. The result for
   a row depends only on that row, never on which other rows share its block, so the
   analysis is the same for any split of the state over processes.

Schemes whose analysis is a linear combination of the forecast members return a
:class:`TransformUpdate` holding the ``N x N`` transform ``W`` with :math:`X^a = X^f W`;
localized and sequential schemes return their own :class:`Update`.

Glossary (the notation of Evensen 2003 and Sakov & Oke 2008)
------------------------------------------------------------
``N``  ensemble size, ``N1 = N - 1``
``X``  ``(n, N)`` ensemble, one column per member
``A``  ``(n, N)`` anomalies, ``X - mean(X)``
``Y``  ``(m, N)`` predicted observations (``HX``)
``S``  ``(m, N)`` observation-space anomalies, ``Y - mean(Y)``
``y``  ``(m,)`` observations
``R``  :class:`ObsError`, the observation-error covariance
``E``  ``(m, N)`` observation perturbations, ``D = y + E``
``W``  ``(N, N)`` transform, ``Xa = X @ W``

References
----------
Evensen, G. (2003). The Ensemble Kalman Filter: theoretical formulation and practical
implementation. Ocean Dynamics 53, 343-367. https://doi.org/10.1007/s10236-003-0036-9

Anderson, J. L. and Collins, N. (2007). Scalable implementations of ensemble filter
algorithms for data assimilation. J. Atmos. Oceanic Technol. 24, 1452-1463.
https://doi.org/10.1175/JTECH2049.1
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ObservationError
from ..streams import Stream, member_block

__all__ = [
    "ObsError",
    "Rows",
    "AnalysisContext",
    "Update",
    "TransformUpdate",
    "Scheme",
    "combine",
    "row_mean",
    "check_ensemble",
    "check_observations",
]


@dataclass(frozen=True, eq=False)
class ObsError:
    r"""A Gaussian observation-error covariance :math:`R`, diagonal or full.

    Build it with :meth:`diagonal`, :meth:`from_std` or :meth:`full`; the constructor checks
    that it is positive definite.

    Parameters
    ----------
    var
        ``(m,)`` variances, for a diagonal :math:`R`; or ``None``.
    cov
        ``(m, m)`` symmetric positive-definite matrix, for a full :math:`R`; or ``None``.

    Raises
    ------
    ObservationError
        If both or neither of ``var`` and ``cov`` are given, a variance is not positive and
        finite, or ``cov`` is not symmetric positive definite.
    """

    var: np.ndarray | None = None
    cov: np.ndarray | None = None
    _chol: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if (self.var is None) == (self.cov is None):
            raise ObservationError("ObsError needs exactly one of var (diagonal) or cov (full)")
        if self.var is not None:
            var = np.atleast_1d(np.asarray(self.var, dtype=float))
            if var.ndim != 1:
                raise ObservationError(f"observation-error variances must be a vector, got shape {var.shape}")
            bad = ~(np.isfinite(var) & (var > 0))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ObservationError(
                    f"observation-error variance must be positive and finite: "
                    f"entry {i} is {float(var[i])!r} ({int(bad.sum())} bad of {var.size})"
                )
            object.__setattr__(self, "var", var)
        else:
            cov = np.asarray(self.cov, dtype=float)
            if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
                raise ObservationError(f"observation-error covariance must be square, got shape {cov.shape}")
            if not np.all(np.isfinite(cov)):
                raise ObservationError("observation-error covariance has NaN or Inf entries")
            if not np.allclose(cov, cov.T, rtol=1e-10, atol=0):
                raise ObservationError("observation-error covariance is not symmetric")
            try:
                chol = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ObservationError("observation-error covariance is not positive definite") from None
            object.__setattr__(self, "cov", cov)
            object.__setattr__(self, "_chol", chol)

    @classmethod
    def diagonal(cls, var) -> "ObsError":
        """Diagonal :math:`R` from variances (a scalar is broadcast by :meth:`expand`)."""
        return cls(var=var)

    @classmethod
    def from_std(cls, std) -> "ObsError":
        """Diagonal :math:`R` from standard deviations."""
        std = np.atleast_1d(np.asarray(std, dtype=float))
        if not np.all(np.isfinite(std) & (std > 0)):
            raise ObservationError(f"observation-error standard deviations must be positive and finite, got {std!r}")
        return cls(var=std**2)

    @classmethod
    def full(cls, cov) -> "ObsError":
        """Full :math:`R` from a symmetric positive-definite matrix."""
        return cls(cov=cov)

    @property
    def m(self) -> int:
        """Number of observations."""
        return self.var.size if self.var is not None else self.cov.shape[0]

    @property
    def is_diagonal(self) -> bool:
        return self.var is not None

    def expand(self, m: int) -> "ObsError":
        """Return ``self`` for ``m`` observations, broadcasting a single variance."""
        if self.m == m:
            return self
        if self.is_diagonal and self.m == 1:
            return ObsError(var=np.full(m, self.var[0]))
        raise ObservationError(f"R is for {self.m} observations but there are {m}")

    def matrix(self) -> np.ndarray:
        """The dense ``(m, m)`` matrix."""
        return np.diag(self.var) if self.is_diagonal else self.cov

    def variances(self) -> np.ndarray:
        """The ``(m,)`` diagonal."""
        return self.var if self.is_diagonal else np.diag(self.cov).copy()

    def whiten(self, v: np.ndarray) -> np.ndarray:
        r"""Apply :math:`R^{-1/2}` (the inverse Cholesky factor) to ``v`` of shape ``(m,)`` or ``(m, k)``."""
        if self.is_diagonal:
            s = np.sqrt(self.var)
            return v / (s if v.ndim == 1 else s[:, None])
        from scipy.linalg import solve_triangular

        return solve_triangular(self._chol, v, lower=True)

    def color(self, z: np.ndarray) -> np.ndarray:
        r"""Apply :math:`R^{1/2}` (the Cholesky factor) to ``z`` of shape ``(m,)`` or ``(m, k)``."""
        if self.is_diagonal:
            s = np.sqrt(self.var)
            return z * (s if z.ndim == 1 else s[:, None])
        return self._chol @ z

    def solve(self, v: np.ndarray) -> np.ndarray:
        r"""Apply :math:`R^{-1}` to ``v``."""
        return self.whiten(self.whiten(v)) if self.is_diagonal else self._solve_full(v)

    def _solve_full(self, v):
        from scipy.linalg import cho_solve

        return cho_solve((self._chol, True), v)


@dataclass(frozen=True, eq=False)
class Rows:
    """What the analysis knows of a block of state variables (rows of ``X``).

    Parameters
    ----------
    start
        Global index of the block's first row in the state vector.
    total
        Length ``n`` of the whole state vector (``None`` when unknown).
    coords
        ``(nb, d)`` physical coordinates of each row, for localization; or ``None``.
    is_param
        ``(nb,)`` bool, ``True`` where the row is a parameter (for separate inflation); or
        ``None`` when every row is a state variable.
    """

    start: int = 0
    total: int | None = None
    coords: np.ndarray | None = None
    is_param: np.ndarray | None = None

    @classmethod
    def whole(cls, n: int, coords=None, is_param=None) -> "Rows":
        """Rows describing a whole state vector of length ``n``."""
        rows = cls(0, n, None if coords is None else np.asarray(coords, dtype=float).reshape(n, -1),
                   None if is_param is None else np.asarray(is_param, dtype=bool))
        if rows.is_param is not None and rows.is_param.shape != (n,):
            raise InputError(f"is_param must have shape ({n},), got {rows.is_param.shape}")
        return rows

    def block(self, lo: int, hi: int) -> "Rows":
        """The rows ``lo:hi`` of this block (indices relative to the block)."""
        return Rows(self.start + lo, self.total,
                    None if self.coords is None else self.coords[lo:hi],
                    None if self.is_param is None else self.is_param[lo:hi])


@dataclass(frozen=True)
class AnalysisContext:
    """What an analysis may depend on beside the ensemble and the observations.

    Parameters
    ----------
    seed
        The user's seed. Random numbers come from :mod:`fdassim.streams`, seeded by
        ``(seed, stream, cycle, member)``, never by the process rank.
    cycle
        Index of the assimilation cycle.
    obs_coords
        ``(m, d)`` physical coordinates of the observations, for localization; or ``None``.
    periodic
        The periods of the model's domain, one entry per coordinate axis (``None`` for a
        non-periodic axis), from its :class:`~fdassim.geometry.Geometry`; ``None`` when the
        model states no geometry. Localizations take them as their default.
    """

    seed: int = 1
    cycle: int = 0
    obs_coords: np.ndarray | None = None
    periodic: tuple | None = None

    def standard_normal(self, m: int, N: int, stream: Stream = Stream.OBS_PERTURBATION) -> np.ndarray:
        """``(m, N)`` standard normal draws of the ``N`` members for this cycle.

        The member block of :func:`fdassim.streams.member_block`: one generator per
        ``(seed, stream, cycle)`` draws member after member, column ``i`` being member ``i``'s
        values. The observation-space work of an analysis runs on every rank with the same
        inputs, so every rank draws the same block; it depends on the seed, the cycle, the
        member and ``m``, never on the rank or on how members are dealt.
        """
        return member_block(self.seed, stream, self.cycle, m, N)


def combine(X: np.ndarray, W: np.ndarray, tile: int = 2048) -> np.ndarray:
    r"""Form :math:`X W`, summing over members in a fixed order.

    Row ``r`` of the result is :math:`\sum_{i=0}^{N-1} X_{ri} W_{ij}` accumulated for
    ``i = 0, 1, ..., N-1`` by elementwise operations, so it is bitwise the same whichever
    rows share the block (unlike a BLAS product, whose summation order may depend on the
    matrix shape). Rows are processed in tiles of ``tile`` to stay in cache.

    Parameters
    ----------
    X
        ``(nb, N)`` rows of the ensemble.
    W
        ``(N, K)`` weights.

    Returns
    -------
    numpy.ndarray
        ``(nb, K)`` combination.
    """
    X = np.asarray(X, dtype=float)
    W = np.asarray(W, dtype=float)
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0]:
        raise InputError(f"cannot combine rows of shape {X.shape} with weights of shape {W.shape}")
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


def row_mean(X: np.ndarray) -> np.ndarray:
    """``(nb,)`` ensemble mean of each row, summed in member order (bitwise row-local)."""
    return combine(X, np.full((X.shape[1], 1), 1.0 / X.shape[1]))[:, 0]


class Update(ABC):
    """The row-wise half of an analysis: maps forecast rows to analysis rows."""

    @abstractmethod
    def apply(self, X: np.ndarray, rows: Rows) -> np.ndarray:
        """Return the analysis of the ``(nb, N)`` forecast rows ``X`` described by ``rows``.

        Must not modify ``X``. The result of a row must depend on that row alone.
        """


@dataclass(frozen=True, eq=False)
class TransformUpdate(Update):
    r"""An analysis that is a combination of the members: :math:`X^a = X^f W`.

    Parameters
    ----------
    W
        ``(N, N)`` transform.
    """

    W: np.ndarray

    def apply(self, X: np.ndarray, rows: Rows | None = None) -> np.ndarray:
        return combine(X, self.W)


class Scheme(ABC):
    """An analysis scheme. Subclasses are frozen dataclasses whose fields are its options."""

    @abstractmethod
    def prepare(self, Y: np.ndarray, y: np.ndarray, R: ObsError, context: AnalysisContext) -> Update:
        """Do the observation-space work of the analysis and return the row-wise update.

        Parameters
        ----------
        Y
            ``(m, N)`` predicted observations, ``Y[:, i] = H(x_i)``.
        y
            ``(m,)`` observations.
        R
            Observation-error covariance.
        context
            Seed, cycle and observation coordinates.
        """

    def analyse(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        y: np.ndarray,
        R: ObsError,
        rows: Rows | None = None,
        context: AnalysisContext | None = None,
    ) -> np.ndarray:
        """The whole analysis on one array: ``prepare`` then ``apply`` to all rows of ``X``.

        Parameters
        ----------
        X
            ``(n, N)`` forecast ensemble.
        Y, y, R, context
            As for :meth:`prepare`.
        rows
            Description of the rows of ``X`` (default: no coordinates, no parameters).

        Returns
        -------
        numpy.ndarray
            ``(n, N)`` analysis ensemble.
        """
        X = check_ensemble(X)
        Y, y, R = check_observations(Y, y, R, N=X.shape[1])
        context = context or AnalysisContext()
        return self.prepare(Y, y, R, context).apply(X, rows or Rows.whole(X.shape[0]))


def check_ensemble(X, name: str = "X") -> np.ndarray:
    """Check that ``X`` is a finite ``(n, N)`` ensemble with ``N >= 2``; return it as floats.

    Raises
    ------
    InputError
        Naming the problem: wrong dimensions, too few members, NaN/Inf (with the first
        offending member).
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise InputError(f"{name} must be 2-D (variables x members), got shape {X.shape}")
    if X.shape[1] < 2:
        raise InputError(f"{name} has {X.shape[1]} member(s); an ensemble needs at least 2")
    bad = ~np.isfinite(X)
    if bad.any():
        members = np.flatnonzero(bad.any(axis=0))
        raise InputError(
            f"{name} has NaN or Inf values in member(s) {members[:10].tolist()}"
            f"{' ...' if members.size > 10 else ''}"
        )
    return X


def check_observations(Y, y, R: ObsError, N: int | None = None):
    """Check predicted observations ``Y``, observations ``y`` and ``R`` against each other.

    Returns ``(Y, y, R)`` as float arrays, with a single variance in ``R`` broadcast to ``m``.

    Raises
    ------
    InputError
        If ``Y`` is not ``(m, N)`` or has NaN/Inf.
    ObservationError
        If ``y`` has the wrong length or NaN/Inf, or ``R`` has the wrong size.
    """
    Y = check_ensemble(Y, name="Y (predicted observations)")
    if N is not None and Y.shape[1] != N:
        raise InputError(f"Y has {Y.shape[1]} members but the ensemble has {N}")
    y = np.asarray(y, dtype=float).reshape(-1)
    if y.shape != (Y.shape[0],):
        raise ObservationError(f"y has {y.size} observations but Y predicts {Y.shape[0]}")
    if not np.all(np.isfinite(y)):
        raise ObservationError(f"observations y have NaN or Inf at {np.flatnonzero(~np.isfinite(y))[:10].tolist()}")
    if not isinstance(R, ObsError):
        raise ObservationError(f"R must be an ObsError (ObsError.diagonal, from_std or full), got {type(R).__name__}")
    return Y, y, R.expand(Y.shape[0])
