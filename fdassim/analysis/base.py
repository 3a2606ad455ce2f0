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

What every scheme promises
--------------------------
* **Mean preservation.** A row without spread is left unchanged, and a transform keeps
  :math:`1^T W = 1^T` to round-off (:func:`preserve_mean`): the analysis of a state offset
  by :math:`10^8` with a spread of 1 is that of the centred state to a few units in the last
  place of the offset.
* **An observation whose prior has no spread** (its whitened predicted values are equal in
  every member) carries no information the ensemble can use: its gain is
  :math:`\mathrm{cov}(x, y_k) / (\ldots) = 0`. Every scheme, transform, localized or
  regression, leaves the ensemble as if it were absent (whatever its observed value), and
  raises no error.
* **Non-finite rows** raise :class:`~fdassim.errors.InputError` naming the members and rows,
  through one check, :func:`check_rows`, in every :meth:`Update.apply` and inflation.
* **Observation perturbations** of the stochastic schemes are the centred draws of
  :meth:`AnalysisContext.perturbation_normals`, shared by all of them.

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
from ..options import check_options
from ..streams import Stream, member_block
from .product import Product, ordered_product, rows_product

__all__ = [
    "ObsError",
    "Rows",
    "AnalysisContext",
    "Update",
    "TransformUpdate",
    "Scheme",
    "combine",
    "row_mean",
    "preserve_mean",
    "check_rows",
    "without_spread",
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

    def subset(self, keep) -> "ObsError":
        """The error covariance of the observations ``keep`` (indices or a boolean mask)."""
        keep = np.arange(self.m)[np.asarray(keep)]
        return ObsError(var=self.var[keep]) if self.is_diagonal else ObsError(cov=self.cov[np.ix_(keep, keep)])

    def uncorrelated(self) -> np.ndarray:
        """``(m,)`` bool: ``True`` where an observation's error is uncorrelated with every other's."""
        if self.is_diagonal:
            return np.ones(self.m, dtype=bool)
        off = self.cov - np.diag(np.diag(self.cov))
        return ~np.any(off != 0, axis=1)

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

    def perturbation_normals(self, m: int, N: int) -> np.ndarray:
        r"""``(m, N)`` centred standard normal draws of the observation perturbations.

        :meth:`standard_normal` of :attr:`~fdassim.streams.Stream.OBS_PERTURBATION` less its
        mean over members, :math:`Z - \bar Z 1^T`: every stochastic scheme (EnKF, localized
        EnKF, perturbed-obs regression filter) colours these, :math:`E = R^{1/2} Z` (or
        uses them whitened), so the perturbations never shift the analysis mean, the schemes
        see the same numbers, and ``LocalizedEnKF(Localization(inf))`` equals ``EnKF()``. For
        i.i.d. columns of covariance :math:`R`, :math:`\mathrm{E}[E E^T] / (N - 1) = R` still.
        """
        Z = self.standard_normal(m, N)
        return Z - Z.mean(axis=1, keepdims=True)


combine = ordered_product  # X W summed over members in order (no BLAS); see fdassim.analysis.product


def row_mean(X: np.ndarray) -> np.ndarray:
    """``(nb,)`` ensemble mean of each row, summed in member order (bitwise row-local)."""
    return combine(X, np.full((X.shape[1], 1), 1.0 / X.shape[1]))[:, 0]


def preserve_mean(W: np.ndarray) -> np.ndarray:
    r"""The transform ``W`` with the column means of :math:`W - I` removed.

    A transform maps a row with no spread (a constant :math:`c 1^T`) to itself, since its
    covariance with the observations is zero: :math:`1^T W = 1^T`. Every transform scheme
    satisfies it in exact arithmetic (their increments are :math:`\tilde S^T (\cdot)`, and
    :math:`\tilde S 1 = 0`); in floating point the columns of :math:`W - I` sum to round-off
    errors :math:`\delta_j`, which an offset :math:`c` of the state turns into errors
    :math:`c \delta_j` of member ``j`` (Sakov & Oke 2008 note the same for the mean). Removing
    them keeps the analysis of a state far from zero (e.g. :math:`10^8` with a spread of 1)
    accurate to a few units in the last place of the offset.
    """
    N = W.shape[0]
    M = W - np.eye(N)
    M -= M.mean(axis=0, keepdims=True)
    M[np.diag_indices(N)] += 1.0
    return M


def check_rows(X, rows: Rows | None = None, N: int | None = None, name: str = "X") -> np.ndarray:
    """Check that ``X`` is a finite ``(nb, N)`` block of ensemble rows; return it as floats.

    The one check of the rows entering an analysis or an inflation: every
    :meth:`Update.apply` and :class:`~fdassim.inflation.Inflation` calls it.

    Raises
    ------
    InputError
        Naming the problem: not 2-D, fewer than 2 members or not ``N``, NaN/Inf (with the
        first offending members and global rows).
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise InputError(f"{name} must be 2-D (rows x members), got shape {X.shape}")
    if X.shape[1] < 2:
        raise InputError(f"{name} has {X.shape[1]} member(s); an ensemble needs at least 2")
    if N is not None and X.shape[1] != N:
        raise InputError(f"{name} has {X.shape[1]} members but the update was prepared for {N}")
    if not np.isfinite(X.sum()):  # one cheap pass; locate the culprits only when something is wrong
        bad = ~np.isfinite(X)
        if bad.any():
            members, rws = np.flatnonzero(bad.any(axis=0)), np.flatnonzero(bad.any(axis=1))
            start = rows.start if rows is not None else 0
            raise InputError(
                f"{name} has NaN or Inf values in member(s) {members[:10].tolist()}"
                f"{' ...' if members.size > 10 else ''} at row(s) {(rws[:10] + start).tolist()}"
                f"{' ...' if rws.size > 10 else ''} of the state"
            )
    return X


class Update(ABC):
    """The row-wise half of an analysis: maps forecast rows to analysis rows."""

    @abstractmethod
    def apply(self, X: np.ndarray, rows: Rows) -> np.ndarray:
        """Return the analysis of the ``(nb, N)`` forecast rows ``X`` described by ``rows``.

        Must not modify ``X``. The result of a row must depend on that row alone. Checks
        ``X`` with :func:`check_rows`.
        """


@dataclass(frozen=True, eq=False)
class TransformUpdate(Update):
    r"""An analysis that is a combination of the members: :math:`X^a = X^f W`.

    Parameters
    ----------
    W
        ``(N, N)`` transform; stored mean-preserving (:func:`preserve_mean`).
    product
        How :math:`X W` is formed on a block of rows (:class:`~fdassim.analysis.product.Product`):
        ``TILED`` (default, BLAS on fixed global row tiles) or ``ORDERED`` (no BLAS); both
        are bitwise independent of the split of the rows.

    Raises
    ------
    InputError
        If ``W`` is not a finite square matrix, or ``product`` is not a ``Product``.
    """

    W: np.ndarray
    product: Product = Product.TILED

    def __post_init__(self):
        W = np.asarray(self.W, dtype=float)
        if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] < 2:
            raise InputError(f"a transform must be a square (N, N) matrix with N >= 2, got shape {W.shape}")
        if not np.all(np.isfinite(W)):
            raise InputError("the transform W has NaN or Inf entries: the analysis failed")
        if not isinstance(self.product, Product):
            raise InputError(f"product must be one of {', '.join(f'Product.{p.name}' for p in Product)}, "
                             f"got {self.product!r}")
        object.__setattr__(self, "W", preserve_mean(W))

    def apply(self, X: np.ndarray, rows: Rows | None = None) -> np.ndarray:
        X = check_rows(X, rows, N=self.W.shape[0])
        return rows_product(X, self.W, 0 if rows is None else rows.start, self.product)


class Scheme(ABC):
    """An analysis scheme. Subclasses are frozen dataclasses whose fields are its options.

    Options are typed fields, with bounds given by :func:`fdassim.options.option`, converted
    and checked by :func:`fdassim.options.check_options` here (a subclass with its own
    ``__post_init__`` calls ``super().__post_init__()`` first, then checks what involves
    several options).
    """

    def __post_init__(self):
        check_options(self)

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


def without_spread(Y: np.ndarray, R: ObsError) -> np.ndarray:
    """``(m,)`` bool: observations that carry no information the ensemble can use.

    Those whose predicted values are equal in every member and whose error is uncorrelated
    with the others' (see "What every scheme promises" above). A scheme whose formula does not
    ignore them by itself (Evensen's ``C = S + E`` form, through the cross terms of ``E``)
    drops them.
    """
    return (Y.max(axis=1) == Y.min(axis=1)) & R.uncorrelated()


def check_ensemble(X, name: str = "X") -> np.ndarray:
    """Check that ``X`` is a finite ``(n, N)`` ensemble with ``N >= 2``; return it as floats.

    :func:`check_rows` of the whole ensemble (the one check of rows entering an analysis).
    """
    return check_rows(X, name=name)


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
