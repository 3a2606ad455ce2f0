r"""The Lorenz-96 model, the standard test bed of ensemble data assimilation.

.. math::
    \frac{dx_j}{dt} = (x_{j+1} - x_{j-2})\, x_{j-1} - x_j + F, \qquad j = 0, \dots, n-1,

with periodic indices (Lorenz 1996; Lorenz & Emanuel 1998). The quadratic (advection) term
conserves the energy :math:`E = \tfrac12 \sum_j x_j^2`, so
:math:`dE/dt = -\sum_j x_j^2 + F \sum_j x_j`. With the usual ``n = 40``, ``F = 8`` it is
chaotic, with a leading Lyapunov exponent of about 1.7 per time unit; ``dt = 0.05`` is
"6 hours". It is integrated by the classical fourth-order Runge-Kutta scheme.

The functions act on the *first* axis: ``x`` is a state ``(n,)`` or an ensemble ``(n, N)``
whose columns are members, like ``X`` elsewhere in fdassim, so a whole ensemble is
integrated at once.

References
----------
Lorenz, E. N. (1996). Predictability: a problem partly solved. Proc. ECMWF Seminar on
Predictability, Reading, vol. 1, 1-18.

Lorenz, E. N. and Emanuel, K. A. (1998). Optimal sites for supplementary weather
observations: simulation with a small model. J. Atmos. Sci. 55, 399-414.
https://doi.org/10.1175/1520-0469(1998)055<0399:OSFSWO>2.0.CO;2
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..geometry import Geometry
from ..layout import FieldSpec
from ..options import check_options, option

__all__ = ["tendency", "rk4_step", "Lorenz96"]


def tendency(x: np.ndarray, F: float = 8.0) -> np.ndarray:
    r"""The Lorenz-96 right-hand side :math:`(x_{j+1} - x_{j-2}) x_{j-1} - x_j + F`.

    Parameters
    ----------
    x
        ``(n,)`` state or ``(n, N)`` ensemble (members in columns), ``n >= 4``.
    F
        Forcing.

    Returns
    -------
    numpy.ndarray
        :math:`dx/dt`, same shape as ``x``.
    """
    # periodic padding: xp[j + 2] = x[j] for j = -2, ..., n
    xp = np.concatenate((x[-2:], x, x[:1]), axis=0)
    return (xp[3:] - xp[:-3]) * xp[1:-2] - x + F


def rk4_step(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dt: float) -> np.ndarray:
    r"""One classical Runge-Kutta step of :math:`dx/dt = f(x)`.

    .. math::
        x \leftarrow x + \tfrac{\Delta t}{6}(k_1 + 2k_2 + 2k_3 + k_4)

    Parameters
    ----------
    f
        Autonomous tendency, ``x -> dx/dt``.
    x
        State (any shape ``f`` accepts); not modified.
    dt
        Time step.
    """
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)


@functools.lru_cache(maxsize=8)
def _attractor_point(n: int, F: float, dt: float, seed: int) -> np.ndarray:
    x = Lorenz96(n, F, dt).initial_condition(seed=seed)
    x.setflags(write=False)
    return x


@dataclass(frozen=True)
class Lorenz96:
    """Lorenz-96 with ``n`` variables, forcing ``F`` and RK4 step ``dt``.

    Parameters
    ----------
    n
        Number of variables (``>= 4``).
    F
        Forcing (finite).
    dt
        Integration step (``> 0``); forecasts span whole numbers of steps.
    spread
        Standard deviation of the initial draws around the attractor point (Model protocol).
        Small by default (0.1, against an observation error of 1), as in the usual set-up of
        Sakov & Oke (2008): an ensemble of 20 spans the unstable directions of the errors,
        not an isotropic error in all 40 (from spread 1, ETKF N = 20 loses the truth).
    seed
        Seed of the attractor point the initial draws are centred on.

    Raises
    ------
    ConfigError
        If an option is out of range.

    Examples
    --------
    >>> model = Lorenz96()
    >>> x0 = model.initial_condition(seed=1)
    >>> model.integrate(x0, 0.0, 0.25).shape
    (40,)
    """

    n: int = option(40, ge=4)
    F: float = option(8.0)
    dt: float = option(0.05, gt=0)
    spread: float = option(0.1, gt=0)
    seed: int = option(1, ge=0)

    def __post_init__(self):
        check_options(self)

    @property
    def coords(self) -> np.ndarray:
        """``(n,)`` grid coordinates ``0, 1, ..., n-1`` (periodic with period ``n``)."""
        return np.arange(self.n, dtype=float)

    def tendency(self, x: np.ndarray) -> np.ndarray:
        """:func:`tendency` with this model's forcing."""
        return tendency(x, self.F)

    def step(self, x: np.ndarray, nsteps: int = 1) -> np.ndarray:
        """Integrate ``x`` (``(n,)`` or ``(n, N)``) over ``nsteps`` RK4 steps of ``dt``."""
        for _ in range(nsteps):
            x = rk4_step(self.tendency, x, self.dt)
        return x

    def nsteps(self, t0: float, t1: float) -> int:
        """Number of ``dt`` steps from ``t0`` to ``t1``.

        Raises
        ------
        InputError
            If ``t1 - t0`` is negative or not a whole number of steps.
        """
        k = (t1 - t0) / self.dt
        nk = round(k)
        if nk < 0 or abs(k - nk) > 1e-6 * max(1.0, abs(k)):
            raise InputError(f"Lorenz96: t1 - t0 = {t1!r} - {t0!r} is not a non-negative whole "
                             f"number of steps dt = {self.dt!r}")
        return nk

    def integrate(self, x: np.ndarray, t0: float, t1: float) -> np.ndarray:
        """Integrate the state or ensemble ``x`` from time ``t0`` to ``t1``.

        Parameters
        ----------
        x
            ``(n,)`` state or ``(n, N)`` ensemble; not modified.
        t0, t1
            Start and end times; ``t1 - t0`` must be a whole number of steps ``dt``.

        Raises
        ------
        InputError
            If ``x`` has the wrong length or ``t1 - t0`` is not a whole number of steps.
        """
        x = np.asarray(x, dtype=float)
        if x.ndim not in (1, 2) or x.shape[0] != self.n:
            raise InputError(f"Lorenz96: x must have shape ({self.n},) or ({self.n}, N), got {x.shape}")
        return self.step(x, self.nsteps(t0, t1))

    # -- the Model protocol (fdassim.models.base) -------------------------------------------
    #: the state is one array field ``x``; forecasts take several members at once
    fields = (FieldSpec("x"),)
    batched = True

    @property
    def geometry(self) -> Geometry:
        """A ring: variable ``j`` at position ``j``, period ``n`` (used by every localization)."""
        return Geometry(periodic=(float(self.n),), positions={"x": self.coords})

    def new_state(self, comm=None) -> dict[str, np.ndarray]:
        """A zero state (Lorenz-96 is not split over ranks: ``comm`` is ignored)."""
        return {"x": np.zeros(self.n)}

    def initial_state(self, state: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        """A point of the attractor plus Gaussian noise of standard deviation ``spread``.

        The attractor point is :meth:`initial_condition` with the model's ``seed``; every
        member and the truth of a twin experiment are drawn around it, each from its own
        generator.
        """
        state["x"][...] = self._reference() + self.spread * rng.standard_normal(self.n)

    def forecast(self, state: dict[str, np.ndarray], t0: float, t1: float) -> dict[str, np.ndarray]:
        """Advance ``state["x"]`` (``(n,)`` or ``(n, k)``: ``k`` members) in place."""
        state["x"][...] = self.integrate(state["x"], t0, t1)
        return state

    def _reference(self) -> np.ndarray:
        return _attractor_point(self.n, self.F, self.dt, self.seed)

    def initial_condition(self, seed: int = 1, spinup: float = 50.0) -> np.ndarray:
        """A state on the attractor: ``F`` plus a small random perturbation, spun up.

        Parameters
        ----------
        seed
            Seed of the perturbation (``numpy.random.default_rng(seed)``).
        spinup
            Spin-up time (default 50 time units, about 85 e-foldings of errors).
        """
        rng = np.random.default_rng(seed)
        x = self.F + 0.01 * rng.standard_normal(self.n)
        return self.step(x, round(spinup / self.dt))

    def truth(self, x0: np.ndarray, times: np.ndarray) -> np.ndarray:
        """The trajectory from ``x0`` at ``times[0]`` through the increasing ``times``.

        Returns
        -------
        numpy.ndarray
            ``(len(times), n)``: row ``k`` is the state at ``times[k]`` (row 0 is ``x0``).
        """
        times = np.asarray(times, dtype=float)
        out = np.empty((times.size, self.n))
        out[0] = x0
        for k in range(1, times.size):
            out[k] = self.integrate(out[k - 1], times[k - 1], times[k])
        return out
