r"""Covariance inflation: keep the ensemble spread from collapsing.

An :class:`Inflation` acts at three points of an assimilation cycle:

1. :meth:`Inflation.prior` on the forecast rows, before the analysis;
2. :meth:`Inflation.prior_obs` on the predicted observations ``Y = H(X)`` when they were
   computed from the *un-inflated* forecast: it applies the matching change, exact for a
   linear ``H`` (the serial twin, :mod:`fdassim.twin`, recomputes ``Y`` instead);
3. :meth:`Inflation.posterior` on the analysis rows, knowing the forecast rows that entered
   the analysis.

Like :meth:`fdassim.analysis.base.Update.apply`, every method works on *rows* (a block
``X`` of ``nb`` state variables with all ``N`` members, described by
:class:`~fdassim.analysis.base.Rows`) and the result of a row depends on that row alone, so
it is the same for any split of the state over processes. Row means and variances are summed
over members in a fixed order for that reason (see :func:`_row_mean`). Random numbers come
from the :attr:`~fdassim.streams.Stream.ADDITIVE` stream of :mod:`fdassim.streams` only.

The base class is the identity. Implemented:

========================  =============================================================
:class:`Multiplicative`   :math:`A \leftarrow \lambda A`, at the prior or the posterior
:class:`Additive`         Gaussian noise added to each analysis member
:class:`RTPS`             relaxation to prior spread (Whitaker & Hamill 2012)
:class:`RTPP`             relaxation to prior perturbations (Zhang et al. 2004)
:class:`Chain`            several of the above, in order
========================  =============================================================

The adaptive finite-size inflation (EnKF-N) is a scheme, :mod:`fdassim.analysis.enkf_n`.

Notation: ``X`` rows of the ensemble, :math:`\bar x` their member mean,
:math:`A = X - \bar x` the anomalies, superscripts ``f`` (forecast, prior) and ``a``
(analysis, posterior), :math:`\sigma` the ensemble standard deviation of a row.

References
----------
Anderson, J. L. and Anderson, S. L. (1999). A Monte Carlo implementation of the nonlinear
filtering problem to produce ensemble assimilations and forecasts. Mon. Wea. Rev. 127,
2741-2758. https://doi.org/10.1175/1520-0493(1999)127<2741:AMCIOT>2.0.CO;2

Zhang, F., Snyder, C. and Sun, J. (2004). Impacts of initial estimate and observation
availability on convective-scale data assimilation with an ensemble Kalman filter. Mon. Wea.
Rev. 132, 1238-1253. https://doi.org/10.1175/1520-0493(2004)132<1238:IOIEAO>2.0.CO;2

Whitaker, J. S. and Hamill, T. M. (2012). Evaluating methods to account for system errors in
ensemble data assimilation. Mon. Wea. Rev. 140, 3078-3089.
https://doi.org/10.1175/MWR-D-11-00276.1
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from .analysis.base import AnalysisContext, Rows, check_rows
from .errors import InputError, OptionError
from .options import check_options, option
from .streams import Stream, row_normals

__all__ = ["Stage", "Inflation", "Multiplicative", "Additive", "RTPS", "RTPP", "Chain"]


class Stage(Enum):
    """Where a multiplicative inflation acts: on the forecast or on the analysis."""

    PRIOR = "prior"
    POSTERIOR = "posterior"


# ---------------------------------------------------------------------------------------
# Row statistics summed over members in a fixed order (split-invariant, like combine)
# ---------------------------------------------------------------------------------------
def _row_mean(X: np.ndarray) -> np.ndarray:
    """``(nb, 1)`` member mean of each row, summed for members ``0, 1, ..., N-1`` in order."""
    s = X[:, 0].copy()
    for i in range(1, X.shape[1]):
        s += X[:, i]
    return (s / X.shape[1])[:, None]


def _row_std(A: np.ndarray) -> np.ndarray:
    """``(nb, 1)`` ensemble standard deviation (divisor ``N - 1``) of anomaly rows ``A``."""
    s = A[:, 0] ** 2
    for i in range(1, A.shape[1]):
        s += A[:, i] ** 2
    return np.sqrt(s / (A.shape[1] - 1))[:, None]


def _per_row(value: float, value_param: float | None, rows: Rows, nb: int) -> np.ndarray | float:
    """``value`` for state rows, ``value_param`` (default ``value``) where ``rows.is_param``."""
    if value_param is None or value_param == value or rows.is_param is None:
        return value
    if rows.is_param.shape != (nb,):
        raise InputError(f"rows.is_param has shape {rows.is_param.shape} but the block has {nb} rows")
    return np.where(rows.is_param, value_param, value)[:, None]


# ---------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inflation:
    """No inflation; the base of every inflation. Subclasses override what they change.

    None of the methods modifies its arguments. Options are typed fields checked by
    :func:`fdassim.options.check_options` (bounds from :func:`fdassim.options.option`).
    """

    def __post_init__(self):
        check_options(self)

    def prior(self, X: np.ndarray, rows: Rows) -> np.ndarray:
        """Inflate the ``(nb, N)`` forecast rows ``X`` before the analysis."""
        return X

    def prior_obs(self, Y: np.ndarray) -> np.ndarray:
        """The change :meth:`prior` makes to ``Y = H(X)``, applied to ``(m, N)`` ``Y``.

        Use it when ``Y`` was computed from the un-inflated forecast. Exact for a linear ``H``.
        """
        return Y

    def posterior(self, Xa: np.ndarray, Xf: np.ndarray, rows: Rows, context: AnalysisContext) -> np.ndarray:
        """Inflate the ``(nb, N)`` analysis rows ``Xa``.

        Parameters
        ----------
        Xa
            Analysis rows.
        Xf
            The forecast rows that entered the analysis (after :meth:`prior`).
        rows
            Description of the rows (start, total length, parameter mask).
        context
            Seed and cycle, for random draws.
        """
        return Xa


@dataclass(frozen=True)
class Multiplicative(Inflation):
    r"""Multiplicative inflation of the anomalies (Anderson & Anderson 1999).

    .. math::
        x_i \leftarrow \bar x + \lambda (x_i - \bar x)

    with :math:`\lambda` = ``lam`` for state rows and ``lam_param`` for parameter rows
    (``rows.is_param``). At :attr:`Stage.PRIOR` it inflates the forecast (and
    :meth:`prior_obs` scales the anomalies of ``Y`` by ``lam``, exact when ``H`` reads no
    parameter or ``lam_param == lam``); at :attr:`Stage.POSTERIOR` the analysis.

    Parameters
    ----------
    lam
        Factor for state rows, finite and ``>= 1``.
    lam_param
        Factor for parameter rows; ``None`` means ``lam``.
    stage
        :attr:`Stage.PRIOR` (default) or :attr:`Stage.POSTERIOR` (or their values
        ``"prior"``, ``"posterior"``).

    Raises
    ------
    ConfigError
        If a factor is below 1 or not finite, or ``stage`` is unknown.
    """

    lam: float = option(1.0, ge=1)
    lam_param: float | None = option(None, ge=1)
    stage: Stage = Stage.PRIOR

    def _inflate(self, X: np.ndarray, rows: Rows) -> np.ndarray:
        X = check_rows(X, rows)
        lam = _per_row(self.lam, self.lam_param, rows, X.shape[0])
        xm = _row_mean(X)
        return xm + lam * (X - xm)

    def prior(self, X, rows):
        return self._inflate(X, rows) if self.stage is Stage.PRIOR else X

    def prior_obs(self, Y):
        if self.stage is not Stage.PRIOR or self.lam == 1:
            return Y
        Y = check_rows(Y, name="Y")
        ym = _row_mean(Y)
        return ym + self.lam * (Y - ym)

    def posterior(self, Xa, Xf, rows, context):
        return self._inflate(Xa, rows) if self.stage is Stage.POSTERIOR else Xa


@dataclass(frozen=True, eq=False)
class Additive(Inflation):
    r"""Additive inflation: independent Gaussian noise added to each analysis member.

    .. math::
        x^a_i \leftarrow x^a_i + \eta_i, \qquad \eta_i \sim \mathcal N(0, \operatorname{diag}(s^2))

    Member ``i``'s noise does not depend on how the state is split into row blocks: it is
    :func:`fdassim.streams.row_normals` of the :attr:`~fdassim.streams.Stream.ADDITIVE`
    stream for ``(seed, cycle, i)`` at the global rows ``rows.start : rows.start + nb``,
    drawn in fixed parts of the state vector, so a block costs about its own size.

    It acts on the posterior only (the prior interface has no cycle to seed from), i.e. it
    models error added during the next forecast.

    Parameters
    ----------
    std
        Noise standard deviation :math:`s`: a scalar, or ``(n,)`` values, one per state row
        (global indexing), all finite and ``>= 0``.

    Raises
    ------
    ConfigError
        If a standard deviation is negative or not finite.
    """

    std: float | tuple[float, ...] = option(0.0, ge=0)

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.std, tuple):  # one per state row: kept as an array
            object.__setattr__(self, "std", np.array(self.std))

    def posterior(self, Xa, Xf, rows, context):
        Xa = check_rows(Xa, rows, name="Xa")
        nb, N = Xa.shape
        if rows.total is None:
            raise InputError("Additive inflation needs rows.total (the state length) to draw "
                             "split-invariant noise; build rows with Rows.whole(n) or Rows(start, total)")
        lo, hi = rows.start, rows.start + nb
        if hi > rows.total:
            raise InputError(f"rows {lo}:{hi} exceed rows.total = {rows.total}")
        if np.ndim(self.std) == 1:
            if self.std.shape != (rows.total,):
                raise InputError(f"Additive: std has {self.std.size} values but the state has {rows.total} rows")
            s = self.std[lo:hi]
        else:
            s = self.std
        if np.all(s == 0):
            return Xa
        out = Xa.copy()
        for i in range(N):
            out[:, i] += s * row_normals(context.seed, Stream.ADDITIVE, context.cycle, i, lo, hi)
        return out


@dataclass(frozen=True)
class _Relaxation(Inflation):
    """Shared plumbing of RTPS and RTPP: options, checks, and the row means kept fixed."""

    alpha: float = option(0.5, ge=0, le=1)
    alpha_param: float | None = option(None, ge=0, le=1)

    def posterior(self, Xa, Xf, rows, context):
        Xa, Xf = check_rows(Xa, rows, name="Xa"), check_rows(Xf, rows, name="Xf")
        if Xa.shape != Xf.shape:
            raise InputError(f"{type(self).__name__}: analysis rows {Xa.shape} and forecast rows "
                             f"{Xf.shape} differ in shape")
        alpha = _per_row(self.alpha, self.alpha_param, rows, Xa.shape[0])
        xm = _row_mean(Xa)
        return xm + self._relax(Xa - xm, Xf - _row_mean(Xf), alpha)

    def _relax(self, Aa: np.ndarray, Af: np.ndarray, alpha) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class RTPS(_Relaxation):
    r"""Relaxation to prior spread (Whitaker & Hamill 2012, eq. 3).

    Each row's analysis anomalies are rescaled so that their spread moves a fraction
    :math:`\alpha` back toward the forecast spread:

    .. math::
        A^a \leftarrow A^a \left(\alpha \frac{\sigma^f - \sigma^a}{\sigma^a} + 1\right)

    A row whose analysis spread is zero is left unchanged.

    Parameters
    ----------
    alpha
        Relaxation :math:`\alpha \in [0, 1]` for state rows (0: none, 1: back to the prior spread).
    alpha_param
        Relaxation for parameter rows; ``None`` means ``alpha``.

    Raises
    ------
    ConfigError
        If a relaxation is outside ``[0, 1]`` or not finite.

    References
    ----------
    Whitaker, J. S. and Hamill, T. M. (2012). Mon. Wea. Rev. 140, 3078-3089.
    https://doi.org/10.1175/MWR-D-11-00276.1
    """

    def _relax(self, Aa, Af, alpha):
        sa, sf = _row_std(Aa), _row_std(Af)
        ok = sa > 0
        return np.where(ok, alpha * (sf - sa) / np.where(ok, sa, 1.0) + 1.0, 1.0) * Aa


@dataclass(frozen=True)
class RTPP(_Relaxation):
    r"""Relaxation to prior perturbations (Zhang et al. 2004, eq. 5).

    .. math::
        A^a \leftarrow (1 - \alpha) A^a + \alpha A^f

    keeping the analysis mean.

    Parameters
    ----------
    alpha
        Relaxation :math:`\alpha \in [0, 1]` for state rows.
    alpha_param
        Relaxation for parameter rows; ``None`` means ``alpha``.

    Raises
    ------
    ConfigError
        If a relaxation is outside ``[0, 1]`` or not finite.

    References
    ----------
    Zhang, F., Snyder, C. and Sun, J. (2004). Mon. Wea. Rev. 132, 1238-1253.
    https://doi.org/10.1175/1520-0493(2004)132<1238:IOIEAO>2.0.CO;2
    """

    def _relax(self, Aa, Af, alpha):
        return (1 - alpha) * Aa + alpha * Af


@dataclass(frozen=True)
class Chain(Inflation):
    """Several inflations applied in order at each stage.

    ``Chain((Multiplicative(1.02), RTPS(0.5)))`` inflates the prior by 1.02 and relaxes the
    analysis spread toward that inflated prior.

    Parameters
    ----------
    items
        The inflations, applied first to last (each stage sees the previous one's output).

    Raises
    ------
    ConfigError
        If an item is not an :class:`Inflation`.
    """

    items: tuple[Inflation, ...] = ()

    def __post_init__(self):
        items = tuple(self.items)
        for k, item in enumerate(items):  # a container of objects: checked by type, before check_options
            if not isinstance(item, Inflation):
                raise OptionError("Chain", f"items[{k}]", f"must be an Inflation, got {type(item).__name__}")
        object.__setattr__(self, "items", items)
        super().__post_init__()

    def prior(self, X, rows):
        for item in self.items:
            X = item.prior(X, rows)
        return X

    def prior_obs(self, Y):
        for item in self.items:
            Y = item.prior_obs(Y)
        return Y

    def posterior(self, Xa, Xf, rows, context):
        for item in self.items:
            Xa = item.posterior(Xa, Xf, rows, context)
        return Xa
