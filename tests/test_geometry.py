"""A model states its geometry once; every localized scheme takes the domain's periods from it."""

import math

import numpy as np
import pytest

from fdassim.analysis import AnalysisContext, ObsError, Rows
from fdassim.analysis.lenkf import LocalizedEnKF
from fdassim.analysis.localization import AdaptiveLocalization, Localization, on_domain
from fdassim.analysis.regression import RegressionFilter
from fdassim.config import parse
from fdassim.errors import ConfigError
from fdassim.geometry import Geometry
from fdassim.inflation import Multiplicative
from fdassim.models.base import check_model
from fdassim.models.lorenz96 import Lorenz96
from fdassim.twin import run_filter, simulate


def test_geometry_normalises_positions_and_periods():
    g = Geometry(periodic=[40], positions={"x": np.arange(40)})
    assert g.periodic == (40.0,) and g.dim == 1
    assert g.positions["x"].shape == (40, 1) and not g.positions["x"].flags.writeable
    assert Geometry(periodic=(None, 10.0)).periodic == (None, 10.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"periodic": ()}, r"one entry per coordinate axis"),
    ({"periodic": None}, r"one entry per coordinate axis"),
    ({"periodic": (0.0,)}, r"Geometry.periodic\[0\] must be a positive finite length"),
    ({"periodic": "ring"}, r"sequence of domain lengths"),
    ({"periodic": (1.0,), "positions": {"x": np.zeros((3, 2))}}, r"positions\['x'\] must be \(n, 1\)"),
    ({"periodic": (1.0,), "positions": {"x": [0.0, np.nan]}}, r"positions\['x'\] has NaN"),
    ({"periodic": (1.0,), "positions": [0.0]}, r"must map field names"),
])
def test_geometry_bad_values_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Geometry(**kwargs)


def test_lorenz96_states_a_ring():
    g = Lorenz96(n=36).geometry
    assert g.periodic == (36.0,)
    np.testing.assert_array_equal(g.positions["x"][:, 0], np.arange(36.0))


def test_model_with_a_bad_geometry_is_refused():
    class Bad(Lorenz96):
        geometry = {"x": np.arange(40)}

    with pytest.raises(TypeError, match=r"Bad.geometry must be a fdassim.geometry.Geometry or None, got dict"):
        check_model(Bad())


@pytest.mark.parametrize("loc", [Localization(3.0), AdaptiveLocalization()])
def test_on_domain_takes_the_models_periods(loc):
    assert loc.on_domain((40,)).periodic == (40.0,)
    assert loc.on_domain(None) is loc  # a model without a geometry: nowhere periodic
    same = type(loc)(**{**loc.__dict__, "periodic": (40.0,)})
    assert same.on_domain((40,)) is same
    with pytest.raises(ConfigError, match=r"periodic=\(None,\) contradicts the model's geometry "
                                          r"\(periodic=\(40.0,\)\): leave periodic out"):
        on_domain(type(loc)(**{**loc.__dict__, "periodic": (None,)}), (40.0,))


def ring_problem(seed=0, n=40, N=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N))
    idx = np.arange(0, n, 2)
    return X, X[idx], rng.standard_normal(idx.size), ObsError.diagonal(np.full(idx.size, 0.5)), idx


@pytest.mark.parametrize("scheme", [LocalizedEnKF(Localization(3.0)),
                                    RegressionFilter(localization=Localization(3.0))], ids=["lenkf", "eakf"])
def test_localized_schemes_use_the_context_periods_by_default(scheme):
    X, Y, y, R, idx = ring_problem()
    rows = Rows.whole(40, coords=np.arange(40))
    ring = AnalysisContext(seed=2, obs_coords=idx, periodic=(40.0,))
    line = AnalysisContext(seed=2, obs_coords=idx)
    explicit = type(scheme)(**{**scheme.__dict__, "localization": Localization(3.0, periodic=(40,))})
    a = scheme.analyse(X, Y, y, R, rows, ring)
    np.testing.assert_array_equal(a, explicit.analyse(X, Y, y, R, rows, line))
    b = scheme.analyse(X, Y, y, R, rows, line)
    # the ends of the ring are next to each other: only the periodic analysis lets the
    # observations at 0 and 2 update row 39, so the rows near the wrap differ by O(1)
    assert np.abs(a[38:] - b[38:]).max() > 0.01
    with pytest.raises(ConfigError, match="contradicts the model's geometry"):
        type(scheme)(**{**scheme.__dict__, "localization": Localization(3.0, periodic=(None,))}).prepare(
            Y, y, R, ring)


def test_run_filter_takes_the_ring_from_the_model():
    # Lorenz-96 through the twin loop: Localization(4.0) without periodic is the ring's, bit for bit
    model = Lorenz96()
    times = np.arange(21) * model.dt
    H = np.eye(40)[::2]
    R = ObsError.diagonal(np.ones(20))
    truth, obs = simulate(model, model.initial_condition(seed=1), times, H, R, seed=2)
    X0 = truth[0][:, None] + np.random.default_rng(3).standard_normal((40, 10))
    common = dict(times=times, truth=truth, obs_coords=model.coords[::2])

    def run(loc):
        return run_filter(model, LocalizedEnKF(loc), Multiplicative(1.05), X0, obs, H, R, 4, **common)

    np.testing.assert_array_equal(run(Localization(4.0)).Xa, run(Localization(4.0, periodic=(40,))).Xa)
    with pytest.raises(ConfigError, match="contradicts the model's geometry"):
        run(Localization(4.0, periodic=(None,)))


def test_params_yaml_contradicting_periodic_fails_before_any_work():
    data = {
        "model": {"name": "lorenz96"}, "ensemble": {"size": 10}, "observations": {"every": 2},
        "filter": {"scheme": "lenkf", "options": {"localization": {"radius": 4.0, "periodic": [None]}}},
        "run": {"cycles": 5, "interval": 0.05},
    }
    with pytest.raises(ConfigError, match=r"filter.options.localization.periodic: localization "
                                          r"periodic=\(None,\) contradicts the model's geometry"):
        parse(data)
    data["filter"]["options"]["localization"] = {"radius": 4.0}
    assert parse(data).make_scheme().localization.periodic is None  # the model's, at analysis time
    assert math.isfinite(parse(data).make_scheme().localization.radius)
