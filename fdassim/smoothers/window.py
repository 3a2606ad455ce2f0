r"""Fixed-lag data assimilation windows (DAW): lag ``L``, shift ``S`` and the MDA weights.

A run has observation times :math:`t_1, \dots, t_K` after the initial time :math:`t_0`
(``times[j]``, ``j = 0, ..., K``). Window ``c`` starts at :math:`t_{a}`, ``a = c S``, and holds
the ``L`` observations at :math:`t_{a+1}, \dots, t_{a+L}` (Grudzien & Bocquet 2022, Sect. 2;
Bocquet & Sakov 2014):

- the *new* observations of window ``c`` are those no earlier window held: all ``L`` in the
  first window, the last ``S`` afterwards;
- at the end of window ``c`` the states at :math:`t_a, \dots, t_{a+S-1}` leave the window: their
  smoother estimate is final, conditioned on every observation up to :math:`t_{a+L}`;
- the next window starts at :math:`t_{a+S}`;
- windows are run while they fit in the ``K`` observations, ``a + L <= K``.

Multiple data assimilation (MDA; Emerick & Reynolds 2013) assimilates each observation in
every window that holds it, with its error covariance inflated so that the weights
:math:`\beta` (inverse inflation factors of :math:`R`) of one observation add up to one:

.. math::
    \beta^{\mathrm{MDA}}_j = 1 / n_j, \qquad n_j = \#\{c \ge 0 : cS < j \le cS + L\},

which is :math:`S/L` once the windows are full and :math:`L` a multiple of :math:`S`. A
window's initial ensemble then holds the fraction :math:`p_{c,j}/n_j` of observation ``j``
(:math:`p_{c,j}` windows before ``c`` held it). The *balancing* stage of the SIEnKS and
IEnKS in MDA (Grudzien & Bocquet 2022, Sect. 3.3) assimilates the rest,

.. math::
    \beta^{\mathrm{bal}}_{c,j} = 1 - p_{c,j} / n_j,

so that its posterior has taken every observation of the window exactly once: the
forecast, filter and smoother statistics are read from it. For ``L`` a multiple of ``S``
these are the weights of DataAssimilationBenchmarks.jl (in the steady state, the ``S``
observations of the ``b``-th block from the oldest get :math:`\beta^{\mathrm{bal}} = b S/L`),
including the first windows of a run; other ``L`` and ``S`` are allowed and keep every
observation's weights summing to one. (At the end of a run the last windows are missing, so
the last observations' MDA weights sum to less than one.)

References
----------
Grudzien, C. and Bocquet, M. (2022). A fast, single-iteration ensemble Kalman smoother for
sequential data assimilation. Geosci. Model Dev. 15, 7641-7681.
https://doi.org/10.5194/gmd-15-7641-2022

Bocquet, M. and Sakov, P. (2014). An iterative ensemble Kalman smoother. Q. J. R. Meteorol.
Soc. 140, 1521-1535. https://doi.org/10.1002/qj.2236

Emerick, A. A. and Reynolds, A. C. (2013). Ensemble smoother with multiple data
assimilation. Comput. Geosci. 55, 3-15. https://doi.org/10.1016/j.cageo.2012.03.011
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Window", "check_int"]


def check_int(owner: str, key: str, value, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else a :class:`ConfigError` naming ``owner.key``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value > high):
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigError(f"{owner}: {key} must be an integer {span}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Window:
    """The fixed-lag window schedule of lag ``L`` and shift ``S`` (see the module docstring).

    Parameters
    ----------
    lag
        ``L >= 1``: observations in a window.
    shift
        ``S``, ``1 <= S <= L``: observation times the window moves by.

    Raises
    ------
    ConfigError
        If ``lag`` or ``shift`` is not an integer in range.

    Examples
    --------
    >>> w = Window(lag=4, shift=2)
    >>> list(w.observed(1)), list(w.new(1)), list(w.leaving(1))
    ([3, 4, 5, 6], [5, 6], [2, 3])
    >>> [w.mda_weight(j) for j in (1, 3, 5)], w.balancing_weight(1, 3)
    ([1.0, 0.5, 0.5], 0.5)
    """

    lag: int
    shift: int = 1

    def __post_init__(self):
        check_int("Window", "lag", self.lag, 1)
        check_int("Window", "shift", self.shift, 1, self.lag)

    def count(self, K: int) -> int:
        """Number of windows that fit in ``K`` observation times.

        Raises
        ------
        ConfigError
            If ``K < L``: not even one window fits.
        """
        if K < self.lag:
            raise ConfigError(f"a run of {K} observation times is shorter than the lag {self.lag}: "
                              "give more cycles or a shorter lag")
        return (K - self.lag) // self.shift + 1

    def start(self, c: int) -> int:
        """Index ``a = c S`` of the window's initial time."""
        return c * self.shift

    def observed(self, c: int) -> range:
        """Indices of the window's observation times, ``a + 1 .. a + L``."""
        a = self.start(c)
        return range(a + 1, a + self.lag + 1)

    def new(self, c: int) -> range:
        """Indices of the observations no earlier window held."""
        a = self.start(c)
        return self.observed(c) if c == 0 else range(a + self.lag - self.shift + 1, a + self.lag + 1)

    def leaving(self, c: int) -> range:
        """Indices of the states whose smoother estimate is final after window ``c``: ``a .. a + S - 1``."""
        a = self.start(c)
        return range(a, a + self.shift)

    def _holders(self, j: int) -> tuple[int, int]:
        """First and last window that hold observation ``j``: ``c S < j <= c S + L``."""
        return max(0, -((self.lag - j) // self.shift)), (j - 1) // self.shift  # ceil((j - L) / S), floor

    def passes(self, j: int) -> int:
        """:math:`n_j`: how many windows hold observation ``j >= 1`` (in a run long enough)."""
        first, last = self._holders(j)
        return last - first + 1

    def mda_weight(self, j: int) -> float:
        r""":math:`\beta^{\mathrm{MDA}}_j = 1/n_j`."""
        return 1.0 / self.passes(j)

    def balancing_weight(self, c: int, j: int) -> float:
        r""":math:`\beta^{\mathrm{bal}}_{c,j} = 1 - p_{c,j}/n_j` for observation ``j`` of window ``c``."""
        first, last = self._holders(j)
        if not first <= c <= last:
            raise ValueError(f"observation {j} is not in window {c} (lag {self.lag}, shift {self.shift})")
        return 1.0 - (c - first) / (last - first + 1)
