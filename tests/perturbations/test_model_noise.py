"""AR(1) model noise and initial perturbations on array members: the noise is stationary with
the field's variance, consecutive noises are correlated by rho, a restart replays it exactly."""

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("gstools", reason="gstools is not installed (make install)")

from fdassim.errors import ConfigError  # noqa: E402
from fdassim.models.lorenz96 import Lorenz96  # noqa: E402
from fdassim.perturbations import InitialPerturbations, ModelNoise, RandomField  # noqa: E402


def _ensemble(members=4, n=40):
    model = Lorenz96(n=n)
    states = [{"x": np.zeros(model.n)} for _ in range(members)]
    return SimpleNamespace(model=model, size=members, local=list(range(members)), states=states)


def test_model_noise_ar1_statistics():
    """Over 50 cycles x 8 members x 200 values (correlated along x, length 2): the noise has
    mean 0, variance std^2 and lag-1 correlation rho. About 50 independent values per draw
    and the AR(1) factor (1 - rho^2) / (1 + rho^2) = 0.34 leave ~7000 effectively independent
    samples: 4 standard errors are 0.07 (variance, relative) and ~0.04 (correlation)."""
    ens, rho, K = _ensemble(8, 200), 0.7, 50
    noise = ModelNoise({"x": RandomField("gaussian", std=0.5, length=2.0, modes=200)}, rho=rho)
    q = []
    for k in range(K):
        before = [s["x"].copy() for s in ens.states]
        noise.apply(ens, seed=3, cycle=k)
        q.append([s["x"] - b for s, b in zip(ens.states, before)])
    q = np.array(q)  # (K, members, n)
    assert abs(q.mean()) < 4 * 0.5 / np.sqrt(7000)
    assert abs(q.var() / 0.25 - 1) < 0.07
    r = np.corrcoef(q[1:].ravel(), q[:-1].ravel())[0, 1]
    assert abs(r - rho) < 0.04


def test_model_noise_replay_continues_exactly():
    noise = ModelNoise({"x": RandomField("gaussian", std=0.5, length=2.0)}, rho=0.9)
    a = _ensemble(2)
    for k in range(5):
        noise.apply(a, seed=1, cycle=k)
    restarted = ModelNoise({"x": RandomField("gaussian", std=0.5, length=2.0)}, rho=0.9)
    b = _ensemble(2)
    for s, t in zip(b.states, a.states):
        s["x"][:] = t["x"]
    restarted.replay(b, seed=1, cycles=5)
    noise.apply(a, seed=1, cycle=5)
    restarted.apply(b, seed=1, cycle=5)
    for s, t in zip(a.states, b.states):
        np.testing.assert_array_equal(s["x"], t["x"])


def test_model_noise_leaves_the_truth_alone_when_asked():
    """Members 0, 1 and the truth (index 2 = size): with ``truth=False`` the truth keeps its
    values exactly and the members get the same noise as with ``truth=True``."""
    fields = {"x": RandomField("gaussian", std=0.5, length=2.0)}
    runs = {}
    for truth in (True, False):
        ens = _ensemble(3)
        ens.size = 2  # the third state is the truth of a twin experiment
        ModelNoise(fields, rho=0.5, truth=truth).apply(ens, seed=4, cycle=0)
        runs[truth] = ens.states
    np.testing.assert_array_equal(runs[False][2]["x"], 0.0)
    assert np.abs(runs[True][2]["x"]).max() > 0
    for i in (0, 1):
        np.testing.assert_array_equal(runs[False][i]["x"], runs[True][i]["x"])
    with pytest.raises(ConfigError, match="truth: expected true or false, got 'no'"):
        ModelNoise(fields, truth="no")


def test_initial_perturbations_depend_on_member_not_on_dealing():
    p = InitialPerturbations({"x": RandomField("exponential", std=1.0, length=3.0)})
    whole = _ensemble(4)
    p.apply(whole, seed=2)
    part = _ensemble(2)
    part.local, part.size = [1, 3], 4  # members 1 and 3 of 4, held by another rank
    p.apply(part, seed=2)
    np.testing.assert_array_equal(part.states[0]["x"], whole.states[1]["x"])
    np.testing.assert_array_equal(part.states[1]["x"], whole.states[3]["x"])
    assert not np.array_equal(whole.states[0]["x"], whole.states[1]["x"])


def test_perturbation_bad_settings():
    with pytest.raises(ConfigError, match=r"rho: must be in \[0, 1\), got 1.0"):
        ModelNoise({"x": RandomField()}, rho=1.0)
    with pytest.raises(ConfigError, match=r"y: not a field of the model; it has \['x'\]"):
        InitialPerturbations({"y": RandomField()}).apply(_ensemble(1), seed=1)
