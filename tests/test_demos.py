"""The demos run and assimilate (small versions of what `make demo` runs)."""

import importlib.util
import os

import numpy as np
import pytest
from fdassim import store_layout as sl

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")

DEMOS = os.path.join(os.path.dirname(__file__), os.pardir, "demos")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(DEMOS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_icepack_shelf_script_tracks_the_truth(tmp_path):
    pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
    demo = _load("icepack_shelf")
    result = demo.main(members=6, cycles=3, output=str(tmp_path / "shelf.h5"), progress=False)
    # the initial thickness is uncertain by ~20 m; three analyses of 12 point observations
    # (error 5 m) bring it to a few metres
    assert result.rmse_forecast[0] > 5.0
    assert result.rmse_analysis[-1] < 0.3 * result.rmse_forecast[0]
    assert 0.2 < result.spread_analysis[-1] / result.rmse_analysis[-1] < 5


def test_demo_icepack_shelf_readme_snippet_is_the_demos_code():
    """The README's assimilation lines are the demo's, verbatim (doc snippets are test files)."""
    import re

    root = os.path.join(os.path.dirname(__file__), os.pardir)
    readme = open(os.path.join(root, "README.md")).read()
    snippet = re.search(r"<!-- snippet: demos/icepack_shelf.py -->\n```python\n(.*?)```", readme, re.S).group(1)
    demo = open(os.path.join(DEMOS, "icepack_shelf.py")).read()
    block = re.search(r"# --- assimilation \(README\) ---\n(.*?)    # --- end ---", demo, re.S).group(1)
    assert [line[4:] for line in block.splitlines()] == snippet.splitlines()
    assert len(snippet.splitlines()) <= 15


def test_demo_flowline_twin_learns_the_accumulation_and_the_grounding_line(tmp_path):
    """A short flowline twin (8 members, 20 years, 2 analyses): the accumulation, 1 m/yr off at
    the start (prior 0.5, truth -0.5, prior spread 0.6), is learnt (its error falls by 30 %),
    and the analysed grounding line is closer to the truth than the forecast one; the figure is
    written next to the store."""
    pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
    from helpers import read_store

    demo = _load("flowline_twin")
    path = str(tmp_path / "flowline.h5")
    demo.main(members=8, years=20, every=10, output=path, progress=False, cells=30, spinup=60.0, dt=2.0)
    d = read_store(path)
    err = {kind: np.sqrt(((d[sl.mean(kind, "accumulation")] - d[sl.truth("accumulation")]) ** 2).mean(axis=1))
           for kind in ("forecast", "analysis")}
    assert err["forecast"][0] > 0.8 and err["analysis"][-1] < 0.7 * err["forecast"][0]
    gl = {kind: np.abs(d[sl.mean(kind, "grounding_line")] - d[sl.truth("grounding_line")])[:, 0] for kind in ("forecast", "analysis")}
    assert gl["analysis"].mean() < gl["forecast"].mean()
    assert os.path.getsize(str(tmp_path / "flowline.png")) > 0  # grounding line, accumulation, thickness


def test_demo_flowline_twin_with_the_sienks(tmp_path):
    """The flowline as the smoothers' ice-sheet case: the SIEnKS (lag 2) over 4 observation
    times, 8 members. Every member re-runs from its window's start (its carried velocity and
    diagnosed grounding line restored); at each smoothed time the smoother's spread is below
    the filter's, and the store holds the smoothed members."""
    pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
    from fdassim.errors import ConfigError
    from helpers import read_store

    demo = _load("flowline_twin")
    path = str(tmp_path / "flowline-sienks.h5")
    res = demo.main(members=8, years=40, every=10, output=path, progress=False, smoother="sienks", lag=2,
                    cells=30, spinup=60.0, dt=2.0)
    have = np.isfinite(res.spread_smoother)
    assert have.sum() >= 2 and np.all(res.spread_smoother[have] < res.spread_analysis[have])
    assert np.all(res.simulations == 2)
    d = read_store(path, ("ensemble/smoother",))
    assert np.isfinite(d[sl.ensemble("smoother", "grounding_line")][have]).all()
    with pytest.raises(ConfigError, match="smoother: 'iens' is not one of enks, sienks"):
        demo.main(members=4, years=20, every=10, output=str(tmp_path / "x.h5"), smoother="iens")
