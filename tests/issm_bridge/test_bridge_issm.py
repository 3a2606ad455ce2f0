"""The real ISSM path: an ISSM transient and friction inversion through the bridge.

Runs only where ISSM is installed (``ISSM_DIR`` set) and MATLAB or Octave can run it; the
model is ISSM's square ice sheet of its nightly tests (``test/Exp/Square.exp``,
``test/Par/SquareSheetConstrained.par``), on a coarse mesh, SSA, 2 ISSM ranks per run.
"""

import os
from pathlib import Path

import numpy as np
import pytest

ISSM_DIR = os.environ.get("ISSM_DIR")
pytestmark = pytest.mark.skipif(not ISSM_DIR, reason="ISSM is not installed here (set ISSM_DIR to an ISSM install)")

SETUP = """function md = fdassim_square()
%FDASSIM_SQUARE  ISSM's square ice sheet (its nightly tests' set-up), coarse, SSA.
  root = getenv('ISSM_DIR');
  md = triangle(model(), fullfile(root, 'test', 'Exp', 'Square.exp'), 150000.);
  md = setmask(md, '', '');
  md = parameterize(md, fullfile(root, 'test', 'Par', 'SquareSheetConstrained.par'));
  md = setflowequation(md, 'SSA', 'all');
  md.cluster = generic('name', oshostname(), 'np', 2);
  md.timestepping.time_step = 1;
  md.transient.requested_outputs = {'default'};
end
"""


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    from issm_bridge.model import ISSM, Backend, Inversion

    folder = tmp_path_factory.mktemp("setup")
    (folder / "fdassim_square.m").write_text(SETUP)
    model = ISSM(backend=Backend.ISSM, setup="fdassim_square", matlab_path=(str(folder),), servers=2, ranks=2,
                 prior_std={"thickness": 10.0}, prior_length=1e5,
                 inversion=Inversion(absolute=1.0, tikhonov=1e-7, min=1.0, max=200.0, iterations=5))
    d = model.domain(None)
    yield d
    d.close()


def test_issm_transient_through_the_bridge(domain):
    members = [domain.model.member(domain, i) for i in range(2)]
    for m in members:
        m.initial_state(np.random.default_rng([1, m.index]))
    before = [m.state["thickness"].copy() for m in members]
    for m in members:
        m.forecast(0.0, 2.0)
    for m, h in zip(members, before):
        assert np.all(np.isfinite(m.state["thickness"])) and not np.array_equal(m.state["thickness"], h)
        assert np.abs(m.state["vx"]).max() > 0
    assert not np.array_equal(members[0].state["thickness"], members[1].state["thickness"])


def test_issm_inversion_writes_the_friction_back(domain):
    m = domain.model.member(domain, 5)
    m.initial_state(np.random.default_rng([1, 5]))
    m.forecast(0.0, 1.0)
    friction = m.state["friction"].copy()
    m.state["friction"][...] = friction.mean()  # a wrong friction before the next forecast
    m.forecast(1.0, 2.0)  # inverts from the velocity first (not a fresh draw any more)
    assert np.all(np.isfinite(m.state["friction"]))
    assert not np.allclose(m.state["friction"], friction.mean())
    assert np.all((m.state["friction"] >= 1.0) & (m.state["friction"] <= 200.0))
