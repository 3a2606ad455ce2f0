"""Tests of fdassim.analysis.letkf: the local ensemble transform Kalman filter."""

import math

import numpy as np
import pytest

from fdassim.analysis import AnalysisContext, ObsError, Rows, kalman_analysis
from fdassim.analysis.enkf_n import EnKFN
from fdassim.analysis.etkf import ETKF
from fdassim.analysis.letkf import LETKF, FiniteSize
from fdassim.analysis.localization import AdaptiveLocalization, Localization, distances, gaspari_cohn
from fdassim.errors import ConfigError, InputError, ObservationError
from lingauss import anomalies, exact_ensemble

RING = 12


def banded_problem(seed=0, N=20, every=2):
    """A ring of 12 values with a banded prior covariance (GC of width 2, plus 0.2 I), exact in the ensemble."""
    rng = np.random.default_rng(seed)
    x = np.arange(RING, dtype=float)
    B = gaspari_cohn(distances(x, x, (RING,)) / 2.0) + 0.2 * np.eye(RING)
    assert np.linalg.eigvalsh(B).min() > 0
    xb = rng.standard_normal(RING)
    idx = np.arange(0, RING, every)
    H = np.eye(RING)[idx]
    y = H @ xb + rng.standard_normal(idx.size)
    R = ObsError.diagonal(rng.uniform(0.3, 1.0, idx.size))
    X = exact_ensemble(xb, B, N, rng)
    return X, xb, B, H, y, R, idx


def ctx_for(idx, seed=1):
    return AnalysisContext(seed=seed, obs_coords=idx.astype(float), periodic=(float(RING),))


def local_kalman(xb, B, H, y, R, idx, point, c):
    """The exact Kalman analysis with the observations' variances divided by their GC weight at ``point``."""
    rho = gaspari_cohn(distances(np.array([[point]]), idx[:, None].astype(float), (RING,))[0] / c)
    keep = rho > 0
    return kalman_analysis(xb, B, H[keep], y[keep], ObsError.diagonal(R.var[keep] / rho[keep]))


def test_letkf_infinite_radius_equals_etkf(lingauss):
    # diagonal and full R: the global analysis, computed by eigh instead of an SVD (round-off)
    X = lingauss.ensemble(12)
    Y = lingauss.H @ X
    a = LETKF(Localization(math.inf)).analyse(X, Y, lingauss.y, lingauss.R)
    np.testing.assert_allclose(a, ETKF().analyse(X, Y, lingauss.y, lingauss.R), rtol=0, atol=1e-12)


def test_letkf_huge_radius_equals_etkf():
    # the localized path (KD-tree, tapers of 1 to ~1e-24, one analysis per row) reaches the ETKF
    X, xb, B, H, y, R, idx = banded_problem(1)
    rows = Rows.whole(RING, coords=np.arange(RING))
    a = LETKF(Localization(1e12)).analyse(X, H @ X, y, R, rows, ctx_for(idx))
    np.testing.assert_allclose(a, ETKF().analyse(X, H @ X, y, R), rtol=0, atol=1e-12)


@pytest.mark.parametrize("c", [1.0, 2.5, 4.0])
def test_letkf_rows_equal_the_r_localized_kalman_filter(c):
    # With an exact prior (N - 1 >= n) each local ETKF is the Kalman analysis with R_k / rho_k
    # for the observations within 2c of the row (Hunt et al. 2007, sec. 2): row r's mean and
    # variance equal that local Kalman filter's, to round-off (1e-10).
    X, xb, B, H, y, R, idx = banded_problem(2)
    Xa = LETKF(Localization(c)).analyse(X, H @ X, y, R, Rows.whole(RING, coords=np.arange(RING)), ctx_for(idx))
    for r in range(RING):
        xa, Pa = local_kalman(xb, B, H, y, R, idx, r, c)
        assert Xa[r].mean() == pytest.approx(xa[r], abs=1e-10)
        assert np.var(Xa[r], ddof=1) == pytest.approx(Pa[r, r], abs=1e-10)
    # and not the global Kalman filter: localization changes the answer at these radii
    assert np.abs(Xa.mean(axis=1) - kalman_analysis(xb, B, H, y, R)[0]).max() > 1e-3


def test_letkf_cells_take_the_analysis_at_their_centre():
    # cell = 3: rows 0-2 share the analysis at 1.5, rows 3-5 at 4.5, ...
    X, xb, B, H, y, R, idx = banded_problem(3)
    Xa = LETKF(Localization(2.0), cell=3.0).analyse(X, H @ X, y, R, Rows.whole(RING, coords=np.arange(RING)),
                                                   ctx_for(idx))
    for r in range(RING):
        centre = 3.0 * (r // 3) + 1.5
        xa, Pa = local_kalman(xb, B, H, y, R, idx, centre, 2.0)
        assert Xa[r].mean() == pytest.approx(xa[r], abs=1e-10)
        assert np.var(Xa[r], ddof=1) == pytest.approx(Pa[r, r], abs=1e-10)


def test_letkf_is_mean_preserving_and_symmetric():
    # the analysis mean is xbar + A w and the anomalies sum to zero; the rows with the same
    # local observations get the same transform, whose anomaly part is symmetric
    X, xb, B, H, y, R, idx = banded_problem(4, N=13)
    up = LETKF(Localization(1.5)).prepare(H @ X, y, R, ctx_for(idx))
    W, where = up.transforms(np.array([[3.0], [100.0 % RING]]))
    assert W.shape == (2, 13, 13)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, rtol=0, atol=1e-13)  # columns: mean-preserving weights
    P = np.eye(13) - 1.0 / 13
    for Wj in W:
        np.testing.assert_allclose(P @ Wj @ P, (P @ Wj @ P).T, rtol=0, atol=1e-13)
    Xa = up.apply(X, Rows.whole(RING, coords=np.arange(RING)))
    np.testing.assert_allclose(anomalies(Xa).sum(axis=1), 0.0, atol=1e-12)


def test_letkf_rows_beyond_every_observation_are_unchanged():
    X, xb, B, H, y, R, idx = banded_problem(5)
    ctx = AnalysisContext(obs_coords=np.array([0.0]), periodic=(float(RING),))
    Xa = LETKF(Localization(1.0)).analyse(X, X[:1], y[:1], ObsError.diagonal(R.var[:1]),
                                         Rows.whole(RING, coords=np.arange(RING)), ctx)
    far = np.minimum(np.arange(RING), RING - np.arange(RING)) >= 2  # ring distance >= 2c
    np.testing.assert_array_equal(Xa[far], X[far])
    assert np.all(np.abs(Xa[~far] - X[~far]).max(axis=1) > 0)


def plane_problem(seed=0, n=300, m=60, N=8):
    """Rows and observations scattered on a 10 x 6 plane, periodic in x only."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 1, (n, 2)) * [10.0, 6.0]
    coords[::7] = coords[1::7][: coords[::7].shape[0]]  # some rows share a position
    oc = rng.uniform(0, 1, (m, 2)) * [10.0, 6.0]
    X = rng.standard_normal((n, N))
    near = np.argmin(distances(oc, coords, (10.0, None)), axis=1)
    Y = X[near] + 0.1 * rng.standard_normal((m, N))
    y = rng.standard_normal(m)
    return X, Y, y, ObsError.diagonal(rng.uniform(0.5, 1.0, m)), coords, AnalysisContext(
        seed=3, obs_coords=oc, periodic=(10.0, None))


SPLITS = [[], [150], [1, 2, 299], [37, 38, 200], list(range(10, 300, 10))]


SCHEMES = {"per-position": LETKF(Localization(1.2)), "cells": LETKF(Localization(1.2), cell=0.7, tile=64),
           "finite-size": LETKF(Localization(1.2), finite_size=FiniteSize(), tile=48)}


@pytest.mark.parametrize("name, cuts", [(name, cuts) for name in SCHEMES
                                        for cuts in (SPLITS if name != "finite-size" else SPLITS[3:])],
                         ids=lambda v: v if isinstance(v, str) else f"{len(v) + 1}-blocks")
def test_letkf_blocks_split_differently_are_bitwise_equal(name, cuts):
    scheme = SCHEMES[name]
    X, Y, y, R, coords, ctx = plane_problem()
    up = scheme.prepare(Y, y, R, ctx)
    rows = Rows.whole(X.shape[0], coords=coords)
    whole = up.apply(X, rows)
    edges = [0, *cuts, X.shape[0]]
    parts = np.vstack([up.apply(X[a:b], rows.block(a, b)) for a, b in zip(edges[:-1], edges[1:])])
    np.testing.assert_array_equal(parts, whole)
    perm = np.random.default_rng(1).permutation(X.shape[0])  # rows in another order
    np.testing.assert_array_equal(up.apply(X[perm], Rows.whole(X.shape[0], coords=coords[perm])), whole[perm])
    assert np.abs(whole - X).max() > 0.1


def test_letkf_finite_size_infinite_radius_equals_enkf_n(lingauss):
    X = lingauss.ensemble(12)
    Y = lingauss.H @ X
    for exact in (True, False):
        a = LETKF(Localization(math.inf), finite_size=FiniteSize(exact_hessian=exact)).analyse(
            X, Y, lingauss.y, lingauss.R)
        b = EnKFN(exact_hessian=exact).analyse(X, Y, lingauss.y, lingauss.R)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_letkf_adaptive_localization_equals_resolved_fixed_one():
    X, Y, y, R, coords, ctx = plane_problem(2, N=20)
    adaptive = AdaptiveLocalization(nbins=8)
    loc = adaptive.on_domain(ctx.periodic).resolve(Y, ctx.obs_coords)
    assert 0 < loc.radius < math.inf
    rows = Rows.whole(X.shape[0], coords=coords)
    np.testing.assert_array_equal(LETKF(adaptive).analyse(X, Y, y, R, rows, ctx),
                                  LETKF(loc).analyse(X, Y, y, R, rows, ctx))


def test_letkf_errors_name_the_fix():
    X, xb, B, H, y, R, idx = banded_problem(0)
    s = LETKF(Localization(2.0))
    full = ObsError.full(np.diag(R.var) + 0.1 * np.eye(idx.size, k=1) + 0.1 * np.eye(idx.size, k=-1))
    with pytest.raises(ObservationError, match="needs each observation's own variance: use a diagonal R"):
        s.prepare(H @ X, y, full, ctx_for(idx))
    with pytest.raises(ObservationError, match=r"AnalysisContext\(obs_coords=...\)"):
        s.prepare(H @ X, y, R, AnalysisContext())
    up = s.prepare(H @ X, y, R, ctx_for(idx))
    with pytest.raises(InputError, match=r"rows.coords is None: pass Rows.whole\(n, coords=...\)"):
        up.apply(X, Rows.whole(RING))
    with pytest.raises(InputError, match="prepared for 20"):
        up.apply(X[:, :5], Rows.whole(RING, coords=np.arange(RING)))


@pytest.mark.parametrize("kwargs, match", [
    ({"localization": None}, "LETKF needs a localization"),
    ({"localization": 3.0}, "LETKF: localization: 3.0 is none of Localization | AdaptiveLocalization"),
    ({"cell": 0.0}, "LETKF: cell: must be a finite number > 0, got 0.0"),
    ({"cell": True}, "LETKF: cell: expected a number, got True"),
    ({"tile": 0}, "LETKF: tile: must be an integer >= 1, got 0"),
    ({"finite_size": 1.0}, "LETKF: finite_size: expected a mapping with keys \\(eps_N, exact_hessian\\), got 1.0"),
])
def test_letkf_bad_options_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LETKF(**{"localization": Localization(1.0), **kwargs})


@pytest.mark.parametrize("kwargs, match", [({"eps_N": -1.0}, "FiniteSize: eps_N: must be a finite number > 0"),
                                           ({"exact_hessian": 1}, "FiniteSize: exact_hessian: expected true or false")])
def test_finite_size_bad_options_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FiniteSize(**kwargs)


def test_letkf_from_params_yaml():
    from fdassim.config import parse

    data = {"model": {"name": "lorenz96"}, "ensemble": {"size": 10}, "observations": {"every": 2},
            "filter": {"scheme": "letkf", "options": {"localization": {"radius": 5.0}, "cell": 2.0,
                                                      "finite_size": {"exact_hessian": False}}},
            "run": {"cycles": 5, "interval": 0.05}}
    assert parse(data).make_scheme() == LETKF(Localization(5.0), cell=2.0,
                                              finite_size=FiniteSize(exact_hessian=False))
    data["filter"]["options"]["finite_size"] = {"eps": 1.0}
    with pytest.raises(ConfigError, match=r"filter.options.finite_size: unknown key 'eps'; allowed keys are: "
                                          r"eps_N, exact_hessian"):
        parse(data)


def test_letkf_memory_is_bounded_by_the_tile():
    # 8000 rows, 8 members, cells of 0.7: beyond the output rows (0.5 MB) only a tile's local
    # analyses and the rows' cell labels; peak allocation below 3 times the rows (tracemalloc)
    import tracemalloc

    rng = np.random.default_rng(7)
    n, m, N = 8000, 400, 8
    coords = rng.uniform(0, 1, (n, 2)) * [10.0, 6.0]
    oc = rng.uniform(0, 1, (m, 2)) * [10.0, 6.0]
    X, Y = rng.standard_normal((n, N)), rng.standard_normal((m, N))
    ctx = AnalysisContext(obs_coords=oc, periodic=(10.0, None))
    up = LETKF(Localization(0.8), cell=0.7, tile=256).prepare(Y, rng.standard_normal(m), ObsError.diagonal(np.ones(m)),
                                                              ctx)
    tracemalloc.start()
    Xa = up.apply(X, Rows.whole(n, coords=coords))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * X.nbytes, f"peak {peak / 1e6:.1f} MB for rows of {X.nbytes / 1e6:.1f} MB"
    assert np.abs(Xa - X).max() > 0.1
