r"""Gauss-Newton minimisation of an ensemble-space cost: the IEnKS and the MLEF.

The analysis of the IEnKS (Bocquet & Sakov 2014) and of the maximum likelihood ensemble
filter (MLEF; Zupanski 2005) looks for the weights :math:`w` of the mean
:math:`x_0 = \bar x_0 + A_0 w` of a base ensemble :math:`E_0 = \bar x_0 1^T + A_0` that
minimise, over the observations :math:`y_k` of the cost (with weights :math:`\beta_k`, the MDA
weights, 1 otherwise),

.. math::
    \mathcal{J}(w) = \mathcal{J}_b(w) + \tfrac12 \sum_k \beta_k
        \| y_k - \mathcal{H}_k \circ \mathcal{M}_{k \leftarrow 0}(\bar x_0 + A_0 w) \|^2_{R_k},

with the prior term :math:`\mathcal{J}_b = \tfrac{N_1}{2}\|w\|^2` (Gaussian prior of the ensemble,
:math:`N_1 = N - 1`) or, for the finite-size variants (IEnKS-N, MLEF-N; Bocquet 2011,
Bocquet & Sakov 2012), :math:`\mathcal{J}_b = \tfrac{N}{2}\ln(\varepsilon_N + \|w\|^2)`, the
EnKF-N's prior (:mod:`fdassim.analysis.enkf_n`). For the MLEF :math:`\mathcal{M}` is the
identity (a filter cost with a nonlinear :math:`\mathcal{H}`); for the IEnKS it runs the
ensemble from the window's start to :math:`t_k`.

Transform variant (Sakov et al. 2012; Bocquet & Sakov 2014, Algorithm 1). Iteration ``p``
evaluates :math:`\mathcal{H}_k \circ \mathcal{M}` on the ensemble
:math:`E_0 W_p`, :math:`W_p = \frac1N 1 1^T + \Pi(w_p 1^T + T_p)`, i.e. around the current mean
with the current posterior anomalies :math:`A_0 T_p` (``T_0 = I``), and reads the sensitivities
from its observed anomalies, *de-conditioned* by :math:`T_p^{-1}`:

.. math::
    S_k = \sqrt{\beta_k}\, R_k^{-1/2} Y_k \Pi\, T_p^{-1}, \qquad
    \delta_k = \sqrt{\beta_k}\, R_k^{-1/2} (y_k - \bar y_k),

    \nabla \mathcal{J} = \nabla \mathcal{J}_b(w_p) - \sum_k S_k^T \delta_k, \qquad
    \mathcal{H} = h_b(w_p) I_N + \sum_k S_k^T S_k,

    w_{p+1} = w_p - \mathcal{H}^{-1} \nabla \mathcal{J}, \qquad
    T_{p+1} = \sqrt{N_1}\, \mathcal{H}^{-1/2},

with :math:`h_b = N_1` (Gaussian prior) or :math:`N/(\varepsilon_N + \|w\|^2)` (finite size: the
Hessian of :math:`\mathcal{J}_b` without its rank-one term, positive definite; the fixed
point is the exact minimiser). It stops when :math:`\|w_{p+1} - w_p\| <` ``tol`` or after
``max_iter`` evaluations. The analysis is :math:`E_0 W` with
:math:`W = \frac1N 1 1^T + \Pi(w 1^T + T)`; in the finite-size case :math:`T = \sqrt{N_1}
\mathcal{H}_a^{-1/2}` with the exact Hessian :math:`\mathcal{H}_a` at :math:`w`,
:math:`N\zeta I - 2N\zeta^2 w w^T + \sum_k S_k^T S_k`, :math:`\zeta = 1/(\varepsilon_N + \|w\|^2)`
(as the EnKF-N transform). With linear models and operators the first step is exact: one
iteration gives the ETKF (MLEF) or the linear smoother (IEnKS), the second confirms it.

The last evaluation's ensemble at any time of the window maps to (a first-order estimate of)
the analysis there by :meth:`GaussNewtonResult.linearised`,

.. math::
    E^a_k \approx E_k^{(p)}\, \left[\tfrac1N 1 1^T + \Pi\left(T_p^{-1}(w - w_p) 1^T + T_p^{-1} T\right)\right],

exact for a linear model (DAPPER's iEnKS assesses its analysis the same way, to avoid a
model run).

References
----------
Bocquet, M. and Sakov, P. (2014). An iterative ensemble Kalman smoother. Q. J. R. Meteorol.
Soc. 140, 1521-1535. https://doi.org/10.1002/qj.2236

Bocquet, M. and Sakov, P. (2012). Combining inflation-free and iterative ensemble Kalman
filters for strongly nonlinear systems. Nonlin. Processes Geophys. 19, 383-399.
https://doi.org/10.5194/npg-19-383-2012

Sakov, P., Oliver, D. S. and Bertino, L. (2012). An iterative EnKF for strongly nonlinear
systems. Mon. Wea. Rev. 140, 1988-2004. https://doi.org/10.1175/MWR-D-11-00176.1

Zupanski, M. (2005). Maximum likelihood ensemble filter: theoretical aspects. Mon. Wea.
Rev. 133, 1710-1726. https://doi.org/10.1175/MWR2946.1

Grudzien, C. and Bocquet, M. (2022). A fast, single-iteration ensemble Kalman smoother for
sequential data assimilation. Geosci. Model Dev. 15, 7641-7681.
https://doi.org/10.5194/gmd-15-7641-2022
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh

from ..analysis.base import ObsError
from ..analysis.etkf import mean_anomaly_transform
from ..errors import FdassimError

__all__ = ["Term", "GaussNewtonResult", "gauss_newton", "prior_term"]


@dataclass(frozen=True, eq=False)
class Term:
    r"""One observation time of the cost: observations :math:`y_k`, their error and weight :math:`\beta_k`."""

    y: np.ndarray
    R: ObsError
    weight: float = 1.0


@dataclass(frozen=True, eq=False)
class GaussNewtonResult:
    """The minimiser and what the iterations leave behind.

    Attributes
    ----------
    w, T
        ``(N,)`` mean weights and ``(N, N)`` anomaly transform of the analysis.
    iterations
        Number of Gauss-Newton steps, one evaluation each (the first may have been given).
    converged
        Whether the last step was shorter than ``tol`` (else ``max_iter`` was reached).
    w_last, Tinv_last
        The weights and the inverse transform of the last evaluated ensemble.
    first
        The observed ensembles of the first evaluation (at ``w = 0``, ``T = I``).
    """

    w: np.ndarray
    T: np.ndarray
    iterations: int
    converged: bool
    w_last: np.ndarray
    Tinv_last: np.ndarray
    first: list[np.ndarray]

    @property
    def W(self) -> np.ndarray:
        """The analysis transform of the base ensemble, ``E_a = E_0 W``."""
        return mean_anomaly_transform(self.w, self.T)

    @property
    def linearised(self) -> np.ndarray:
        """The transform mapping the last evaluated ensemble (at any time) to its analysis, to first order."""
        return mean_anomaly_transform(self.Tinv_last @ (self.w - self.w_last), self.Tinv_last @ self.T)


def prior_term(w: np.ndarray, N: int, finite_size: bool, eps_N: float) -> tuple[np.ndarray, float]:
    r"""Gradient of :math:`\mathcal{J}_b` at ``w`` and the scalar :math:`h_b` of its Gauss-Newton Hessian."""
    if finite_size:
        h = N / (eps_N + w @ w)  # N zeta
        return h * w, h
    return (N - 1) * w, float(N - 1)


def _sym_eig(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, V = eigh(0.5 * (M + M.T))
    return mu, V


def gauss_newton(evaluate: Callable[[np.ndarray], Sequence[np.ndarray]], terms: Sequence[Term], N: int, *,
                 finite_size: bool = False, eps_N: float | None = None, tol: float = 1e-3, max_iter: int = 10,
                 first: Sequence[np.ndarray] | None = None) -> GaussNewtonResult:
    r"""Minimise the ensemble-space cost by Gauss-Newton steps (see the module docstring).

    Parameters
    ----------
    evaluate
        ``evaluate(W)`` returns, for the base ensemble transformed by the ``(N, N)`` ``W``,
        the predicted observations ``(m_k, N)`` of every term, in order.
    terms
        The observations of the cost.
    N
        Ensemble size.
    finite_size
        The EnKF-N prior term (IEnKS-N, MLEF-N) instead of the Gaussian one.
    eps_N
        :math:`\varepsilon_N`; ``None`` for :math:`1 + 1/N`.
    tol
        Stop once a step :math:`\|\Delta w\|` is below ``tol``.
    max_iter
        At most this many evaluations (1: the linearised smoother, Lin-IEnKS).
    first
        The predicted observations at ``W = I`` if already known (saves one evaluation).

    Returns
    -------
    GaussNewtonResult

    Raises
    ------
    FdassimError
        If the finite-size Hessian at the minimum is not positive definite, or an
        evaluation returns observations of the wrong shape.
    """
    N1 = N - 1
    eps_N = 1.0 + 1.0 / N if eps_N is None else eps_N
    w, T, Tinv = np.zeros(N), np.eye(N), np.eye(N)
    firsts = None
    for p in range(max_iter):
        W = mean_anomaly_transform(w, T)
        Ys = list(first) if (p == 0 and first is not None) else list(evaluate(W))
        if len(Ys) != len(terms):
            raise FdassimError(f"Gauss-Newton: evaluate returned {len(Ys)} observed ensembles for {len(terms)} terms")
        if p == 0:
            firsts = Ys
        gb, hb = prior_term(w, N, finite_size, eps_N)
        grad, H = gb.copy(), hb * np.eye(N)
        for term, Y in zip(terms, Ys):
            Y = np.asarray(Y, dtype=float)
            if Y.shape != (term.y.size, N):
                raise FdassimError(f"Gauss-Newton: an observed ensemble has shape {Y.shape}, expected "
                                   f"({term.y.size}, {N})")
            ybar = Y.mean(axis=1)
            sb = math.sqrt(term.weight)
            S = sb * term.R.whiten(Y - ybar[:, None]) @ Tinv  # de-conditioned sensitivities
            delta = sb * term.R.whiten(term.y - ybar)
            grad -= S.T @ delta
            H += S.T @ S
        mu, V = _sym_eig(H)
        dw = -V @ ((V.T @ grad) / mu)  # Gauss-Newton step
        w_last, Tinv_last = w, Tinv
        w = w + dw
        T = math.sqrt(N1) * (V * mu ** -0.5) @ V.T  # sqrt(N1) H^{-1/2}
        Tinv = (V * mu ** 0.5) @ V.T / math.sqrt(N1)
        if np.linalg.norm(dw) < tol:
            converged = True
            break
    else:
        converged = False
    if finite_size:  # the exact Hessian at w for the anomalies (the EnKF-N transform)
        zeta = 1.0 / (eps_N + w @ w)
        Ha = H - hb * np.eye(N) + N * zeta * np.eye(N) - 2.0 * N * zeta**2 * np.outer(w, w)
        mu, V = _sym_eig(Ha)
        if mu[0] <= 0.0:
            raise FdassimError(f"finite-size Gauss-Newton: the Hessian at the minimum is not positive definite "
                               f"(smallest eigenvalue {mu[0]:.3g}, |w| = {np.linalg.norm(w):.3g})")
        T = math.sqrt(N1) * (V * mu ** -0.5) @ V.T
    return GaussNewtonResult(w, 0.5 * (T + T.T), p + 1, converged, w_last, Tinv_last, firsts)
