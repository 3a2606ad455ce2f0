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
