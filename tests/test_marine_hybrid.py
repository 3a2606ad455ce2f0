"""The hybrid assimilation-inversion demo (demos/marine_hybrid), shortened: the friction and
bed errors of the ensemble mean fall, and the figures and the summary are written."""

import importlib.util
import os

import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")

DEMO = os.path.join(os.path.dirname(__file__), os.pardir, "demos", "marine_hybrid", "hybrid.py")


def test_marine_hybrid_demo_lowers_the_friction_and_bed_errors(tmp_path):
    """6 members, 2 yearly analyses on a 10 x 3 mesh, the demo's params.yaml otherwise. At the
    start the members' bed is the trend plus their own relief draw (RMSE of the mean about
    40 m, the relief's 40 m std) and their friction 0.7 x the featureless mean (RMSE about
    0.18 over the grounded ice). The flight lines and thickness analyses must cut the bed
    RMSE by more than a third and the two inversions the friction RMSE by more than 40 %
    (the full run reaches about 70 % and 65 %; these margins leave room for the smaller
    ensemble and mesh); every inversion must lower the velocity misfit it minimizes."""
    spec = importlib.util.spec_from_file_location("marine_hybrid", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    changes = {"model": {"options": {"nx": 10, "ny": 3}}, "ensemble": {"size": 6}, "run": {"cycles": 2},
               "inversion": {"max_iterations": 5}}
    summary = demo.run(changes, output=str(tmp_path), progress=False)
    bed, friction = summary["bed"], summary["friction"]
    assert bed[0] > 20.0 and friction[0] > 0.1  # the start is wrong
    assert bed[-1] < 0.67 * bed[0], bed
    assert friction[-1] < 0.6 * friction[0], friction
    assert all(after < before for before, after in summary["misfits"])
    for name in ("maps.png", "rmse.png", "summary.txt", "run.h5"):
        assert os.path.getsize(tmp_path / name) > 0, name
