"""The ICESEE ice-stream twin's model, and the friction inversion on its ice stream.

The model tests use the twin's own mesh (12 x 8 cells, degree 2); the inversion uses a
coarser one (8 x 4 cells, degree 1) so that its adjoint solves stay cheap.
"""

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.errors import ConfigError  # noqa: E402

REFERENCE = (1250.0, 300.0)


@pytest.fixture(scope="module")
def stream():
    from fdassim.models.icestream import IceStream

    model = IceStream()
    domain = model.domain(MPI.COMM_SELF)
    return model, domain


def _nearest(xy, point):
    return int(np.argmin(np.hypot(xy[:, 0] - point[0], xy[:, 1] - point[1])))


def test_icestream_members_start_from_icesees_wrong_state(stream):
    """425 values per field; a member's thickness at the reference point is the truth's
    minus the 350 m bump (plus its 0.8 m perturbation: within 5 m), its accumulation the
    prior 0.17 - 0.27 x/Lx (perturbation 0.08: within 0.5 m/yr); members differ; the truth
    is the tutorial's state, accumulation 1.7 - 2.7 x/Lx exactly."""
    model, domain = stream
    truth, a, b = (model.member(domain, i) for i in (-1, 0, 1))
    truth.truth_state(None)
    a.initial_state(np.random.default_rng(1))
    b.initial_state(np.random.default_rng(2))
    h = truth.state["thickness"]
    assert h.dat.data_ro.size == 425
    xy = model.nodes(h)
    i = _nearest(xy, REFERENCE)
    assert xy[i] == pytest.approx(REFERENCE)
    np.testing.assert_allclose(truth.state["accumulation"].dat.data_ro, 1.7 - 2.7 * xy[:, 0] / 5e3, rtol=1e-12)
    dh = a.state["thickness"].dat.data_ro[i] - h.dat.data_ro[i]
    assert abs(dh + 350.0) < 5.0
    assert abs(a.state["accumulation"].dat.data_ro[i] - (0.17 - 0.27 * 0.25)) < 0.5
    diff = a.state["thickness"].dat.data_ro - b.state["thickness"].dat.data_ro
    assert 0.1 < diff.std() < 5.0  # two draws of a 0.8 m field: their difference has std ~1.1 m


@pytest.mark.parametrize("kw, match", [
    ({"nx": 0}, "nx must be positive"),
    ({"sigma": (0.8, 0.4, 0.0, 0.08)}, "sigma must be positive, got velocity y 0.0"),
    ({"bump": -1.0}, "bump must be non-negative"),
])
def test_icestream_rejects_bad_settings(kw, match):
    from fdassim.models.icestream import IceStream

    with pytest.raises(ConfigError, match=match):
        IceStream(**kw)


def test_friction_inversion_reduces_the_velocity_misfit_and_the_friction_error():
    """The ice stream's velocity from the true friction is observed exactly; the first guess
    is 0.7 times the truth. One inversion (8 L-BFGS-B iterations) must cut the velocity misfit
    by more than 10x and the friction error (mean absolute, over the grounded ice that the
    velocity constrains, 1 km from either end) by more than half, staying within the bounds."""
    from fdassim.models.icestream import IceStream
    from fdassim.models.inversion import FrictionInversion, Target

    model = IceStream(nx=8, ny=4, degree=1)
    fields = model.reference_fields(MPI.COMM_SELF)
    true = fields["friction"]
    observed = fields["velocity"].copy(deepcopy=True)
    guess = dict(fields, friction=true.copy(deepcopy=True))
    guess["friction"].dat.data[:] *= 0.7
    inversion = FrictionInversion(velocity_std=1.0, length=500.0, bounds=(0.01, 1.0), max_iterations=8,
                                  target="members")
    assert inversion.target is Target.MEMBERS
    friction, result = inversion.invert(guess, model.icepack.flow, model.icepack.solver_options, observed)
    assert result.misfit_after < 0.1 * result.misfit_before
    x = model.nodes(true)[:, 0]
    inner = (x > 1e3) & (x < 4e3)
    error = {k: np.abs(c.dat.data_ro - true.dat.data_ro)[inner].mean() for k, c in (("before", guess["friction"]),
                                                                                     ("after", friction))}
    assert error["after"] < 0.5 * error["before"]
    assert 0.01 <= friction.dat.data_ro.min() and friction.dat.data_ro.max() <= 1.0
