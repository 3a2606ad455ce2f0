"""Fixtures of the issm_bridge tests: GNU Octave (skipped without it) and shared servers.

Octave takes a second or more to start, so one pool serves a whole module where the tests
do not kill its servers; tests that kill, hang or stop servers start their own.
"""

import shutil

import pytest


@pytest.fixture(scope="session")
def octave():
    """The Octave engine (skips the test when Octave is not on PATH)."""
    if shutil.which("octave") is None:
        pytest.skip("GNU Octave is not on PATH (Debian: apt-get install octave)")
    from issm_bridge.engine import require_engine

    return require_engine("octave")


@pytest.fixture(scope="module")
def pool(octave, tmp_path_factory):
    """Two Octave servers with the test model on their path, shared by a module's tests."""
    from issm_bridge.domain import TESTMODEL_DIR
    from issm_bridge.pool import Pool

    with Pool.start(2, engine=octave, directory=tmp_path_factory.mktemp("pool"), paths=(TESTMODEL_DIR,)) as p:
        yield p
