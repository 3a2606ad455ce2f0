"""The flowline glacier: its grounding line, its steady state, its settings."""

import types

import numpy as np
import pytest

from fdassim.errors import ConfigError
from fdassim.models.flowline import grounding_line


def test_grounding_line_interpolates_the_flotation_crossing():
    """f = h + 1.1 b is 100 at x = 0, 20 at x = 1 and -60 at x = 2: it crosses zero at x = 1.25
    (linear interpolation between the last grounded and the first floating node), in any order."""
    x = np.array([2.0, 0.0, 1.0, 3.0])
    b = np.array([-100.0, -100.0, -100.0, -100.0])
    h = np.array([50.0, 210.0, 130.0, 10.0])  # f = h - 110
    assert grounding_line(x, h, b, 1.1) == pytest.approx(1.25, abs=1e-14)
    assert grounding_line(x, h + 1e3, b, 1.1) == 3.0  # grounded everywhere: the front
    assert grounding_line(x, h * 0, b, 1.1) == 0.0  # afloat everywhere


def test_flowline_refuses_bad_settings_and_split_members():
    pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
    from fdassim.models.flowline import Flowline

    with pytest.raises(ConfigError, match="Flowline: friction: must be a finite number > 0, got -1.0"):
        Flowline(friction=-1.0)
    with pytest.raises(ConfigError, match=r"Flowline: sigma: must be a finite number > 0, got \(1.0, 0.0\)"):
        Flowline(sigma=(1.0, 0.0))
    with pytest.raises(ConfigError, match="Flowline: cells: expected an integer, got True"):
        Flowline(cells=True)  # a bool is not a number
    with pytest.raises(ConfigError, match="a flowline member is not split over ranks"):
        Flowline().domain(types.SimpleNamespace(size=2))


def test_flowline_steady_state_grounds_on_the_sill():
    """After the spin-up the glacier is in steady state (the truth's first decade with the
    spin-up's accumulation changes the grounding line by < 100 m) with its grounding line on
    the sill's seaward flank, and the member reports the grounding line of its own fields."""
    pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
    from mpi4py import MPI

    from fdassim.models.flowline import Flowline

    model = Flowline(cells=30, spinup=60.0, accumulation_truth=0.5, dt=2.0)
    member = model.member(model.domain(MPI.COMM_SELF), 0)
    member.truth_state(np.random.default_rng(0))
    xg0 = member.state["grounding_line"][0]
    assert model.sill_position < xg0 < model.sill_position + 2 * model.sill_width
    member.forecast(0.0, 10.0)
    assert abs(member.state["grounding_line"][0] - xg0) < 100.0
    f = member.inner.fields
    x = f["thickness"].function_space().mesh().coordinates.dat.data_ro
    assert member.state["grounding_line"][0] == grounding_line(x, f["thickness"].dat.data_ro, f["bed"].dat.data_ro,
                                                               1024 / 917)


def test_flowline_is_a_model_of_params_yaml():
    """``model: {name: flowline}`` in params.yaml builds the flowline with its options, and a
    misspelt option is refused naming it and the allowed keys."""
    pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
    from fdassim.config import parse
    from fdassim.models.flowline import Flowline

    params = {"model": {"name": "flowline", "options": {"cells": 30, "spinup": 60.0}}, "ensemble": {"size": 4},
              "observations": {"field": "thickness"}, "filter": {"scheme": "enkf"},
              "run": {"cycles": 1, "interval": 10.0}}
    model = parse(params).make_model()
    assert isinstance(model, Flowline) and model.cells == 30 and model.spinup == 60.0
    params["model"]["options"] = {"cell": 30}
    with pytest.raises(ConfigError, match="model.options: unknown key 'cell'; allowed keys are: length, cells"):
        parse(params)
