"""A smoother run from params.yaml (`fdassim run`), and the settings that are refused."""

import copy

import numpy as np
import pytest
import yaml

from fdassim.config import parse
from fdassim.errors import ConfigError
from fdassim import store_layout as sl

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
        assert h5[sl.mean("smoother", "x")].shape == (20, 40) and h5[sl.window("simulations")].shape == (18,)
        assert np.isfinite(h5[sl.diagnostic("rmse_smoother")][1:17]).all()
        assert int(h5[sl.COMPLETED][()]) == 20
    # a smoother run cannot be continued (yet): refused before anything is touched
    assert main(["run", str(params), "--restart"]) == 2
    assert "--restart: a smoother run cannot be continued from its store yet" in capsys.readouterr().err


HEAT = {
    "model": {"name": "heat"},
    "ensemble": {"size": 6},
    "observations": {"field": "temperature", "points": [[x, y] for x in (0.25, 0.75) for y in (0.25, 0.75)],
                     "std": 0.1},
    "smoother": {"method": "ienks", "options": {"lag": 2, "shift": 1, "mda": False}},
    "run": {"cycles": 5, "interval": 0.2, "seed": 2, "progress": False},
}


def test_cli_smoother_on_a_firedrake_model_and_its_report(tmp_path, capsys):
    """`fdassim run` with a smoother: section on another model of the protocol (the Firedrake heat
    equation, a source parameter), then `fdassim report`: the smoother's row is the time average of
    its stored RMSE and spread (4 windows leave times 0..3, of which 1..3 are observation times:
    slots 0..2 of 5), its windows' costs are
    reported, and the figure holds its curves."""
    pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
    import h5py

    from fdassim.cli import main

    out = tmp_path / "heat.h5"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(dict(HEAT, output={"path": str(out)})))
    assert main(["run", str(params)]) == 0
    assert "ienks (lag 2, shift 1) on heat, N = 6" in capsys.readouterr().out
    with h5py.File(out, "r") as h5:
        rmse, spread = h5[sl.diagnostic("rmse_smoother")][:], h5[sl.diagnostic("spread_smoother")][:]
        sims = h5[sl.window("simulations")][:]
        assert h5[sl.mean("smoother", "source")].shape[0] == 5 and sims.shape == (4,)
    assert np.isfinite(rmse[:3]).all() and np.isnan(rmse[3:]).all()  # the last L - 1 never left a window
    assert np.all(sims >= 3)  # IEnKS SDA: at least two iterations (the second one's step is checked) + the shift
    assert main(["report", str(out), "--burn-in", "1"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("smoother"))
    assert [float(v) for v in row.split()[1:3]] == pytest.approx([rmse[1:3].mean(), spread[1:3].mean()], rel=1e-3)
    assert "(2 times smoothed to the end)" in row
    assert (f"IEnKS(lag=2, shift=1, finite_size=False, eps_N=None, mda=False, tol=0.001, max_iter=10): 4 of 4 "
            f"windows run; per window {sims[1:].mean():.2f} ensemble simulations" in text)
    assert (tmp_path / "heat-rmse.png").stat().st_size > 10_000


def test_killed_smoother_run_is_refused_a_restart_and_started_again(tmp_path, capsys):
    """A smoother run killed in a forecast (a process of its own) cannot be continued: its store
    says it was interrupted and to start again with --overwrite, `--restart` is refused before
    anything is touched (the store is left as the kill left it), and `--overwrite` runs it to the end."""
    pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
    import os
    import subprocess
    import sys

    import h5py

    from fdassim.cli import main
    from fdassim.report import report

    out = tmp_path / "killed.h5"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(_settings(output={"path": str(out)})))
    env = {k: v for k, v in os.environ.items() if k != "PETSC_OPTIONS"}
    env["FDASSIM_KILL_AT"] = "forecast:8"
    killed = subprocess.run([sys.executable, "-m", "fdassim.cli", "run", str(params)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode != 0, "the fault did not fire"
    text = report(str(out), figures=False)
    assert ("status: interrupted after" in text and "a smoother run cannot be continued: start it again with "
            "fdassim run --overwrite" in text), text
    before = out.stat().st_mtime_ns
    assert main(["run", str(params), "--restart"]) == 2
    assert "--restart: a smoother run cannot be continued from its store" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before
    assert main(["run", str(params), "--overwrite"]) == 0
    with h5py.File(out, "r") as h5:
        assert int(h5[sl.COMPLETED][()]) == 20 and np.isfinite(h5[sl.window("simulations")][:]).all()
    assert "status: completed" in report(str(out), figures=False)
