"""Tests of fdassim.analysis.neighbours: the KD-tree of observations and the cells of rows."""

import math

import numpy as np
import pytest

from fdassim.analysis.localization import Localization, distances, paired_distances
from fdassim.analysis.neighbours import ObsIndex, cells, wrap

PERIODS = [None, (10.0, None), (10.0, 6.0)]


def scattered(seed, n, shift=0.0):
    """Points on a 10 x 6 box, shifted (a periodic axis must not care where its origin is)."""
    return np.random.default_rng(seed).uniform(0, 1, (n, 2)) * [10.0, 6.0] + shift


@pytest.mark.parametrize("periodic", PERIODS)
@pytest.mark.parametrize("c", [0.4, 1.3, 3.0, math.inf])
def test_obs_index_finds_exactly_the_support_with_dense_tapers(periodic, c):
    # what the KD-tree keeps is the dense taper's nonzero pattern, with the same values bit for bit
    # on periodic axes the points lie outside [0, P): wrapped for the tree, not for the distances
    on = np.array([p is not None for p in (periodic or (None, None))], dtype=float)
    obs = scattered(0, 200, shift=-30.0 * on)
    pts = scattered(1, 50, shift=17.0 * on)
    ptr, idx, rho = ObsIndex(obs, periodic).local(pts, c)
    dense = Localization(c, periodic).taper(pts, obs)
    for i in range(len(pts)):
        np.testing.assert_array_equal(idx[ptr[i]:ptr[i + 1]], np.flatnonzero(dense[i] > 0))
        np.testing.assert_array_equal(rho[ptr[i]:ptr[i + 1]], dense[i][dense[i] > 0])
    assert idx.size > 0
    if c < 2:
        assert idx.size < dense.size / 2  # most pairs skipped


def test_obs_index_on_the_lorenz96_ring():
    # observations at 0, 2, ..., 38 on a ring of 40: the point 39 sees 0 and 38 at distance 1
    index = ObsIndex(np.arange(0, 40, 2.0), (40.0,))
    ptr, idx, rho = index.local(np.array([[39.0]]), 1.0)
    np.testing.assert_array_equal(idx, [0, 19])
    np.testing.assert_allclose(rho, 5 / 24, rtol=1e-14)  # GC(1) = 5/24 (half-width 1)


def test_paired_distances_are_the_diagonal_bitwise():
    a, b = scattered(2, 30, -5.0), scattered(3, 30, 4.0)
    for periodic in PERIODS:
        np.testing.assert_array_equal(paired_distances(a, b, periodic), np.diag(distances(a, b, periodic)))


def test_wrap_stays_inside_the_box():
    x = np.array([[-1e-17, 3.0], [10.0, -2.0], [25.5, 1.0]])
    w = wrap(x, (10.0, None))
    np.testing.assert_array_equal(w[:, 0], [0.0, 0.0, 5.5])
    np.testing.assert_array_equal(w[:, 1], x[:, 1])  # a non-periodic axis is left alone


@pytest.mark.parametrize("h", [None, 0.7, 2.0, math.inf])
def test_cells_depend_on_positions_only(h):
    pts = np.round(scattered(4, 400), 1)  # rounding makes positions repeat
    periodic = (10.0, None)
    g = cells(pts, h, periodic)
    owner = np.empty(len(pts), int)
    for j in range(len(g)):
        owner[g.rows(j)] = j
        assert np.all(np.diff(g.rows(j)) > 0)  # rows of a cell keep their order
    assert sorted(g.order) == list(range(len(pts)))
    # a row's centre does not depend on the other rows: any subset gives the same centres
    sub = np.random.default_rng(5).permutation(len(pts))[:97]
    gs = cells(pts[sub], h, periodic)
    for j in range(len(gs)):
        for r in gs.rows(j):
            np.testing.assert_array_equal(gs.centres[j], g.centres[owner[sub[r]]])
    d = paired_distances(pts, g.centres[owner], periodic)
    assert d.max() <= g.half_diagonal + 1e-12
    if h is None:
        assert d.max() == 0.0


def test_obs_index_bad_inputs_raise():
    from fdassim.errors import ConfigError, InputError

    with pytest.raises(ConfigError, match="periodic has 1 lengths but the observation coordinates have 2"):
        ObsIndex(np.zeros((3, 2)), (10.0,))
    with pytest.raises(InputError, match="observation coordinates have NaN"):
        ObsIndex(np.array([[0.0], [np.nan]]))
