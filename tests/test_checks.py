"""Checks before the first write (model steps, memory) and the divergence rule, as pure functions."""

import numpy as np
import pytest

from fdassim.checks import check_times
from fdassim.divergence import DivergenceRule, divergence
from fdassim.errors import ConfigError


class _Stepped:
    dt = 0.1


class _Picky:
    def check_interval(self, t0, t1):
        if t1 > 1.0:
            raise ValueError("the forcing file ends at t = 1")


def test_checks_times_whole_steps():
    check_times(_Stepped(), 0.3 * np.arange(10001))  # 3 steps each, over a long run: round-off is fine
    with pytest.raises(ConfigError, match=r"run.interval: 0.25 is not a whole number of the model's time steps "
                                          r"\(model.options.dt = 0.1; cycle 0, .*use a multiple of 0.1, such as 0.2"):
        check_times(_Stepped(), 0.25 * np.arange(4))
    with pytest.raises(ConfigError, match=r"such as 0.1$"):
        check_times(_Stepped(), 0.05 * np.arange(4))  # less than one step
    check_times(object(), 0.123 * np.arange(4))  # a model that says nothing is not checked


def test_checks_times_model_check_interval_names_the_cycle():
    check_times(_Picky(), 0.25 * np.arange(5))
    with pytest.raises(ConfigError, match=r"run.interval: the model cannot step from t = 1.0 to 1.25 \(cycle 4\): "
                                          r"the forcing file ends at t = 1"):
        check_times(_Picky(), 0.25 * np.arange(6))


def test_checks_memory_refuses_with_the_figure_and_the_limit():
    from mpi4py import MPI

    from fdassim.checks import check_memory

    check_memory(1000, 21, MPI.COMM_SELF, available=10 ** 9)  # 0.7 MB: fine
    with pytest.raises(ConfigError, match=r"ensemble.size: 101 states \(members and truth\) of 1000000 values need "
                                          r"at least 3.01 GiB of memory on host .* \(1 rank\(s\) there, 4 copies "
                                          r"of their share of the ensemble\), more than the 0.931 GiB available"):
        check_memory(10 ** 6, 101, MPI.COMM_SELF, available=10 ** 9)


def test_divergence_ratio_and_collapse():
    rule = DivergenceRule(ratio=5.0, collapse=1e-3, window=4)
    spread = np.full(20, 0.2)
    healthy = np.full(20, 0.25)
    assert all(divergence(healthy, spread, k, rule) is None for k in range(20))
    lost = healthy.copy()
    lost[8:] = 3.0
    first = next(k for k in range(20) if divergence(lost, spread, k, rule))
    # cycles 5-8: (3 * 0.25 + 3.0) / 4 = 0.94 < 5 * 0.2; cycles 6-9: (2 * 0.25 + 2 * 3.0) / 4 = 1.625 > 1
    assert first == 9
    msg = divergence(lost, spread, 9, rule)
    assert msg == ("the filter diverges at cycle 9: its analysis RMSE 1.62 is 8.1 times its ensemble spread 0.2 "
                   "(means over cycles 6-9); try more inflation, localization, or more members")
    # without a truth (NaN RMSE): a spread that collapses to a thousandth of its start
    nan = np.full(20, np.nan)
    collapsing = 0.2 * 10.0 ** -np.arange(20.0)
    k = next(k for k in range(20) if divergence(nan, collapsing, k, rule))
    assert np.mean(collapsing[k - 3:k + 1]) < 2e-4 <= np.mean(collapsing[k - 4:k])
    assert "spread collapsed from 0.2 at cycle 0" in divergence(nan, collapsing, k, rule)
    assert all(divergence(nan, spread, k, rule) is None for k in range(20))
