"""The Model protocol's full form: per-member objects, lifecycle hooks, carried fields.

The test model (``ab2.py``) is Lorenz-96 stepped by Adams-Bashforth 2, whose previous
tendency is a carried field; its members log their ``start``/``close`` calls.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from ab2 import AB2Lorenz96  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

HERE = os.path.dirname(__file__)


def _ensemble(model, comm, N=5):
    from fdassim.ensemble import Ensemble

    return Ensemble(model, N, comm=comm, truth=True)


def _run(model, comm, cycles=3):
    from fdassim import ETKF, ObsError, Observations, Subset, assimilate

    ens = _ensemble(model, comm)
    obs = Observations(Subset(tuple(range(0, model.n, 2))), ObsError.from_std(1.0))
    return ens, assimilate(ens, ETKF(), obs, 0.05 * np.arange(cycles + 1), seed=2, progress=False)


def test_protocol_hooks_called_once_in_order_around_a_run():
    model = AB2Lorenz96()
    ens, result = _run(model, MPI.COMM_SELF)
    members = list(range(6))  # 5 members and the truth
    assert model.events == ([("start", "domain")] + [("start", i) for i in members]
                            + [("close", i) for i in members] + [("close", "domain")])
    assert np.all(np.isfinite(result.rmse_analysis))


def test_protocol_carried_field_is_kept_out_of_the_analysis():
    ens = _ensemble(AB2Lorenz96(), MPI.COMM_SELF)
    assert [f.name for f in ens.layout.fields] == ["x"] and ens.layout.n_global == 12
    assert [f.name for f in ens.carried.fields] == ["previous"]
    ens.initialize(seed=4)
    before = [v.copy() for _, v in ens.carried_values()]
    rows = ens.to_rows()
    ens.from_rows(rows[:, :5] + 1.0)  # an "analysis" moves x only
    for (i, after), b in zip(ens.carried_values(), before):
        np.testing.assert_array_equal(after, b)


@pytest.mark.parallel(nprocs=2)
def test_protocol_close_called_on_every_rank_after_a_member_fails():
    """Member 3 (on rank 1) fails in cycle 1: both ranks raise the same MemberFailure, and
    every member and the domain on both ranks were closed."""
    from fdassim.errors import MemberFailure

    model = AB2Lorenz96(fail_member=3, fail_at=0.05)
    with pytest.raises(MemberFailure, match=r"member 3 failed in cycle 1: RuntimeError: solver diverged at t = 0.05"):
        _run(model, MPI.COMM_WORLD)
    mine = [0, 2, 4] if MPI.COMM_WORLD.rank == 0 else [1, 3, 5]
    closed = [who for what, who in model.events if what == "close"]
    assert closed == mine + ["domain"]
    assert all(MPI.COMM_WORLD.allgather(closed == mine + ["domain"]))


def test_protocol_close_failure_is_an_error_naming_the_member():
    from fdassim.errors import ModelError

    model = AB2Lorenz96(fail_close=2)
    with pytest.raises(ModelError, match=r"closing the model on rank 0 failed: member 2: OSError: the server would not stop"):
        _run(model, MPI.COMM_SELF, cycles=1)
    assert ("close", "domain") in model.events  # the others were closed all the same


def test_protocol_close_failure_during_another_error_is_a_warning():
    from fdassim.errors import MemberFailure

    model = AB2Lorenz96(fail_member=1, fail_at=0.0, fail_close=2)
    with pytest.warns(RuntimeWarning, match="member 2: OSError"), pytest.raises(MemberFailure, match="member 1 failed"):
        _run(model, MPI.COMM_SELF, cycles=1)


def test_protocol_batched_forecast_names_the_failing_member():
    from fdassim.errors import MemberFailure
    from fdassim.models.lorenz96 import Lorenz96

    class Fragile(Lorenz96):
        def forecast(self, state, t0, t1):
            if np.abs(state["x"]).max() > 1e5:
                raise FloatingPointError("state out of range")
            return super().forecast(state, t0, t1)

    ens = _ensemble(Fragile(), MPI.COMM_SELF, N=6)
    ens.initialize(seed=1)
    ens.members[4].state["x"][7] = 1e6
    with pytest.raises(MemberFailure, match=r"member 4 failed in cycle 0: FloatingPointError: state out of range "
                                            r"\(found by forecasting the batch's members one by one\)"):
        ens.forecast(0.0, 0.05, cycle=0)


def test_protocol_check_model_names_what_is_missing():
    from fdassim.layout import FieldSpec
    from fdassim.models.base import check_model

    class NoForecast:
        fields = (FieldSpec("x"),)

        def new_state(self, comm):
            return {}

        def initial_state(self, state, rng):
            pass

    with pytest.raises(TypeError, match=r"NoForecast is not a fdassim Model: it lacks forecast \(or a member"):
        check_model(NoForecast())

    class AllCarried(AB2Lorenz96):
        fields = (FieldSpec("previous", carried=True),)

    with pytest.raises(TypeError, match="every field is carried"):
        check_model(AllCarried())


def test_fieldspec_refuses_a_carried_parameter():
    from fdassim.errors import ConfigError
    from fdassim.layout import FieldSpec

    with pytest.raises(ConfigError, match="field 'b': a carried field is not assimilated"):
        FieldSpec("b", parameter=True, carried=True)


def _script(path, *args, kill_at=None):
    env = dict(os.environ)
    env.pop("FDASSIM_KILL_AT", None)
    if kill_at:
        env["FDASSIM_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, os.path.join(HERE, "ab2.py"), str(path), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_protocol_carried_field_restored_bitwise_after_a_kill(tmp_path):
    """Killed (in a subprocess) in the middle of cycle 3's forecast, the run restarts from
    cycle 2 with the carried tendency from the store and ends identical to an uninterrupted
    run; restarted with the carried values zeroed instead, it does not (so the test can fail)."""
    import shutil

    import h5py

    from ab2 import run
    from helpers import read_store

    killed = _script(tmp_path / "run.h5", kill_at="forecast:3")
    assert killed.returncode != 0, "the fault did not fire"
    with h5py.File(tmp_path / "run.h5", "r") as h5:
        assert int(h5[sl.COMPLETED][()]) == 3
        assert np.all(np.isfinite(h5[sl.carried(0)][...])) and h5[sl.carried(0)].shape == (7, 12)
    shutil.copy(tmp_path / "run.h5", tmp_path / "lost.h5")
    with h5py.File(tmp_path / "lost.h5", "r+") as h5:
        for slot in (0, 1):
            h5[f"restart/carried{slot}"][...] = 0.0
    run(tmp_path / "ref.h5", comm=MPI.COMM_SELF)
    run(tmp_path / "run.h5", restart=True, comm=MPI.COMM_SELF)
    run(tmp_path / "lost.h5", restart=True, comm=MPI.COMM_SELF)
    a, b, c = (read_store(tmp_path / f"{name}.h5") for name in ("ref", "run", "lost"))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a[sl.ensemble("analysis", "x")][-1], c[sl.ensemble("analysis", "x")][-1])
