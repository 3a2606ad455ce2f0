"""Observations from params.yaml and files through `fdassim run`: a bad observation file or
setting fails before any work (no store is made) with an error that names the file, the
variable and the problem; a good file runs."""

import os

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")

from fdassim.config import parse  # noqa: E402
from fdassim.errors import ConfigError  # noqa: E402
from fdassim.observations.files import write_observation_file  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

L96 = {
    "model": {"name": "lorenz96"},
    "ensemble": {"size": 6},
    "filter": {"scheme": "etkf"},
    "run": {"cycles": 4, "interval": 0.05, "seed": 2, "progress": False, "twin": False},
}
HEAT = dict(L96, model={"name": "heat"}, run=dict(L96["run"], interval=0.2))
Y = np.zeros((2, 3))


def _run(base, tmp_path, observations, **quantity):
    """Write ``quantity`` (the file's variables) to obs.nc and run with ``observations``."""
    from fdassim.run import run

    path = str(tmp_path / "obs.nc")
    if quantity:
        name = next(iter(observations["quantities"]))
        write_observation_file(path, {name: quantity})
    for q in observations.get("quantities", {}).values():
        q.setdefault("file", path)
    store = str(tmp_path / "run.h5")
    run(parse(dict(base, observations=observations, output={"path": store})))
    return store


@pytest.mark.parametrize("base, quantity, match", [
    pytest.param(HEAT, dict(value=Y, time=[0.2, 0.6], position=[[0.5, 0.5], [1.5, 0.5], [0.2, 0.2]], std=0.1),
                 r"obs.nc:/temperature/position\[1\] = \[1.5, 0.5\] is outside the domain \(1 of 3", id="outside"),
    pytest.param(HEAT, dict(value=Y, time=[0.2, 0.4], index=[0, 1, 2], std=0.1),
                 r"obs.nc:/temperature: field 'temperature' is a Firedrake field: give position", id="index-on-mesh"),
    pytest.param(L96, dict(value=Y, time=[0.05, 0.07], index=[0, 1, 2], std=1.0),
                 r"obs.nc:/temperature/time: time 0.07 is not an analysis time \(between analysis times; the "
                 r"nearest is 0.05", id="time"),
    pytest.param(L96, dict(value=Y, time=[0.05, 0.1], index=[0, 45, 2], std=1.0),
                 r"obs.nc:/temperature/index\[1\] is 45: outside 0..39", id="index"),
    pytest.param(L96, dict(value=Y, time=[0.05, 0.1], index=[0, 1, 2]),
                 r"observations.quantities.temperature: no observation error: give std \(or covariance\) in",
                 id="no-error"),
])
def test_bad_observation_file_fails_before_any_work(tmp_path, base, quantity, match):
    observations = {"quantities": {"temperature": {"field": "x" if base is L96 else "temperature"}}}
    with pytest.raises(ConfigError, match=match):
        _run(base, tmp_path, observations, **quantity)
    assert not os.path.exists(tmp_path / "run.h5")


def test_observation_settings_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"observations: x need a file when run.twin is false"):
        _run(L96, tmp_path, {"field": "x", "every": 2})
    both = {"quantities": {"x": {"std": 2.0}}}
    with pytest.raises(ConfigError, match=r"observations.quantities.x: the errors are given both in .*obs.nc"):
        _run(L96, tmp_path, both, value=Y, time=[0.05, 0.1], index=[0, 1, 2], std=1.0)
    assert not os.path.exists(tmp_path / "run.h5")


def test_observation_file_runs_with_its_schedule_and_errors(tmp_path):
    """Values at 2 of the 4 analysis times, with per-value errors: the store holds them at
    their cycles, and the cycles between make no analysis."""
    from helpers import read_store

    y = np.arange(6.0).reshape(2, 3)
    store = _run(L96, tmp_path, {"quantities": {"x": {}}}, value=y, time=[0.1, 0.2], index=[0, 5, 9],
                 std=[1.0, 2.0, 0.5])
    d = read_store(store)
    np.testing.assert_array_equal(d[sl.observation("x", "values")], y)
    assert d[sl.observation("x", "analysis_cycle")].tolist() == [1, 3] and d[sl.diagnostic("n_obs")].tolist() == [0, 3, 0, 3]
    np.testing.assert_array_equal(d[sl.observation("x", "error_variance")], [1.0, 4.0, 0.25])
    np.testing.assert_array_equal(d[sl.ensemble("analysis", "x")][0], d[sl.ensemble("forecast", "x")][0])


def test_smoother_runs_refuse_what_they_do_not_apply(tmp_path):
    """A smoother observes one quantity at every time and applies no parameter treatment or
    perturbation yet: refused before any work."""
    from fdassim.run import run

    base = dict(L96, run=dict(L96["run"], twin=True), filter=None,
                smoother={"method": "enks", "options": {"lag": 2}}, output={"path": str(tmp_path / "s.h5")})
    two = dict(base, observations={"quantities": {"a": {"field": "x", "every": 2},
                                                  "b": {"field": "x", "schedule": {"times": [0.1]}}}})
    with pytest.raises(ConfigError, match=r"observations: Observations\(a, b\): this needs one quantity observed "
                                          r"at every time"):
        run(parse(two))
    bounded = dict(base, observations={"field": "x"}, parameters=[{"clip": {"field": "x", "lower": -30.0}}])
    with pytest.raises(ConfigError, match=r"parameters: a smoother run does not apply these yet"):
        run(parse(bounded))
    assert not os.path.exists(tmp_path / "s.h5")
