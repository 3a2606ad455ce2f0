"""The ISSM model's settings, its prior, and its members' forecasts through a domain's servers."""

import numpy as np
import pytest

from fdassim import ConfigError
from issm_bridge.errors import MatlabError
from issm_bridge.model import ISSM, Backend, Inversion


# -- settings --------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    (dict(state=("thickness",), parameters=("thickness",)), r"\['thickness'\] listed twice"),
    (dict(state=(), parameters=(), carried=("bed",)), "at least one field must be assimilated"),
    (dict(state=("smb",)), r"no md path for field\(s\) \['smb'\]"),
    (dict(paths={"smb": 3}), r"model.options.paths: entries \['smb'\] must map a field name to a string"),
    (dict(prior_std={"vx": -1.0}), "prior_std: .*'vx': -1.0"),
    (dict(prior_length=0.0), "ISSM: prior_length: must be a finite number > 0, got 0.0"),
    (dict(timeout=-1.0), "ISSM: timeout: must be a finite number > 0, got -1.0"),
    (dict(startup_timeout=float("inf")), "ISSM: startup_timeout: must be a finite number > 0, got inf"),
    (dict(servers=0), "ISSM: servers: must be an integer >= 1, got 0"),
    (dict(ranks=-2), "ISSM: ranks: must be an integer >= 0, got -2"),
    (dict(retries=-1), "ISSM: retries: must be an integer >= 0, got -1"),
    (dict(servers=True), "ISSM: servers: expected an integer, got True"),
    (dict(backend=Backend.ISSM), "the issm back end needs the model to run"),
    (dict(pool="a", directory="b"), "give pool .* or directory .* not both"),
    (dict(state=("thickness",), parameters=(), prior_std={}, inversion=Inversion()), r"lacking \['vx', 'vy', 'friction'\]"),
])
def test_bad_settings_are_refused(options, match):
    with pytest.raises(ConfigError, match=match):
        ISSM(**options)


@pytest.mark.parametrize("options, match", [
    (dict(absolute=0.0, relative=0.0), "give a velocity misfit weight"),
    (dict(tikhonov=-1.0), "Inversion: tikhonov: must be a finite number >= 0, got -1.0"),
    (dict(min=5.0, max=5.0), "need 0 <= min < max"),
    (dict(min=-1.0), "Inversion: min: must be a finite number >= 0, got -1.0"),
    (dict(iterations=0), "Inversion: iterations: must be an integer >= 1, got 0"),
])
def test_bad_inversion_settings_are_refused(options, match):
    with pytest.raises(ConfigError, match=match):
        Inversion(**options)


def test_params_yaml_selects_the_issm_model():
    from fdassim.config import parse

    base = {"ensemble": {"size": 4}, "observations": {"field": "thickness", "every": 4, "std": 5.0},
            "filter": {"scheme": "etkf"}, "run": {"cycles": 2, "interval": 5.0}}
    settings = parse({**base, "model": {"name": "issm", "options": {
        "servers": 3, "ranks": 4, "engine": "octave", "paths": {"smb": "smb.mass_balance"},
        "carried": ["bed", "smb"], "inversion": {"tikhonov": 10.0, "relative": 1.0}}}})
    model = settings.make_model()
    assert isinstance(model, ISSM) and model.servers == 3 and model.ranks == 4
    assert model.inversion == Inversion(tikhonov=10.0, relative=1.0)
    assert model.md_paths()["smb"] == "smb.mass_balance" and model.md_paths()["vx"] == "initialization.vx"
    job = model.job()
    assert job["np"] == 4.0 and job["solver"] == "flowline_solve" and "smb" not in job["results"]
    assert job["results"] == {"thickness": "Thickness", "surface": "Surface", "base": "Base", "vx": "Vx", "vy": "Vy"}
    with pytest.raises(ConfigError, match="model.options: unknown key 'server'"):
        parse({**base, "model": {"name": "issm", "options": {"server": 2}}})
    with pytest.raises(ConfigError, match="model.options.engine: 'matlb' is not allowed"):
        parse({**base, "model": {"name": "issm", "options": {"engine": "matlb"}}})


def test_prior_draw_is_reproducible_and_consistent():
    model = ISSM()
    x = np.linspace(0, 40e3, 41)
    xy = np.column_stack([x, 0 * x])
    mean = {"thickness": 600 - x / 100, "surface": 800 - x / 50, "base": 200 - x / 200, "bed": 200 - x / 200,
            "vx": 100 + 0 * x, "vy": 0 * x, "friction": 20 + 0 * x}
    draws = []
    for _ in range(2):
        state = {k: np.zeros(41) for k in mean}
        model.draw(state, mean, xy, np.random.default_rng([7, 3]))
        draws.append(state)
    assert all(np.array_equal(draws[0][k], draws[1][k]) for k in mean)             # same rng, same draw
    d = draws[0]
    assert np.array_equal(d["surface"], d["base"] + d["thickness"])                 # geometry kept consistent
    assert 1 < np.std(d["thickness"] - mean["thickness"]) < 60                      # std 20 m, one draw
    assert np.array_equal(d["vx"], mean["vx"]) and np.array_equal(d["bed"], mean["bed"])  # not perturbed
    other = {k: np.zeros(41) for k in mean}
    model.draw(other, mean, xy, np.random.default_rng([7, 4]))
    assert not np.array_equal(other["thickness"], d["thickness"])


# -- members through servers -------------------------------------------------------------------
def _members(domain, n=5, seed=11):
    members = [domain.model.member(domain, i) for i in range(n)]
    for m in members:
        m.initial_state(np.random.default_rng([seed, m.index]))
    return members


def _forecast_all(members, t0, t1):
    for m in members:
        m.forecast(t0, t1)
    return {m.index: {k: v.copy() for k, v in m.state.items()} for m in members}


@pytest.fixture(scope="module")
def reference(octave):
    """Five members forecast over two cycles, one by one on a single server: the reference."""
    model = ISSM(servers=1)
    domain = model.domain(None)
    try:
        members = _members(domain)
        first = _forecast_all(members, 0.0, 5.0)
        second = _forecast_all(members, 5.0, 10.0)
    finally:
        domain.close()
    return first, second


def _same(a, b):
    return all(np.array_equal(a[i][k], b[i][k]) for i in a for k in a[i])


def test_rounds_over_two_servers_equal_one_server(reference, octave):
    domain = ISSM(servers=2).domain(None)
    try:
        members = _members(domain)
        assert _same(_forecast_all(members, 0.0, 5.0), reference[0])
        assert _same(_forecast_all(members, 5.0, 10.0), reference[1])
        assert domain.rounds == 2 and domain.forecasts == 10  # each cycle's members went in one round
        first = reference[0][0]
        assert not np.array_equal(first["thickness"], members[0].state["thickness"])  # it did evolve
    finally:
        domain.close()


@pytest.mark.parametrize("fault, options", [("kill", {}), ("hang", {"timeout": 2.0})])
def test_failed_server_is_restarted_and_the_member_rerun(reference, octave, monkeypatch, fault, options):
    """A server killed (or hung past its timeout) in the middle of member 2's forecast in the
    second cycle: restarted, member 2 run again, and every member equals the fault-free run."""
    monkeypatch.setenv("ISSM_BRIDGE_FAULT", f"{fault}:2:1")
    domain = ISSM(servers=2, **options).domain(None)
    try:
        members = _members(domain)
        assert _same(_forecast_all(members, 0.0, 5.0), reference[0])
        assert _same(_forecast_all(members, 5.0, 10.0), reference[1])
        assert domain.report()["restarts"] == 1
    finally:
        domain.close()


def test_model_error_names_the_member_and_the_servers_go_on(octave):
    domain = ISSM(servers=2).domain(None)
    try:
        members = _members(domain, n=4)
        members[2].state["thickness"][5] = -10.0
        with pytest.raises(MatlabError, match=r"member 2 from t = 0 to 5: MATLAB error \[flowline:thickness\]: "
                                              r"the thickness must be positive") as err:
            for m in members:
                m.forecast(0.0, 5.0)
        assert "flowline_solve" in err.value.stack
        members[2].state["thickness"][5] = 500.0
        for m in members[2:]:  # member 3 finished in its round; member 2 runs alone, fixed
            m.forecast(0.0, 5.0)
        assert all(s.alive for s in domain.pool.status())
    finally:
        domain.close()
    assert not domain.pool.directory.exists()  # the temporary directory went with the servers


def test_inversion_after_the_analysis_recovers_the_friction(octave):
    """Member 1 gets the velocity and geometry of member 0 (its 'analysis') with a wrong friction;
    the inversion before its next forecast brings its friction back towards member 0's."""
    domain = ISSM(servers=2, inversion=Inversion(absolute=1.0, tikhonov=1e3, iterations=20)).domain(None)
    try:
        a, b = _members(domain, n=2)
        a.forecast(0.0, 1.0)  # a's state at t = 1 is consistent with a's friction
        truth = a.state["friction"].copy()
        for k in a.state:
            b.state[k][...] = a.state[k]
        b.state["friction"][...] = truth.mean()
        b.fresh = False  # as after an analysis
        before = np.linalg.norm(b.state["friction"] - truth)
        b.forecast(1.0, 2.0)
        assert np.linalg.norm(b.state["friction"] - truth) < 0.3 * before
    finally:
        domain.close()
