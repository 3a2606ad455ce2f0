"""Tests of fdassim.inflation: each inflation's formula, its validation, and row-split invariance."""

import numpy as np
import pytest

from fdassim.analysis.base import AnalysisContext, Rows
from fdassim.errors import ConfigError, InputError
from fdassim.inflation import RTPP, RTPS, Additive, Chain, Inflation, Multiplicative, Stage
from fdassim.streams import ROWS_PER_PART

N, n = 12, 30
CTX = AnalysisContext(seed=5, cycle=3)


@pytest.fixture
def ens():
    """Forecast and a narrower analysis ensemble, (n, N) each, with different means."""
    rng = np.random.default_rng(0)
    Xf = 1.0 + 2.0 * rng.standard_normal((n, N))
    Xa = 0.5 * Xf + 0.3 * rng.standard_normal((n, N)) - 0.2
    return Xf, Xa


def spread(X):
    return X.std(axis=1, ddof=1)


def split_apply(f, X, rows, cuts=(0, 7, 8, 19, n)):
    """Apply ``f(block, rows_block)`` to blocks of rows and stack the results."""
    return np.vstack([f(X[lo:hi], rows.block(lo, hi)) for lo, hi in zip(cuts[:-1], cuts[1:])])


# ---------------------------------------------------------------- base and multiplicative
def test_inflation_base_is_identity(ens):
    Xf, Xa = ens
    infl, rows = Inflation(), Rows.whole(n)
    assert infl.prior(Xf, rows) is Xf
    assert infl.prior_obs(Xf) is Xf
    assert infl.posterior(Xa, Xf, rows, CTX) is Xa


def test_multiplicative_prior_scales_anomalies(ens):
    Xf, Xa = ens
    infl, rows = Multiplicative(1.1), Rows.whole(n)
    Xi = infl.prior(Xf, rows)
    np.testing.assert_allclose(Xi.mean(axis=1), Xf.mean(axis=1), rtol=0, atol=1e-13)
    np.testing.assert_allclose(spread(Xi), 1.1 * spread(Xf), rtol=1e-13)
    assert infl.posterior(Xa, Xf, rows, CTX) is Xa  # prior stage leaves the analysis alone


def test_multiplicative_posterior_stage(ens):
    Xf, Xa = ens
    infl, rows = Multiplicative(1.3, stage="posterior"), Rows.whole(n)
    assert infl.stage is Stage.POSTERIOR
    assert infl.prior(Xf, rows) is Xf
    np.testing.assert_allclose(spread(infl.posterior(Xa, Xf, rows, CTX)), 1.3 * spread(Xa), rtol=1e-13)


def test_multiplicative_param_rows_use_lam_param(ens):
    Xf, _ = ens
    is_param = np.zeros(n, bool)
    is_param[-5:] = True
    Xi = Multiplicative(1.05, lam_param=1.5).prior(Xf, Rows.whole(n, is_param=is_param))
    np.testing.assert_allclose(spread(Xi)[~is_param], 1.05 * spread(Xf)[~is_param], rtol=1e-13)
    np.testing.assert_allclose(spread(Xi)[is_param], 1.5 * spread(Xf)[is_param], rtol=1e-13)


def test_multiplicative_prior_obs_matches_linear_H(ens):
    Xf, _ = ens
    H = np.random.default_rng(1).standard_normal((7, n))
    infl = Multiplicative(1.2)
    np.testing.assert_allclose(infl.prior_obs(H @ Xf), H @ infl.prior(Xf, Rows.whole(n)), atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=0.99), r"lam: must be a finite number >= 1, got 0.99"),
    (dict(lam=np.nan), r"lam: must be a finite number >= 1, got nan"),
    (dict(lam=np.inf), r"lam: must be a finite number >= 1, got inf"),
    (dict(lam=1.1, lam_param=0.5), r"lam_param: must be a finite number >= 1, got 0.5"),
    (dict(lam="1.1"), r"lam: expected a number, got '1.1'"),
    (dict(lam=True), r"lam: expected a number, got True"),
    (dict(lam=1.1, stage="middle"), r"stage: 'middle' is not allowed; choose one of 'prior', 'posterior'"),
])
def test_multiplicative_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=f"Multiplicative: {match}"):
        Multiplicative(**kwargs)


def test_options_accept_enum_members_values_names_and_numpy_scalars():
    assert Multiplicative(2, stage="posterior").stage is Stage.POSTERIOR
    assert Multiplicative(np.float32(1.5), stage="POSTERIOR").stage is Stage.POSTERIOR
    assert Multiplicative(2).lam == 2.0 and isinstance(Multiplicative(2).lam, float)
    assert RTPS(np.float64(0.3)).alpha == 0.3


# ---------------------------------------------------------------- additive
def test_additive_noise_has_the_given_std():
    # 4e5 draws: the sample std has a relative standard error of 1/sqrt(2 * 4e5) = 0.11 %, so a
    # 0.5 % tolerance (4.5 standard errors) catches a 2 % error in the noise's std (18 of them)
    Xa = np.zeros((10_000, 40))
    out = Additive(std=0.7).posterior(Xa, Xa, Rows.whole(10_000), CTX)
    assert abs(out.std() / 0.7 - 1) < 0.005
    assert abs(out.mean()) < 4 * 0.7 / np.sqrt(out.size)
    assert np.all(Xa == 0)  # input untouched


def test_additive_rows_straddling_a_part_are_split_invariant():
    # blocks cut inside and across the 2**16-row parts of fdassim.streams.row_normals
    n_big = ROWS_PER_PART + 1000
    rows = Rows.whole(n_big)
    Xa = np.zeros((n_big, 3))
    whole = Additive(std=1.0).posterior(Xa, Xa, rows, CTX)
    cuts = (0, 5, ROWS_PER_PART - 3, ROWS_PER_PART + 2, n_big)
    blocks = split_apply(lambda X, r: Additive(std=1.0).posterior(X, X, r, CTX), Xa, rows, cuts)
    np.testing.assert_array_equal(whole, blocks)
    assert not np.array_equal(whole[:, 0], whole[:, 1])  # members draw different noise


def test_additive_per_row_std():
    # 10 x 8000 draws with std 2: relative standard error 0.25 %, tolerance 1 % (4 of them)
    std = np.r_[np.zeros(10), np.full(10, 2.0)]
    out = Additive(std=std).posterior(np.zeros((20, 8000)), np.zeros((20, 8000)), Rows.whole(20), CTX)
    assert np.all(out[:10] == 0)
    assert abs(out[10:].std() / 2.0 - 1) < 0.01


def test_additive_is_split_invariant_and_seeded(ens):
    Xf, Xa = ens
    infl, rows = Additive(std=0.5), Rows.whole(n)
    whole = infl.posterior(Xa, Xf, rows, CTX)
    blocks = split_apply(lambda X, r: infl.posterior(X, None, r, CTX), Xa, rows)
    np.testing.assert_array_equal(whole, blocks)
    assert not np.array_equal(whole, infl.posterior(Xa, Xf, rows, AnalysisContext(seed=5, cycle=4)))
    np.testing.assert_array_equal(whole, infl.posterior(Xa, Xf, rows, AnalysisContext(seed=5, cycle=3)))


def test_additive_needs_total():
    with pytest.raises(InputError, match="rows.total"):
        Additive(std=1.0).posterior(np.zeros((3, 4)), None, Rows(0, None), CTX)


def test_additive_std_length_must_match_state():
    with pytest.raises(InputError, match="std has 3 values but the state has 5 rows"):
        Additive(std=np.ones(3)).posterior(np.zeros((5, 4)), None, Rows.whole(5), CTX)


@pytest.mark.parametrize("std", [-0.1, np.nan, [1.0, -1.0], np.array([0.5, np.inf])])
def test_additive_rejects_bad_std(std):
    with pytest.raises(ConfigError, match="Additive: std: must be a finite number >= 0, got"):
        Additive(std=std)


def test_additive_has_no_stream_option():
    # one registry of streams: additive noise always draws from Stream.ADDITIVE
    with pytest.raises(TypeError, match="stream"):
        Additive(std=1.0, stream=0)


# ---------------------------------------------------------------- RTPS and RTPP
@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
def test_rtps_relaxes_spread(ens, alpha):
    Xf, Xa = ens
    out = RTPS(alpha).posterior(Xa, Xf, Rows.whole(n), CTX)
    np.testing.assert_allclose(out.mean(axis=1), Xa.mean(axis=1), atol=1e-13)
    np.testing.assert_allclose(spread(out), alpha * spread(Xf) + (1 - alpha) * spread(Xa), rtol=1e-12)
    # the shape of the anomalies is kept: a positive multiple of the analysis anomalies
    Aa, Ao = Xa - Xa.mean(axis=1, keepdims=True), out - out.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(Ao / Aa, (Ao / Aa)[:, :1].repeat(N, axis=1), rtol=1e-10)


def test_rtps_leaves_collapsed_rows_alone(ens):
    Xf, Xa = ens
    Xa = Xa.copy()
    Xa[3] = 2.0
    out = RTPS(0.7).posterior(Xa, Xf, Rows.whole(n), CTX)
    assert np.all(np.isfinite(out)) and np.all(out[3] == 2.0)


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
def test_rtpp_relaxes_perturbations(ens, alpha):
    Xf, Xa = ens
    out = RTPP(alpha).posterior(Xa, Xf, Rows.whole(n), CTX)
    mf, ma = Xf.mean(axis=1, keepdims=True), Xa.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(out, ma + (1 - alpha) * (Xa - ma) + alpha * (Xf - mf), atol=1e-13)


@pytest.mark.parametrize("cls", [RTPS, RTPP])
def test_relaxation_param_rows(ens, cls):
    Xf, Xa = ens
    is_param = np.arange(n) >= n - 4
    out = cls(0.3, alpha_param=1.0).posterior(Xa, Xf, Rows.whole(n, is_param=is_param), CTX)
    np.testing.assert_allclose(spread(out)[is_param], spread(Xf)[is_param], rtol=1e-12)
    np.testing.assert_allclose(out[~is_param], cls(0.3).posterior(Xa, Xf, Rows.whole(n), CTX)[~is_param],
                               atol=1e-14)


@pytest.mark.parametrize("cls", [RTPS, RTPP])
@pytest.mark.parametrize("kwargs, key", [(dict(alpha=-0.1), "alpha"), (dict(alpha=1.5), "alpha"),
                                         (dict(alpha=np.nan), "alpha"),
                                         (dict(alpha=0.5, alpha_param=2.0), "alpha_param")])
def test_relaxation_rejects_bad_alpha(cls, kwargs, key):
    with pytest.raises(ConfigError, match=rf"{cls.__name__}: {key}: must be a finite number >= 0 and <= 1, got"):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [RTPS, RTPP])
def test_relaxation_shape_mismatch(ens, cls):
    Xf, Xa = ens
    with pytest.raises(InputError, match="differ in shape"):
        cls(0.5).posterior(Xa, Xf[:-1], Rows.whole(n), CTX)


# ---------------------------------------------------------------- chain and split invariance
def test_chain_applies_in_order(ens):
    Xf, Xa = ens
    rows = Rows.whole(n)
    chain = Chain((Multiplicative(1.1), Multiplicative(1.2), RTPS(0.5)))
    np.testing.assert_allclose(spread(chain.prior(Xf, rows)), 1.32 * spread(Xf), rtol=1e-12)
    np.testing.assert_allclose(spread(chain.prior_obs(Xf)), 1.32 * spread(Xf), rtol=1e-12)
    np.testing.assert_array_equal(chain.posterior(Xa, Xf, rows, CTX), RTPS(0.5).posterior(Xa, Xf, rows, CTX))


def test_chain_rejects_non_inflation():
    with pytest.raises(ConfigError, match=r"Chain: items\[1\]: must be an Inflation, got float"):
        Chain((RTPS(0.5), 1.02))


@pytest.mark.parametrize("infl", [
    Multiplicative(1.07, lam_param=1.3), Multiplicative(1.07, stage=Stage.POSTERIOR), RTPS(0.6, alpha_param=0.9),
    RTPP(0.4), Additive(0.3), Chain((Multiplicative(1.02), RTPS(0.5), Additive(0.1))),
], ids=lambda i: type(i).__name__)
def test_inflation_is_split_invariant(ens, infl):
    """Bitwise the same result whichever rows share a block (as for Update.apply)."""
    Xf, Xa = ens
    rows = Rows.whole(n, coords=np.arange(n), is_param=np.arange(n) % 4 == 0)
    np.testing.assert_array_equal(infl.prior(Xf, rows), split_apply(infl.prior, Xf, rows))
    cuts = (0, 7, 8, 19, n)
    post = np.vstack([infl.posterior(Xa[lo:hi], Xf[lo:hi], rows.block(lo, hi), CTX)
                      for lo, hi in zip(cuts[:-1], cuts[1:])])
    np.testing.assert_array_equal(infl.posterior(Xa, Xf, rows, CTX), post)


@pytest.mark.parametrize("infl", [Multiplicative(1.1), Multiplicative(1.1, stage="posterior"), Additive(std=0.5),
                                  RTPS(0.5), RTPP(0.5)],
                         ids=["mult-prior", "mult-posterior", "additive", "rtps", "rtpp"])
def test_inflation_rejects_non_finite_rows(ens, infl):
    # the same check (fdassim.analysis.base.check_rows) as every analysis update: member 4, global row 13
    Xf, Xa = ens
    bad = Xa.copy()
    bad[3, 4] = np.inf
    rows = Rows(10, 10 + n)
    with pytest.raises(InputError, match=r"Xa? has NaN or Inf values in member\(s\) \[4\] at row\(s\) \[13\]"):
        infl.prior(bad, rows)
        infl.posterior(bad, Xf, rows, CTX)
