"""Several quantities on their own schedules through the cycle: what each cycle observes,
no analysis when nothing is observed, the store's layout, and the same on 2 ranks."""

import numpy as np
import pytest

firedrake = pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from helpers import read_store, run_twin, sort_by_coordinates, split_paths  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402

K, DT = 8, 0.05  # analysis times 0.05, 0.10, ..., 0.40


def _l96_observations():
    from fdassim.analysis.base import ObsError
    from fdassim.observations import Observations, Quantity, Schedule, Subset

    odd = Quantity("odd", Subset(tuple(range(1, 40, 2))), ObsError.from_std(1.0), Schedule(start=0.1, every=0.1))
    sparse = Quantity("sparse", Subset(tuple(range(0, 40, 4))), ObsError.from_std(0.5), Schedule(times=(0.15, 0.3)))
    return Observations([odd, sparse])


def _l96_run(path, comm):
    from fdassim.analysis.etkf import ETKF
    from fdassim.models.lorenz96 import Lorenz96

    return run_twin(Lorenz96(), ETKF(), path, comm=comm, N=10, cycles=K, interval=DT,
                    observations=_l96_observations())


def test_cycle_assimilates_what_is_observed_and_nothing_else(tmp_path):
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.etkf import ETKF

    path = str(tmp_path / "l96.h5")
    result = _l96_run(path, MPI.COMM_SELF)
    d = read_store(path, names=("observations", "ensemble", "truth", "diagnostics"))
    # odd values at 0.1, 0.2, 0.3, 0.4 (cycles 1, 3, 5, 7); every 4th at 0.15 and 0.3 (2, 5)
    assert d[sl.observation("odd", "analysis_cycle")].tolist() == [1, 3, 5, 7]
    assert d[sl.observation("sparse", "analysis_cycle")].tolist() == [2, 5]
    np.testing.assert_allclose(d[sl.observation("sparse", "time")], [0.15, 0.3])
    assert d[sl.observation("odd", "values")].shape == (4, 20) and d[sl.observation("sparse", "values")].shape == (2, 10)
    expect_n = [0, 20, 10, 20, 0, 30, 0, 20]
    assert d[sl.diagnostic("n_obs")].tolist() == expect_n and result.n_obs.tolist() == expect_n
    np.testing.assert_array_equal(d[sl.observation("odd", "positions")][:, 0], np.arange(1, 40, 2))
    np.testing.assert_array_equal(d[sl.observation("sparse", "error_variance")], np.full(10, 0.25))
    Xf, Xa = d[sl.ensemble("forecast", "x")], d[sl.ensemble("analysis", "x")]
    for k in (0, 4, 6):  # nothing observed: no analysis, the forecast goes on
        np.testing.assert_array_equal(Xa[k], Xf[k])
    # cycle 5 observes both quantities: the ETKF on the stacked y, H and block-diagonal R
    idx = np.r_[1:40:2, 0:40:4]
    y = np.concatenate([d[sl.observation("odd", "values")][2], d[sl.observation("sparse", "values")][1]])
    R = ObsError.diagonal(np.r_[np.ones(20), np.full(10, 0.25)])
    expect = ETKF().analyse(Xf[5], Xf[5][idx], y, R)
    np.testing.assert_allclose(Xa[5], expect, rtol=0, atol=1e-12 * np.abs(expect).max())
    # the twin's observations are the truth plus noise of the quantity's size
    err = (y - d[sl.truth("x")][5][idx]) / np.sqrt(R.var)
    assert np.all(err != 0) and np.all(np.abs(err) < 5)
    np.testing.assert_allclose(d[sl.observation("odd", "predicted_mean")][2], Xf[5][1::2].mean(axis=1), rtol=1e-14)


@pytest.mark.parallel(nprocs=2)
def test_cycle_several_quantities_members_split_is_bitwise_serial(tmp_path_factory):
    world, serial = split_paths(tmp_path_factory, "multi")
    _l96_run(world, MPI.COMM_WORLD)
    _l96_run(serial, MPI.COMM_SELF)
    a, b = read_store(world), read_store(serial)
    assert sorted(a) == sorted(b)
    for key in a:
        if key.startswith("diagnostics/") and key != sl.diagnostic("n_obs"):
            # RMSE and spread are sums over rows reduced over ranks: their order changes
            # with the split, so only their last bit may differ
            np.testing.assert_allclose(a[key], b[key], rtol=1e-14, atol=0, err_msg=key)
        else:  # ensembles, means, truth, observations, QC flags and counts: bit for bit
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _heat_observations():
    from fdassim.analysis.base import ObsError
    from fdassim.observations import Box, NodalValues, Observations, PointValues, Quantity, Schedule

    pts = np.array([[0.3, 0.3], [0.7, 0.2], [0.5, 0.8]])
    return Observations([
        Quantity("temperature", NodalValues("temperature", mask=Box([0.0, 0.0], [1.0, 0.5]), every=3),
                 ObsError.from_std(0.1)),
        Quantity("source", PointValues("source", pts), ObsError.from_std(0.2), Schedule(times=(0.4,))),
    ])


@pytest.mark.parallel(nprocs=2)
def test_cycle_several_quantities_mesh_split_agrees_with_serial(tmp_path_factory):
    from fdassim.analysis.etkf import ETKF
    from fdassim.models.heat import Heat

    from fdassim.parameters import BetaBounds

    world, serial = split_paths(tmp_path_factory, "heatmulti")
    bounds = [BetaBounds("source", observed="source", width=3.0)]  # from the source's observations
    for path, c, M in ((world, MPI.COMM_WORLD, 2), (serial, MPI.COMM_SELF, 1)):
        run_twin(Heat(), ETKF(), path, comm=c, N=6, cycles=3, ranks_per_member=M, observations=_heat_observations(),
                 parameters=bounds)
    a, b = read_store(world), read_store(serial)
    for d in (a, b):  # at t = 0.4 the source is observed: rows near a point lie within 3 sigma of it
        pts, y = d[sl.observation("source", "positions")], d[sl.observation("source", "values")][0]
        xy, Xa = d[sl.positions("source")], d[sl.ensemble("analysis", "source")][1]
        dist = np.linalg.norm(xy[:, None, :] - pts[None, :, :], axis=2)  # (nodes, 3)
        radius = 0.5 * np.median(np.sort(np.linalg.norm(pts[:, None] - pts[None], axis=2), axis=1)[:, 1])
        near = dist.min(axis=1) <= radius
        j = dist.argmin(axis=1)[near]
        assert near.sum() >= 3
        assert np.all(np.abs(Xa[near] - y[j][:, None]) <= 3.0 * 0.2 + 1e-12)
    for key in (sl.observation("temperature", "values"), sl.observation("temperature", "positions"),
                sl.observation("source", "values"), sl.diagnostic("n_obs")):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12, err_msg=key)
    assert b[sl.diagnostic("n_obs")].tolist() == [15, 18, 15]  # the source's 3 points once, at t = 0.4
    ca, cb = a[sl.positions("source")], b[sl.positions("source")]
    xa = sort_by_coordinates(a[sl.ensemble("analysis", "source")][-1], ca)
    xb = sort_by_coordinates(b[sl.ensemble("analysis", "source")][-1], cb)
    np.testing.assert_allclose(xa, xb, rtol=1e-12, atol=1e-12 * np.abs(xb).max())


def test_cycle_quality_control_rejects_counts_and_stores(tmp_path):
    """A wild value (50 observation-error deviations off) fails the 3-sigma check: it is
    rejected, counted and stored, and the analysis is the ETKF on the other observations."""
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.etkf import ETKF
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Observations, Quantity, Subset

    path = str(tmp_path / "twin.h5")
    idx = tuple(range(0, 40, 4))
    twin = Observations([Quantity("x", Subset(idx), ObsError.from_std(1.0))])
    run_twin(Lorenz96(), ETKF(), path, comm=MPI.COMM_SELF, N=10, cycles=3, interval=DT, observations=twin)
    y = read_store(path)[sl.observation("x", "values")].copy()
    y[1, 3] += 50.0
    checked = Observations([Quantity("x", Subset(idx), ObsError.from_std(1.0), values=y, outlier_threshold=3.0)])
    path = str(tmp_path / "qc.h5")
    result = run_twin(Lorenz96(), ETKF(), path, comm=MPI.COMM_SELF, N=10, cycles=3, interval=DT,
                      observations=checked)
    d = read_store(path)
    assert d[sl.observation("x", "n_rejected")].tolist() == [0, 1, 0]
    assert d[sl.observation("x", "rejected")][1].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert result.n_obs.tolist() == [10, 9, 10]
    keep = np.arange(10) != 3
    Xf = d[sl.ensemble("forecast", "x")][1]
    expect = ETKF().analyse(Xf, Xf[list(idx)][keep], y[1][keep], ObsError.from_std(np.ones(9)))
    np.testing.assert_allclose(d[sl.ensemble("analysis", "x")][1], expect, rtol=0, atol=1e-12 * np.abs(expect).max())
    from fdassim.report import report

    text = report(path, figures=False)  # `fdassim report` shows the counts
    assert "observations: 29 assimilated; 0 of 3 cycles without any (no analysis)" in text
    assert "x            3 times x 10 values; rejected by QC: 1 (at most 1 in one cycle)" in text


def test_store_grown_to_more_cycles_gets_each_quantity_s_new_times(tmp_path):
    """A run of 4 cycles grown to 8 (what ``fdassim run --restart`` does when run.cycles is
    raised): each quantity keeps its stored rows and gets rows for its new times (odd: every
    0.1 -> cycles 1, 3 then 5, 7; sparse: 0.15 only, then 0.3 too); the grown store takes the
    8-cycle plan, and the continued run equals one run of 8 cycles from the start. A changed
    schedule is refused, naming the quantity."""
    import h5py

    from fdassim.analysis.etkf import ETKF
    from fdassim.errors import ConfigError
    from fdassim.grow import grow
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Observations, Quantity, Schedule

    short, full = str(tmp_path / "short.h5"), str(tmp_path / "full.h5")
    odd, sparse = _l96_observations().quantities
    obs = Observations([odd, Quantity("sparse", sparse.operator, sparse.error, Schedule(start=0.15, every=0.15))])
    run_twin(Lorenz96(), ETKF(), short, comm=MPI.COMM_SELF, N=10, cycles=4, interval=DT, observations=obs)
    run_twin(Lorenz96(), ETKF(), full, comm=MPI.COMM_SELF, N=10, cycles=K, interval=DT, observations=obs)
    from fdassim.ensemble import Ensemble

    ens = Ensemble(Lorenz96(), 10, comm=MPI.COMM_SELF, truth=True)
    times = DT * np.arange(K + 1)
    moved = Observations([odd, Quantity("sparse", sparse.operator, sparse.error, Schedule(times=(0.2, 0.3)))])
    with pytest.raises(ConfigError, match=r"observations.sparse was observed at cycles \[2\] .* its new schedule "
                                          r"starts \[3\]"):
        grow(short, times, observations=moved.plan(ens, times))
    assert grow(short, times, observations=obs.plan(ens, times)) == 4
    with h5py.File(short, "r") as h5:
        assert h5[sl.observation("odd", "analysis_cycle")][...].tolist() == [1, 3, 5, 7]
        assert h5[sl.observation("sparse", "analysis_cycle")][...].tolist() == [2, 5]
        np.testing.assert_allclose(h5[sl.observation("sparse", "time")][...], [0.15, 0.3])
        assert np.all(np.isnan(h5[sl.observation("odd", "values")][2:])) and h5[sl.observation("odd", "n_rejected")][3] == -1
        assert h5[sl.diagnostic("n_obs")][...].tolist()[4:] == [-1] * 4
    from fdassim.cycle import assimilate
    from fdassim.io import Store

    with Store.open(short, ens) as store:
        assimilate(ens, ETKF(), obs, times, seed=5, store=store, restart=True, progress=False)
    a, b = (read_store(p, names=("observations", "ensemble", "diagnostics")) for p in (short, full))
    for key in (sl.observation("odd", "values"), sl.observation("sparse", "values"), sl.ensemble("analysis", "x"), sl.diagnostic("n_obs")):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_quantity_left_out_of_the_analysis_reaches_the_after_analysis_step(tmp_path):
    """``assimilate=False`` (the hybrid inversion's velocity): the analysis is bitwise the one
    without that quantity, the quantity is still drawn and stored, and the after-analysis step
    gets its values at the cycles it is observed (and only at cycles with an analysis)."""
    from fdassim.analysis.base import ObsError
    from fdassim.analysis.etkf import ETKF
    from fdassim.models.lorenz96 import Lorenz96
    from fdassim.observations import Observations, Quantity, Schedule, Subset

    odd = Quantity("odd", Subset(tuple(range(1, 40, 2))), ObsError.from_std(1.0), Schedule(start=0.1, every=0.1))
    side = Quantity("side", Subset(tuple(range(0, 40, 4))), ObsError.from_std(0.5), Schedule(times=(0.15, 0.3)),
                    assimilate=False)
    seen = []

    def step(ensemble, cycle, observed):
        seen.append((cycle, sorted(observed), observed.get("side") and observed["side"].values.size))

    from fdassim.cycle import assimilate
    from fdassim.ensemble import Ensemble
    from fdassim.io import Store

    runs = {}
    for name, quantities in (("with", [odd, side]), ("without", [odd])):
        ens = Ensemble(Lorenz96(), 10, comm=MPI.COMM_SELF, truth=True)
        obs = Observations(quantities)
        times = DT * np.arange(K + 1)
        path = str(tmp_path / f"{name}.h5")
        with Store.create(path, ens, times, obs) as store:
            runs[name] = assimilate(ens, ETKF(), obs, times, seed=5, store=store, progress=False,
                                    after_analysis=step if name == "with" else None)
        runs[name + "_store"] = read_store(path, names=("ensemble", "observations"))
    a, b = runs["with_store"], runs["without_store"]
    np.testing.assert_array_equal(a[sl.ensemble("analysis", "x")], b[sl.ensemble("analysis", "x")])
    assert runs["with"].n_obs.tolist() == [0, 20, 0, 20, 0, 20, 0, 20]  # only odd is assimilated
    assert a[sl.observation("side", "analysis_cycle")].tolist() == [2, 5]
    assert a[sl.observation("side", "values")].shape == (2, 10)
    # cycle 2 observes only the side quantity: no analysis, no step; cycle 5 both
    assert seen == [(1, ["odd"], None), (3, ["odd"], None), (5, ["odd", "side"], 10), (7, ["odd"], None)]


def test_params_refuse_a_quantity_left_out_of_the_analysis_that_nothing_uses():
    from fdassim.config import parse
    from fdassim.errors import ConfigError

    params = {"model": {"name": "lorenz96"}, "ensemble": {"size": 4}, "filter": {"scheme": "etkf"},
              "run": {"cycles": 2, "interval": 0.05},
              "observations": {"quantities": {"x": {"field": "x"}, "y": {"field": "x", "assimilate": False}}}}
    with pytest.raises(ConfigError, match="observations.quantities.y.assimilate: false, but no step uses it"):
        parse(params)
