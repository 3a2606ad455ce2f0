"""`fdassim report`: the table and figure of a stored run, and clear errors on bad files."""

import os

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import run_twin  # noqa: E402


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
    assert "40 of 40 cycles, N = 20, averages after 10 cycles" in text
    rmse = float(text.splitlines()[3].split()[1])  # the analysis row
    assert rmse == pytest.approx(np.mean(result.rmse_analysis[10:]), rel=1e-3)
    assert "x            forecast" in text
    assert os.path.getsize(str(tmp_path / "l96-rmse.png")) > 10_000


def test_report_errors_name_the_file(tmp_path):
    from fdassim.errors import ConfigError
    from fdassim.report import report

    with pytest.raises(ConfigError, match="no run store"):
        report(str(tmp_path / "absent.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(ConfigError, match="is not an HDF5 run store"):
        report(str(bad))
