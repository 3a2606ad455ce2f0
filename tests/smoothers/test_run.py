"""A smoother run from params.yaml (`fdassim run`), and the settings that are refused."""

import copy

import numpy as np
import pytest
import yaml

from fdassim.config import parse
from fdassim.errors import ConfigError

SETTINGS = {
    "model": {"name": "lorenz96"},
    "ensemble": {"size": 10},
    "observations": {"field": "x", "std": 1.0},
    "smoother": {"method": "sienks", "options": {"lag": 3, "shift": 1, "mda": True}},
    "inflation": [{"multiplicative": {"lam": 1.04}}],
    "run": {"cycles": 20, "interval": 0.05, "seed": 3, "progress": False},
}


def _settings(**changes):
    """SETTINGS with sections replaced (``None``: removed)."""
    d = copy.deepcopy(SETTINGS)
    for key, value in changes.items():
        if value is None:
            d.pop(key)
        else:
            d[key] = value
    return d


@pytest.mark.parametrize("changes, match", [
    pytest.param({"filter": {"scheme": "etkf"}}, r"give exactly one of filter: \(a filter run\) and smoother: "
                 r"\(a smoother run\); got both", id="filter-and-smoother"),
    pytest.param({"smoother": None}, r"got neither", id="neither"),
    pytest.param({"smoother": {"method": "sienk"}}, r"smoother.method: 'sienk' is not known; choose one of enks, "
                 r"sienks, ienks, lin_ienks", id="unknown-method"),
    pytest.param({"smoother": {"method": "enks", "options": {"mda": True}}},
                 r"smoother.options: unknown key 'mda'; allowed keys are: lag, shift, finite_size, eps_N",
                 id="enks-has-no-mda"),
    pytest.param({"smoother": {"method": "ienks", "options": {"lag": 2, "shift": 3}}},
                 r"smoother.options: IEnKS: shift must be an integer in 1..2, got 3", id="shift-above-lag"),
    pytest.param({"smoother": {"method": "sienks", "options": {"lag": 3, "shift": 3, "mda": True}}},
                 r"SIEnKS: MDA needs shift < lag", id="mda-without-overlap"),
    pytest.param({"smoother": {"method": "lin_ienks", "options": {"max_iter": 4}}},
                 r"LinIEnKS: max_iter is 1 by definition, got 4", id="lin-ienks-iterations"),
    pytest.param({"smoother": {"method": "ienks", "options": {"tol": 0}}},
                 r"IEnKS: tol must be a positive finite number, got 0", id="zero-tol"),
    pytest.param({"smoother": {"method": "sienks", "options": {"mlef": "yes"}}},
                 r"smoother.options.mlef: expected true or false \(unquoted\), got 'yes'", id="quoted-bool"),
    pytest.param({"smoother": {"method": "sienks", "options": {"lag": 2.0}}},
                 r"smoother.options.lag: expected an integer, got 2.0", id="float-lag"),
])
def test_config_smoother_section_is_checked(changes, match):
    with pytest.raises(ConfigError, match=match):
        parse(_settings(**changes))


def test_config_smoother_builds_the_method():
    s = parse(_settings(smoother={"method": "ienks", "options": {"lag": 5, "shift": 2, "finite_size": True}}))
    m = s.make_smoother()
    assert (type(m).__name__, m.lag, m.shift, m.finite_size, m.mda) == ("IEnKS", 5, 2, True, False)
    assert "smoother: IEnKS(lag=5" in s.resolved()


def test_cli_runs_a_smoother_from_params_yaml(tmp_path, capsys):
    """`fdassim run params.yaml` with a smoother: section writes a store with the smoother's datasets."""
    pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
    import h5py

    from fdassim.cli import main

    out = tmp_path / "sm.h5"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(_settings(output={"path": str(out)})))
    assert main(["run", str(params)]) == 0
    text = capsys.readouterr().out
    assert "sienks (lag 3, shift 1) on lorenz96, N = 10" in text and "smoother RMSE" in text
    assert "3.00 ensemble simulations (7.0 forecast intervals)" in text  # MDA: 2 L + S
    with h5py.File(out, "r") as h5:
        assert h5.attrs["lag"] == 3 and h5.attrs["shift"] == 1
        assert h5["mean/smoother/x"].shape == (20, 40) and h5["windows/simulations"].shape == (18,)
        assert np.isfinite(h5["diagnostics/rmse_smoother"][1:17]).all()
        assert int(h5["completed"][()]) == 20
    # a smoother run cannot be continued (yet): refused before anything is touched
    assert main(["run", str(params), "--restart"]) == 2
    assert "--restart: a smoother run cannot be continued from its store yet" in capsys.readouterr().err
