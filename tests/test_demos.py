"""The demos run and assimilate (small versions of what `make demo` runs)."""

import importlib.util
import os

import pytest

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
