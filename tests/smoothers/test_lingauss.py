"""Linear-Gaussian perfect model: every smoother against the exact Kalman filter and RTS smoother.

With a linear model and observation operator and more members than variables (N > n), the
ETKF's ensemble carries the exact Kalman moments of its prior (the initial ensemble's sample
mean and covariance), the EnKS's right transforms give the exact fixed-lag smoother, the
SIEnKS equals the EnKS, MDA's tempered passes give the untempered posterior, and the
IEnKS's first Gauss-Newton step is exact. So the forecast, filter and smoother means and
covariances of every method equal the exact ones to round-off (asserted to 1e-8 on values of
order one), for any split of the observations into windows. (The IEnKS analyses a window's
new observations together: its forecast at a new time is the forecast from the window's
start, and its filter there the window's analysis, conditioned on all of them; the
references follow.)
"""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.analysis import ObsError  # noqa: E402
from fdassim.ensemble import Ensemble  # noqa: E402
from fdassim.io import Store  # noqa: E402
from fdassim.observations import Observations, Subset  # noqa: E402
from fdassim.smoothers import EnKS, IEnKS, LinIEnKS, SIEnKS, smooth  # noqa: E402
from helpers import read_store  # noqa: E402
from kalman_smoother import LinearModel, LinearSystem, batch_posterior, kalman_filter, rts_smoother  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

n, N, K, SEED = 4, 9, 13, 7


def _system():
    rng = np.random.default_rng(11)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    M = 1.02 * Q  # a slightly growing rotation: errors neither explode nor vanish over 13 steps
    H = np.eye(n)[[0, 2, 3]]
    return LinearSystem(M, H, ObsError.diagonal(np.array([0.5, 0.3, 0.8]))), np.ones(n), 0.6 * np.eye(n) + 0.2


def test_rts_reference_agrees_with_the_batch_posterior():
    """The two references (recursive and batch) agree to 1e-10 at every time."""
    system, m0, P0 = _system()
    ys = [np.random.default_rng(j).standard_normal(3) for j in range(6)]
    ms, Ps = rts_smoother(system, m0, P0, ys)
    for k in range(7):
        xb, Pb = batch_posterior(system, m0, P0, ys, k)
        np.testing.assert_allclose(ms[k], xb, atol=1e-10)
        np.testing.assert_allclose(Ps[k], Pb, atol=1e-10)


def _run(smoother, path):
    system, m0, P0 = _system()
    model = LinearModel(system.M, m0, P0)
    ens = Ensemble(model, N, comm=MPI.COMM_SELF, truth=True)
    obs = Observations(Subset((0, 2, 3)), system.R)
    times = np.arange(K + 1.0)
    with Store.create(path, ens, times, 3, smoother=smoother) as store:
        result = smooth(ens, smoother, obs, times, seed=SEED, store=store, progress=False)
    prior = np.array(model.drawn[:N]).T
    return system, prior, read_store(path, names=("ensemble", "observations")), result


def _moments(E):
    A = E - E.mean(axis=1, keepdims=True)
    return E.mean(axis=1), A @ A.T / (E.shape[1] - 1)


SMOOTHERS = [
    pytest.param(EnKS(lag=4, shift=1), id="EnKS-L4-S1"),
    pytest.param(EnKS(lag=3, shift=3), id="EnKS-L3-S3"),
    pytest.param(SIEnKS(lag=4, shift=2), id="SIEnKS-L4-S2"),
    pytest.param(SIEnKS(lag=4, shift=1, mda=True), id="SIEnKS-MDA-L4-S1"),
    pytest.param(SIEnKS(lag=5, shift=2, mda=True, mlef=True), id="SIEnKS-MDA-MLEF-L5-S2"),
    pytest.param(IEnKS(lag=4, shift=1), id="IEnKS-L4-S1"),
    pytest.param(IEnKS(lag=4, shift=2, mda=True), id="IEnKS-MDA-L4-S2"),
    pytest.param(LinIEnKS(lag=3, shift=1), id="LinIEnKS-L3-S1"),
]


@pytest.mark.parametrize("smoother", SMOOTHERS)
def test_smoother_linear_gaussian_equals_the_exact_kalman_smoother(smoother, tmp_path):
    system, prior, store, result = _run(smoother, str(tmp_path / "run.h5"))
    m0, P0 = _moments(prior)
    window = smoother.schedule
    ys = store[sl.observation("y", "values")][:window.start(window.count(K) - 1) + smoother.lag]  # those assimilated
    kf = kalman_filter(system, m0, P0, ys)
    checked = 0
    for c in range(window.count(K)):
        J = window.start(c) + smoother.lag  # the leaving states are conditioned on y_1..y_J
        ms, Ps = rts_smoother(system, m0, P0, ys[:J])
        for i in window.leaving(c):
            if i == 0:
                continue
            mean, cov = _moments(store[sl.ensemble("smoother", "x")][i - 1])
            np.testing.assert_allclose(mean, ms[i], atol=1e-8, err_msg=f"smoother mean at {i}")
            np.testing.assert_allclose(cov, Ps[i], atol=1e-8, err_msg=f"smoother covariance at {i}")
            checked += 1
        new = window.new(c)
        start = new[0] - 1  # the last observation the window's initial ensemble holds
        m_start, P_start = (m0, P0) if start == 0 else (kf["ma"][start - 1], kf["Pa"][start - 1])
        for j in new:
            if isinstance(smoother, IEnKS):
                Mj = np.linalg.matrix_power(system.M, j - start)
                refs = {"forecast": (Mj @ m_start, Mj @ P_start @ Mj.T), "analysis": (ms[j], Ps[j])}
            else:
                refs = {"forecast": (kf["mf"][j - 1], kf["Pf"][j - 1]), "analysis": (kf["ma"][j - 1], kf["Pa"][j - 1])}
            for kind, (m, P) in refs.items():
                mean, cov = _moments(store[sl.ensemble(kind, "x")][j - 1])
                np.testing.assert_allclose(mean, m, atol=1e-8, err_msg=f"{kind} mean at {j}")
                np.testing.assert_allclose(cov, P, atol=1e-8, err_msg=f"{kind} covariance at {j}")
    assert checked >= K - smoother.lag - 1
    # the smoother is more accurate than the filter where both exist (the exact spreads say so)
    s = result.summary()
    assert s["spread_smoother"] < s["spread_analysis"] < s["spread_forecast"]
