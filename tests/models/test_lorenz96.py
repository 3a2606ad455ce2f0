"""Tests of fdassim.models.lorenz96: the tendency, its energy budget, RK4's order, the API."""

import numpy as np
import pytest

from fdassim.errors import ConfigError, InputError
from fdassim.models.lorenz96 import Lorenz96, rk4_step, tendency


def test_tendency_known_state():
    # dx_j = (x_{j+1} - x_{j-2}) x_{j-1} - x_j + F by hand for x = 1..5, F = 8
    x = np.arange(1.0, 6.0)
    np.testing.assert_array_equal(tendency(x, 8.0), [-3.0, 4.0, 11.0, 13.0, -5.0])


def test_tendency_fixed_point():
    np.testing.assert_array_equal(tendency(np.full(40, 8.0), 8.0), np.zeros(40))


def test_tendency_acts_on_first_axis():
    X = np.random.default_rng(0).standard_normal((40, 7))
    np.testing.assert_array_equal(tendency(X, 8.0), np.column_stack([tendency(x, 8.0) for x in X.T]))


def test_tendency_energy_budget():
    """The advection term conserves E = sum(x^2)/2: dE/dt = -sum(x^2) + F sum(x)."""
    x = 3.0 * np.random.default_rng(1).standard_normal(40)
    F = 8.0
    assert np.dot(x, tendency(x, F)) == pytest.approx(-np.dot(x, x) + F * x.sum(), rel=1e-12)


def test_energy_decays_without_forcing():
    model = Lorenz96(F=0.0)
    x = model.initial_condition(seed=2)
    e = [np.dot(x, x)]
    for _ in range(20):
        x = model.step(x)
        e.append(np.dot(x, x))
    assert np.all(np.diff(e) < 0)


def test_climatology_on_the_attractor():
    """Long-run statistics of L96 (n = 40, F = 8): mean about 2.3, std about 3.6."""
    model = Lorenz96()
    traj = model.truth(model.initial_condition(seed=3), np.arange(0, 200.0 + 1e-9, 0.05))
    assert 2.1 < traj.mean() < 2.6
    assert 3.4 < traj.std() < 3.8
    # mean energy budget: <sum x^2> = F <sum x> in a statistically steady state
    assert np.mean(np.sum(traj**2, axis=1)) == pytest.approx(8.0 * np.mean(np.sum(traj, axis=1)), rel=0.03)


def test_rk4_order_of_convergence():
    """The RK4 error at a fixed time falls as dt^4: log-log slope above 3.5."""
    x0 = Lorenz96().initial_condition(seed=4)
    T = 1.0
    ref = Lorenz96(dt=T / 3200).integrate(x0, 0.0, T)
    dts = np.array([0.05, 0.025, 0.0125, 0.00625])
    errors = [np.linalg.norm(Lorenz96(dt=dt).integrate(x0, 0.0, T) - ref) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert slope > 3.5, (slope, errors)


def test_rk4_step_exact_for_cubic():
    # dx/dt = 3 t^2 as an autonomous system (x, t): RK4 integrates cubics exactly
    f = lambda z: np.array([3 * z[1] ** 2, 1.0])
    np.testing.assert_allclose(rk4_step(f, np.array([0.0, 0.0]), 0.7), [0.7**3, 0.7], rtol=1e-14)


def test_integrate_is_vectorised_over_members():
    model = Lorenz96()
    X = model.initial_condition(seed=5)[:, None] + np.random.default_rng(5).standard_normal((40, 6))
    out = model.integrate(X, 1.0, 1.5)
    np.testing.assert_allclose(out, np.column_stack([model.integrate(x, 1.0, 1.5) for x in X.T]), atol=1e-13)


def test_integrate_zero_length_and_truth():
    model = Lorenz96()
    x0 = model.initial_condition(seed=6)
    np.testing.assert_array_equal(model.integrate(x0, 2.0, 2.0), x0)
    traj = model.truth(x0, [0.0, 0.05, 0.15])
    assert traj.shape == (3, 40)
    np.testing.assert_array_equal(traj[0], x0)
    np.testing.assert_allclose(traj[2], model.step(x0, 3), atol=1e-14)


def test_initial_condition_is_seeded():
    model = Lorenz96()
    np.testing.assert_array_equal(model.initial_condition(7), model.initial_condition(7))
    assert not np.array_equal(model.initial_condition(7), model.initial_condition(8))


@pytest.mark.parametrize("t0, t1", [(0.0, 0.07), (0.5, 0.4)])
def test_integrate_rejects_partial_steps(t0, t1):
    with pytest.raises(InputError, match=rf"t1 - t0 = {t1} - {t0} is not a non-negative whole number of steps dt = 0.05"):
        Lorenz96().integrate(np.zeros(40), t0, t1)


def test_integrate_rejects_wrong_length():
    with pytest.raises(InputError, match=r"x must have shape \(40,\) or \(40, N\), got \(39,\)"):
        Lorenz96().integrate(np.zeros(39), 0.0, 0.05)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=3), r"n: must be an integer >= 4, got 3"), (dict(n=40.0), r"n: expected an integer, got 40.0"),
    (dict(F=np.inf), r"F: must be a finite number, got inf"), (dict(dt=0.0), r"dt: must be a finite number > 0"),
    (dict(dt=-0.1), r"dt: must be a finite number > 0, got -0.1"), (dict(seed=True), r"seed: expected an integer")])
def test_lorenz96_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=f"Lorenz96: {match}"):
        Lorenz96(**kwargs)


def test_lorenz96_model_protocol_forecasts_states_in_place():
    from fdassim.models.base import check_model

    model = Lorenz96()
    check_model(model)
    state = model.new_state()
    model.initial_state(state, np.random.default_rng(4))
    x0 = state["x"].copy()
    # draws centre on the attractor point with the model's spread
    assert 0.5 * model.spread < np.std(x0 - model.initial_condition(seed=model.seed)) < 2 * model.spread
    out = model.forecast(state, 0.0, 0.1)
    assert out is state
    np.testing.assert_array_equal(state["x"], model.integrate(x0, 0.0, 0.1))
