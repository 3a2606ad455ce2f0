"""Hybrid assimilation-inversion in the cycle: after each analysis the members' friction is
inferred from their analysed thickness and the observed velocity (Icepack's inverse
machinery), carried to the next forecast and stored in the restart."""

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.errors import ConfigError  # noqa: E402
from fdassim import store_layout as sl  # noqa: E402


def _glacier():
    """The ice stream on a coarse mesh; friction carried, members starting at 0.7 x the truth."""
    from fdassim.models.icepack import IcepackModel
    from fdassim.models.icestream import IceStream

    stream = IceStream(nx=8, ny=4, degree=1)

    def draw(fields, rng):
        fields["friction"].assign(fields["friction"] * (0.7 + 0.02 * rng.standard_normal()))
        fields["thickness"].dat.data[:] += 2.0 * rng.standard_normal()

    return stream, IcepackModel(stream.reference_fields, stream.icepack.flow, state=("thickness",),
                                carried=("friction",), dt=0.5, solver_options=stream.icepack.solver_options,
                                initial=draw, truth=lambda fields, rng: None, diagnose=True)


def test_hybrid_inversion_in_the_cycle_lowers_the_friction_error_and_velocity_misfit(tmp_path):
    """4 members, two yearly analyses of thickness (5 m) and velocity (1 m/yr) at every node,
    each followed by one inversion from the ensemble mean (8 L-BFGS-B iterations, target
    mean). The members' friction error (mean absolute, 1 to 4 km from the inflow, where the
    grounded ice's velocity constrains it) falls below half its initial 30 %, and every
    inversion cuts the velocity misfit; the stored restart holds the inferred friction."""
    import h5py

    import fdassim
    from fdassim.models.inversion import FrictionInversion, HybridInversion
    from fdassim.observations import NodalValues, Quantity

    stream, model = _glacier()
    ensemble = fdassim.Ensemble(model, size=4, truth=True, comm=MPI.COMM_SELF)
    obs = fdassim.Observations([Quantity("thickness", NodalValues("thickness"), fdassim.ObsError.from_std(5.0)),
                                Quantity("velocity", NodalValues("velocity"), fdassim.ObsError.from_std(1.0))])
    results = []

    class Recorder(HybridInversion):
        def __call__(self, ensemble, cycle, observed):
            out = super().__call__(ensemble, cycle, observed)
            results.extend(out)
            return out

    hybrid = Recorder(FrictionInversion(velocity_std=1.0, length=500.0, bounds=(0.01, 1.0), max_iterations=8,
                                        target="mean"))
    times = np.arange(3.0)
    path = str(tmp_path / "hybrid.h5")
    true = ensemble.domain.reference["friction"].dat.data_ro.copy()
    x = stream.nodes(ensemble.domain.reference["friction"])[:, 0]
    inner = (x > 1e3) & (x < 4e3)
    with fdassim.Store.create(path, ensemble, times, obs) as store:
        fdassim.assimilate(ensemble, fdassim.EnKF(), obs, times, seed=2, store=store, progress=False,
                           after_analysis=hybrid)
    members = [m for i, m in zip(ensemble.local, ensemble.members) if i < ensemble.size]
    error = np.mean([np.abs(m.fields["friction"].dat.data_ro - true)[inner].mean() for m in members])
    assert error < 0.5 * 0.3 * np.abs(true[inner]).mean()
    assert len(results) == 2 and all(r.misfit_after < 0.5 * r.misfit_before for r in results)
    assert [f.name for f in model.fields if f.carried] == ["velocity", "friction"]
    with h5py.File(path, "r") as h5:  # one of the two restart slots holds the last cycle's
        carried = [h5[k][...] for k in (sl.carried(0), sl.carried(1))]
    final = members[0].fields["friction"].dat.data_ro  # the carried values: velocity, then friction
    assert any(np.array_equal(c[0, -final.size:], final) for c in carried)


def test_hybrid_inversion_needs_a_carried_friction():
    """An inversion writing into a friction the members share would change the truth too."""
    import fdassim
    from fdassim.models.inversion import FrictionInversion, HybridInversion
    from fdassim.models.icestream import IceStream

    ensemble = fdassim.Ensemble(IceStream(nx=4, ny=2, degree=1), size=2, comm=MPI.COMM_SELF)
    hybrid = HybridInversion(FrictionInversion(velocity_std=1.0, length=500.0, bounds=(0.01, 1.0)))
    with pytest.raises(ConfigError, match="friction must be a carried field of the model"):
        hybrid(ensemble, 0, {"velocity": None})


@pytest.mark.parametrize("kw, match", [
    ({"velocity_std": 0.0}, "FrictionInversion: velocity_std: must be a finite number > 0, got 0.0"),
    ({"bounds": (0.5, 0.1)}, r"FrictionInversion: bounds: must be 0 <= C_lo < C_hi, got \(0.5, 0.1\)"),
    ({"bounds": (-1.0, 0.1)}, r"FrictionInversion: bounds: must be a finite number >= 0, got \(-1.0, 0.1\)"),
    ({"bounds": (0.1,)}, "FrictionInversion: bounds: expected 2 values, got 1"),
    ({"target": "median"}, "FrictionInversion: target: 'median' is not allowed; choose one of 'members', 'mean'"),
    ({"scale": -1.0}, "FrictionInversion: scale: must be a finite number > 0"),
    ({"max_iterations": True}, "FrictionInversion: max_iterations: expected an integer, got True"),
    ({"length": "500"}, "FrictionInversion: length: expected a number, got '500'"),
])
def test_friction_inversion_rejects_bad_settings(kw, match):
    """Every option is converted and checked by check_options, as for every registered class:
    a bad type (a bool for an integer, a string for a number) or value names the option."""
    from fdassim.errors import OptionError
    from fdassim.models.inversion import FrictionInversion

    with pytest.raises(OptionError, match=match):
        FrictionInversion(**{"velocity_std": 1.0, "length": 500.0, "bounds": (0.01, 1.0), **kw})


def _params(**changes):
    params = {"model": {"name": "icestream", "options": {"friction_carried": True}},
              "ensemble": {"size": 4},
              "observations": {"quantities": {"thickness": {"field": "thickness", "std": 5.0},
                                              "velocity": {"field": "velocity", "std": 1.0}}},
              "filter": {"scheme": "enkf"},
              "run": {"cycles": 2, "interval": 1.0},
              "inversion": {"velocity_std": 1.0, "length": 500.0, "bounds": [0.01, 1.0], "target": "mean"}}
    params.update(changes)
    return params


def test_hybrid_inversion_from_params_yaml():
    """``inversion:`` in params.yaml builds the step the run passes to the cycle."""
    from fdassim.config import parse
    from fdassim.models.inversion import HybridInversion, Target

    step = parse(_params()).make_inversion()
    assert isinstance(step, HybridInversion) and step.quantity == "velocity"
    assert step.inversion.target is Target.MEAN and step.inversion.bounds == (0.01, 1.0)
    assert parse(_params(inversion=None)).make_inversion() is None


@pytest.mark.parametrize("changes, match", [
    ({"inversion": {"velocity_std": 1.0, "length": 500.0, "bounds": [0.01, 1.0], "quantity": "speed"}},
     "inversion.quantity: 'speed' is not an observed quantity"),
    ({"model": {"name": "icestream"}}, "inversion: the model 'icestream' carries no friction"),
    ({"inversion": {"velocity_std": 1.0, "length": 500.0, "bounds": [1.0, 0.01]}},
     r"bounds: must be 0 <= C_lo < C_hi"),
    ({"inversion": {"velocity_std": 1.0, "length": 500.0, "bounds": [0.01, 1.0], "target": "median"}},
     "inversion.target: 'median' is not allowed"),
    ({"inversion": {"velocity_std": 1.0, "length": 500.0, "bounds": [0.01, 1.0], "iterations": 5}},
     "inversion: unknown key 'iterations'; allowed keys are: velocity_std, length, bounds"),
    ({"inversion": {"velocity_std": 1.0, "length": 500.0, "bounds": [0.01, 1.0], "max_iterations": 2.5}},
     "inversion.max_iterations: expected an integer, got 2.5"),
])
def test_hybrid_inversion_params_errors(changes, match):
    from fdassim.config import parse

    with pytest.raises(ConfigError, match=match):
        parse(_params(**changes))


def _marine_hybrid_run(comm, path):
    """One year of the marine glacier (6 x 2 cells, 3 members + truth): thickness assimilated,
    velocity left out of the analysis and fitted by one inversion per member (2 iterations);
    returns every member's friction and the store's analysis, on every rank."""
    import fdassim
    from fdassim.models.inversion import FrictionInversion, HybridInversion
    from fdassim.models.marine import MarineGlacier
    from fdassim.observations import NodalValues, Quantity
    from helpers import read_store

    ensemble = fdassim.Ensemble(MarineGlacier(nx=6, ny=2), size=3, truth=True, comm=comm)
    obs = fdassim.Observations([
        Quantity("thickness", NodalValues("thickness"), fdassim.ObsError.from_std(10.0)),
        Quantity("velocity", NodalValues("velocity"), fdassim.ObsError.from_std(5.0), assimilate=False)])
    hybrid = HybridInversion(FrictionInversion(velocity_std=5.0, length=300.0, bounds=(0.005, 1.0), max_iterations=2,
                                               target="members"))
    times = np.arange(2.0)
    with fdassim.Store.create(path, ensemble, times, obs) as store:
        fdassim.assimilate(ensemble, fdassim.EnKF(), obs, times, seed=3, store=store, progress=False,
                           after_analysis=hybrid)
    mine = {i: (m.fields["friction"].dat.data_ro.copy(), m.fields["thickness"].dat.data_ro.copy())
            for i, m in zip(ensemble.local, ensemble.members) if i < ensemble.size}
    friction = {}
    for part in comm.allgather(mine):
        friction.update(part)
    comm.Barrier()
    return friction, (read_store(path, names=("ensemble/analysis",)) if comm.rank == 0 else None)


@pytest.mark.parallel(nprocs=2)
def test_hybrid_inversion_on_two_ranks_is_bitwise_serial(tmp_path_factory):
    """3 members dealt unevenly over 2 ranks (members 0 and 2 on rank 0; member 1 and the truth
    on rank 1), one inversion per member after the analysis: each member's inversion sees only
    its own fields on an unsplit mesh, so the inferred friction and the analysed state are the
    serial run's bit for bit. (With ``target="mean"`` the ensemble sum is taken in another
    order over the ranks, so the mean, and the friction inferred from it, agree only to
    rounding, amplified by the optimizer's iterations.)"""
    from helpers import split_paths

    world, serial = split_paths(tmp_path_factory, "hybrid")
    split, split_store = _marine_hybrid_run(MPI.COMM_WORLD, world)
    alone, alone_store = _marine_hybrid_run(MPI.COMM_SELF, serial)
    assert sorted(split) == sorted(alone) == [0, 1, 2]
    for i in alone:
        np.testing.assert_array_equal(split[i][0], alone[i][0], err_msg=f"friction of member {i}")
        np.testing.assert_array_equal(split[i][1], alone[i][1], err_msg=f"thickness of member {i}")
    assert not np.array_equal(alone[0][0], alone[1][0])  # the inversions did act, per member
    if MPI.COMM_WORLD.rank == 0:
        for key in split_store:
            np.testing.assert_array_equal(split_store[key], alone_store[key], err_msg=key)


def test_fdassim_run_passes_the_inversion_to_the_cycle(tmp_path, monkeypatch):
    """``fdassim run`` (fdassim.run.run) calls the step that ``inversion:`` builds after each
    analysis (a Lorenz-96 run with the step replaced by a recorder, to stay cheap)."""
    from fdassim.config import Settings, parse
    from fdassim.run import run

    calls = []
    monkeypatch.setattr(Settings, "make_inversion",
                        lambda self: lambda ensemble, cycle, observed: calls.append((cycle, len(observed))))
    settings = parse({"model": {"name": "lorenz96"}, "ensemble": {"size": 4}, "filter": {"scheme": "etkf"},
                      "observations": {"field": "x", "every": 2}, "output": {"path": str(tmp_path / "run.h5")},
                      "run": {"cycles": 2, "interval": 0.05, "progress": False}})
    run(settings)
    assert calls == [(0, 1), (1, 1)]
