"""Window schedule and MDA weights: every observation assimilated exactly once in total."""

import pytest

from fdassim.errors import ConfigError
from fdassim.smoothers.window import Window


@pytest.mark.parametrize("lag, shift", [(1, 1), (4, 1), (4, 2), (6, 3), (5, 2), (7, 3), (8, 8)])
def test_window_mda_weights_sum_to_one_over_the_windows_holding_an_observation(lag, shift):
    """Exact sums (the weights are ratios of small integers; 1e-12 allows round-off)."""
    w = Window(lag, shift)
    C = 40
    for j in range(1, (C - 1) * shift + 1):  # observations every later window could still hold
        holders = [c for c in range(C) if j in w.observed(c)]
        assert len(holders) == w.passes(j)
        assert sum(w.mda_weight(j) for _ in holders) == pytest.approx(1.0, abs=1e-12)
        for n, c in enumerate(holders):  # balancing takes exactly what the earlier MDA passes left
            assert w.balancing_weight(c, j) + n * w.mda_weight(j) == pytest.approx(1.0, abs=1e-12)


def test_window_weights_match_the_block_pattern_of_the_paper():
    """L = 4, S = 2 (two blocks of two): steady state MDA weight S/L = 1/2 and balancing weights
    1/2 (older block) and 1 (new block); first window MDA weights 1 and 1/2 (block b: 1/b)."""
    w = Window(4, 2)
    assert [w.mda_weight(j) for j in w.observed(0)] == [1.0, 1.0, 0.5, 0.5]
    assert [w.balancing_weight(0, j) for j in w.observed(0)] == [1.0] * 4
    assert [w.mda_weight(j) for j in w.observed(3)] == [0.5] * 4
    assert [w.balancing_weight(3, j) for j in w.observed(3)] == [0.5, 0.5, 1.0, 1.0]


def test_window_new_leaving_and_count():
    w = Window(5, 2)
    assert list(w.new(0)) == [1, 2, 3, 4, 5] and list(w.new(2)) == [8, 9]
    assert list(w.leaving(2)) == [4, 5] and list(w.observed(2)) == [5, 6, 7, 8, 9]
    assert w.count(5) == 1 and w.count(10) == 3 and w.count(11) == 4
    # every observation time is new in exactly one window, every state leaves in one
    C = w.count(11)
    news = [j for c in range(C) for j in w.new(c)]
    assert news == list(range(1, 12))
    assert [i for c in range(C) for i in w.leaving(c)] == list(range(0, 2 * C))


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"lag": 0}, r"Window: lag must be an integer >= 1, got 0", id="zero-lag"),
    pytest.param({"lag": 3, "shift": 4}, r"Window: shift must be an integer in 1..3, got 4", id="shift-above-lag"),
    pytest.param({"lag": 2.0}, r"Window: lag must be an integer >= 1, got 2.0", id="float-lag"),
    pytest.param({"lag": True}, r"Window: lag must be an integer >= 1, got True", id="bool-lag"),
])
def test_window_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Window(**kwargs)


def test_window_count_rejects_a_run_shorter_than_the_lag():
    with pytest.raises(ConfigError, match=r"a run of 3 observation times is shorter than the lag 4"):
        Window(4).count(3)


def test_window_balancing_weight_rejects_an_observation_outside_the_window():
    with pytest.raises(ValueError, match=r"observation 9 is not in window 0"):
        Window(4, 2).balancing_weight(0, 9)
