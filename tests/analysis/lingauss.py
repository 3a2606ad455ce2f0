"""Linear-Gaussian problems with known exact answers (imported by the analysis tests as `lingauss`)."""

from dataclasses import dataclass

import numpy as np

from fdassim.analysis import ObsError, kalman_analysis


def exact_ensemble(mean: np.ndarray, cov: np.ndarray, N: int, rng: np.random.Generator) -> np.ndarray:
    """An ``(n, N)`` ensemble whose sample mean and covariance (with N - 1) equal ``mean`` and ``cov``.

    Needs ``N > n``: the anomalies are whitened to an exact identity sample covariance and
    coloured by the Cholesky factor of ``cov``.
    """
    n = mean.size
    assert N > n, "an exact prior needs more members than variables"
    Z = rng.standard_normal((n, N))
    Z -= Z.mean(axis=1, keepdims=True)
    # whiten: make Z Z^T / (N - 1) = I exactly
    L0 = np.linalg.cholesky(Z @ Z.T / (N - 1))
    Z = np.linalg.solve(L0, Z)
    return mean[:, None] + np.linalg.cholesky(cov) @ Z


@dataclass
class LinGauss:
    """A linear-Gaussian analysis problem and its exact Kalman answer."""

    xb: np.ndarray
    B: np.ndarray
    H: np.ndarray
    y: np.ndarray
    R: ObsError
    xa: np.ndarray
    Pa: np.ndarray

    @property
    def n(self):
        return self.xb.size

    @property
    def m(self):
        return self.y.size

    def ensemble(self, N: int, seed: int = 3, exact: bool = True) -> np.ndarray:
        """Prior ensemble: exact moments when ``exact`` (needs N > n), else a plain sample."""
        rng = np.random.default_rng(seed)
        if exact:
            return exact_ensemble(self.xb, self.B, N, rng)
        return rng.multivariate_normal(self.xb, self.B, size=N).T


def make_lingauss(n: int = 5, m: int = 3, full_R: bool = False, seed: int = 0) -> LinGauss:
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n))
    B = G @ G.T / n + 0.5 * np.eye(n)
    H = rng.standard_normal((m, n))
    if full_R:
        F = rng.standard_normal((m, m))
        R = ObsError.full(F @ F.T / m + 0.3 * np.eye(m))
    else:
        R = ObsError.diagonal(rng.uniform(0.2, 1.0, m))
    xb = rng.standard_normal(n)
    y = H @ xb + rng.standard_normal(m)
    xa, Pa = kalman_analysis(xb, B, H, y, R)
    return LinGauss(xb, B, H, y, R, xa, Pa)


def sampling_tolerance(B, N, k=5.0):
    """``k`` standard errors of the sample mean and covariance of ``N`` draws from N(., B).

    se(mean_i) = sqrt(B_ii / N), se(cov_ij) = sqrt((B_ii B_jj + B_ij^2) / N). The analysis
    moments are smooth functions of the prior sample moments with sensitivities below one for
    these well-conditioned problems (largest error over 16 problems at N = 2000 and 5000:
    2.5 se), so 5 se
    makes a false failure improbable while a wrong gain is off by tens of se.
    """
    d = np.diag(B)
    return k * np.sqrt(d / N), k * np.sqrt((np.outer(d, d) + B**2) / N)


def anomalies(M: np.ndarray) -> np.ndarray:
    return M - M.mean(axis=1, keepdims=True)
