"""The marine glacier of the hybrid assimilation-inversion demo: its geometry and first guess,
and its options."""

import numpy as np
import pytest

pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
pytest.importorskip("icepack.models", reason="Icepack is not installed (make install)")
from mpi4py import MPI  # noqa: E402

from fdassim.errors import ConfigError, OptionError  # noqa: E402


def test_marine_glacier_grounds_then_floats_and_members_know_only_the_surface():
    """The truth is grounded upstream and afloat near the front (both over at least 10 % of
    the nodes); a member's bed differs from the truth's by its own relief draw (RMSE of the
    order of the 40 m relief), while its surface equals the truth's wherever both are grounded
    (the surface is known) and its floating thickness is the truth's (it follows from the
    surface alone); its friction is 0.7 x the featureless mean."""
    import icepack
    from icepack.constants import ice_density as rho_I
    from icepack.constants import water_density as rho_W

    from fdassim.models.marine import MarineGlacier

    model = MarineGlacier(nx=8, ny=2)
    domain = model.domain(MPI.COMM_SELF)
    truth, member = model.member(domain, -1), model.member(domain, 0)
    truth.truth_state(None)
    member.initial_state(np.random.default_rng(4))

    def grounded(f):
        return f["thickness"].dat.data_ro + rho_W / rho_I * np.minimum(f["bed"].dat.data_ro, 0) > 1e-6

    gt, gm = grounded(truth.fields), grounded(member.fields)
    assert 0.1 < gt.mean() < 0.9
    db = member.fields["bed"].dat.data_ro - truth.fields["bed"].dat.data_ro
    assert 10.0 < np.sqrt(np.mean(db ** 2)) < 120.0
    s = {k: icepack.compute_surface(thickness=f.fields["thickness"], bed=f.fields["bed"])
         for k, f in (("truth", truth), ("member", member))}
    import firedrake

    Q = truth.fields["bed"].function_space()
    st, sm = (firedrake.Function(Q).interpolate(s[k]).dat.data_ro for k in ("truth", "member"))
    np.testing.assert_allclose(sm[gt & gm], st[gt & gm], rtol=0, atol=1e-8)
    both_afloat = ~gt & ~gm
    assert both_afloat.any()
    np.testing.assert_allclose(member.fields["thickness"].dat.data_ro[both_afloat],
                               truth.fields["thickness"].dat.data_ro[both_afloat], rtol=1e-12)
    np.testing.assert_allclose(member.fields["friction"].dat.data_ro, 0.7 * model.smooth_friction(member.fields["friction"]))
    assert [f.name for f in model.fields] == ["thickness", "velocity", "bed", "friction"]
    assert [f.name for f in model.fields if f.parameter] == ["bed"]
    assert [f.name for f in model.fields if f.carried] == ["friction"]


@pytest.mark.parametrize("kw, match", [
    ({"nx": True}, "MarineGlacier: nx: expected an integer, got True"),
    ({"shelf": 1.5}, "MarineGlacier: shelf: must be a finite number > 0 and <= 1, got 1.5"),
    ({"relief": (40.0, 0.0)}, r"MarineGlacier: relief: must be a finite number > 0, got \(40.0, 0.0\)"),
])
def test_marine_glacier_rejects_bad_options(kw, match):
    from fdassim.models.marine import MarineGlacier

    with pytest.raises(OptionError, match=match):
        MarineGlacier(**kw)


def test_marine_glacier_options_from_params_yaml():
    from fdassim.config import parse

    params = {"model": {"name": "marine", "options": {"nx": 8, "relif": [40.0, 500.0]}}, "ensemble": {"size": 4},
              "observations": {"field": "thickness"}, "filter": {"scheme": "enkf"}, "run": {"cycles": 1, "interval": 1.0}}
    with pytest.raises(ConfigError, match="model.options: unknown key 'relif'; allowed keys are: Lx, Ly, nx"):
        parse(params)
    params["model"]["options"] = {"nx": 8, "shelf": 0.0}
    with pytest.raises(ConfigError, match="shelf: must be a finite number > 0"):
        parse(params)
