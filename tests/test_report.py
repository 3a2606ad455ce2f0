"""`fdassim report`: the table and figure of a stored run, and clear errors on bad files."""

import os

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import run_twin  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402


def test_report_table_figure_and_field_rmse(tmp_path):
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.etkf import ETKF
    from fdassim.inflation import Multiplicative
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Identity, Observations
    from fdassim.report import report

    model = Lorenz96()
    path = str(tmp_path / "l96.h5")
    result = run_twin(model, ETKF(), path, comm=MPI.COMM_SELF, N=20, cycles=40, interval=0.05,
                      observations=Observations(Identity(), ObsError.from_std(1.0)),
                      inflation=Multiplicative(1.02))
    text = report(path, burn_in=10)
    assert "40 of 40 cycles, N = 20, averages after 10 cycles (the first 10 left out as burn-in)" in text
    assert "status: completed" in text
    rmse = float(next(line for line in text.splitlines() if line.startswith("analysis")).split()[1])
    assert rmse == pytest.approx(np.mean(result.rmse_analysis[10:]), rel=1e-3)
    assert "x            forecast" in text
    assert os.path.getsize(str(tmp_path / "l96-rmse.png")) > 10_000


def test_report_errors_name_the_file(tmp_path):
    from fdassim.errors import ConfigError, StoreNotFound
    from fdassim.report import report

    with pytest.raises(StoreNotFound, match=r"no run store '.*absent.h5': check the path"):
        report(str(tmp_path / "absent.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(ConfigError, match="is not an HDF5 run store"):
        report(str(bad))


def _l96_run(tmp_path, name, N, cycles, every=1, inflation=1.02):
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.etkf import ETKF
    from fdassim.inflation import Multiplicative
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Observations, Subset

    path = str(tmp_path / f"{name}.h5")
    obs = Observations(Subset(tuple(range(0, 40, every))), ObsError.from_std(1.0))
    result = run_twin(Lorenz96(), ETKF(), path, comm=MPI.COMM_SELF, N=N, cycles=cycles, interval=0.05,
                      observations=obs, inflation=Multiplicative(inflation) if inflation else None)
    return path, result


def test_report_divergence_warned_once_and_stored(tmp_path):
    """ETKF with 3 members, no inflation, half of Lorenz-96 observed: far fewer members than the
    ~13 unstable directions, so the ensemble collapses and loses the truth (for seeds 5, 6, 7
    the rule fires at cycles 28, 39, 24 and the RMSE ends 16-21 times the spread)."""
    import warnings

    import h5py

    from fdassim.errors import DivergenceWarning
    from fdassim.report import report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path, result = _l96_run(tmp_path, "lost", N=3, cycles=60, every=2, inflation=None)
    diverged = [w for w in caught if issubclass(w.category, DivergenceWarning)]
    assert len(diverged) == 1 and result.diverged_at is not None
    assert f"the filter diverges at cycle {result.diverged_at}: its analysis RMSE" in str(diverged[0].message)
    k = result.diverged_at
    assert np.mean(result.rmse_analysis[k - 9:k + 1]) > 5 * np.mean(result.spread_analysis[k - 9:k + 1])
    with h5py.File(path, "r") as h5:
        assert int(h5[sl.DIVERGENCE][()]) == k
    assert f"warning: the filter diverged at cycle {k} (try more inflation, localization" in report(path, figures=False)


def test_report_healthy_run_has_no_divergence_warning(tmp_path):
    import warnings

    from fdassim.errors import DivergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, result = _l96_run(tmp_path, "fine", N=20, cycles=60)
    assert result.diverged_at is None and not [w for w in caught if issubclass(w.category, DivergenceWarning)]
    assert np.mean(result.rmse_analysis[20:]) < 0.4  # it does track the truth (RMSE ~0.2, obs error 1)


def test_report_burn_in_is_checked(tmp_path, capsys):
    from fdassim.cli import main

    path, _ = _l96_run(tmp_path, "short", N=10, cycles=10)
    assert main(["report", path, "--burn-in", "10", "--no-figures"]) == 2
    assert (f"report --burn-in: 10 leaves no cycle to average: {path!r} holds 10 completed cycles; give 0 to 9"
            in capsys.readouterr().err)
    assert main(["report", path, "--burn-in", "9", "--no-figures"]) == 0
    with pytest.raises(SystemExit) as exit_:
        main(["report", path, "--burn-in", "-1"])
    assert exit_.value.code == 2 and "must be 0 or more, got -1" in capsys.readouterr().err
