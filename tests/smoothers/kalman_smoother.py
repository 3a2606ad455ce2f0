"""Exact linear-Gaussian references for the smoothers (imported by the smoother tests as `kalman_smoother`).

A perfect linear model :math:`x_{k+1} = M x_k` observed as :math:`y_k = H x_k + e_k`,
:math:`e_k \\sim N(0, R)`, with a Gaussian prior :math:`N(m_0, P_0)` at :math:`t_0`:

- :func:`kalman_filter`: the forecast and analysis moments at each observation time;
- :func:`rts_smoother`: the Rauch-Tung-Striebel smoother over the observations ``1..J``,
  the smoothed moments at every time ``0..J`` (with no model noise, ``Q = 0``);
- :func:`batch_posterior`: the same by one least-squares analysis of :math:`x_0` (every
  observation is a linear function of it in a perfect model), to check the two against
  each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fdassim.analysis import ObsError, kalman_analysis
from fdassim.layout import FieldSpec


@dataclass(frozen=True)
class LinearSystem:
    M: np.ndarray
    H: np.ndarray
    R: ObsError


def kalman_filter(system: LinearSystem, m0, P0, ys):
    """Forecast and analysis means and covariances at times ``1..len(ys)`` (index ``j - 1``)."""
    M, H, R = system.M, system.H, system.R
    m, P = np.asarray(m0, float), np.asarray(P0, float)
    out = {"mf": [], "Pf": [], "ma": [], "Pa": []}
    for y in ys:
        m, P = M @ m, M @ P @ M.T
        out["mf"].append(m)
        out["Pf"].append(P)
        m, P = kalman_analysis(m, P, H, y, R)
        out["ma"].append(m)
        out["Pa"].append(P)
    return {k: np.array(v) for k, v in out.items()}


def rts_smoother(system: LinearSystem, m0, P0, ys):
    """Smoothed means and covariances at times ``0..J`` given the observations ``ys`` at ``1..J``.

    Rauch, Tung & Striebel (1965): :math:`G_k = P^a_k M^T (P^f_{k+1})^{-1}`,
    :math:`m^s_k = m^a_k + G_k (m^s_{k+1} - m^f_{k+1})`,
    :math:`P^s_k = P^a_k + G_k (P^s_{k+1} - P^f_{k+1}) G_k^T`; time 0 has no observation
    (its "analysis" is the prior).
    """
    kf = kalman_filter(system, m0, P0, ys)
    ma = [np.asarray(m0, float)] + list(kf["ma"])
    Pa = [np.asarray(P0, float)] + list(kf["Pa"])
    ms, Ps = [None] * len(ma), [None] * len(ma)
    ms[-1], Ps[-1] = ma[-1], Pa[-1]
    for k in range(len(ma) - 2, -1, -1):
        mf, Pf = kf["mf"][k], kf["Pf"][k]  # forecast to time k + 1
        G = np.linalg.solve(Pf.T, (Pa[k] @ system.M.T).T).T
        ms[k] = ma[k] + G @ (ms[k + 1] - mf)
        Ps[k] = Pa[k] + G @ (Ps[k + 1] - Pf) @ G.T
    return np.array(ms), np.array(Ps)


def batch_posterior(system: LinearSystem, m0, P0, ys, k: int):
    """Posterior mean and covariance of :math:`x_k = M^k x_0` given ``ys`` (perfect model)."""
    n = system.M.shape[0]
    Hs, Mk = [], np.eye(n)
    for _ in ys:
        Mk = system.M @ Mk
        Hs.append(system.H @ Mk)
    R = ObsError.diagonal(np.tile(system.R.variances(), len(ys)))
    x0, P = kalman_analysis(np.asarray(m0, float), np.asarray(P0, float), np.vstack(Hs), np.concatenate(ys), R)
    Mk = np.linalg.matrix_power(system.M, k)
    return Mk @ x0, Mk @ P @ Mk.T


class LinearModel:
    """The perfect linear model ``x <- M x`` per unit of time, as an array model of the Model protocol.

    Records the states it draws (members in order, then the truth) so a test knows the prior.
    """

    fields = (FieldSpec("x"),)
    batched = True

    def __init__(self, M: np.ndarray, m0: np.ndarray, P0: np.ndarray):
        self.M, self.m0, self.L0 = M, m0, np.linalg.cholesky(P0)
        self.drawn: list[np.ndarray] = []

    def new_state(self, comm=None):
        return {"x": np.zeros(self.M.shape[0])}

    def initial_state(self, state, rng):
        state["x"][...] = self.m0 + self.L0 @ rng.standard_normal(self.M.shape[0])
        self.drawn.append(state["x"].copy())

    def forecast(self, state, t0, t1):
        x = state["x"]
        for _ in range(round(t1 - t0)):
            x = self.M @ x
        state["x"][...] = x
        return state
