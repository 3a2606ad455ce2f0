"""Schedules: explicit times or start/every/end, matched to the analysis times; a time that
misses them is an error naming the quantity, never dropped."""

import numpy as np
import pytest

from fdassim.errors import ConfigError
from fdassim.observations import Schedule

T = 0.5 * np.arange(1, 21)  # analysis times 0.5, 1.0, ..., 10.0 (K = 20)


@pytest.mark.parametrize("schedule, cycles", [
    (Schedule(), list(range(20))),
    (Schedule(times=(2.0,)), [3]),                        # observed once, at year 2
    (Schedule(start=2.0, every=2.0), [3, 7, 11, 15, 19]),  # every 2 years from year 2
    (Schedule(start=1.0, every=1.5, end=5.5), [1, 4, 7, 10]),
    (Schedule(start=9.0), [17, 18, 19]),
    (Schedule(times=(0.1 + 0.2, 10.0)), None),            # 0.30000000000000004 is not 0.5
])
def test_schedule_cycles(schedule, cycles):
    if cycles is None:
        with pytest.raises(ConfigError, match=r"obs.bed.schedule.times: time 0.30000000000000004 is not an analysis "
                                              r"time \(before the first analysis time 0.5\)"):
            schedule.cycles(T, "obs.bed.schedule")
    else:
        assert schedule.cycles(T, "s").tolist() == cycles


def test_schedule_float_times_on_the_grid_match():
    t = 0.1 * np.arange(1, 31)  # accumulated round-off: 0.30000000000000004, ...
    assert Schedule(start=0.3, every=0.3).cycles(t, "s").tolist() == list(range(2, 30, 3))


@pytest.mark.parametrize("schedule, match", [
    (Schedule(times=(2.2,)), r"q.times: time 2.2 is not an analysis time \(between analysis times; the nearest is "
                             r"2.0\); analyses are at 0.5, 1.0, ..., 10.0: observe at those times"),
    (Schedule(times=(12.0,)), r"q.times: time 12.0 is not an analysis time \(after the last analysis time 10.0\)"),
    (Schedule(start=2.0, every=0.7), r"q: time 2.7 is not an analysis time"),
    (Schedule(times=(2.0, 2.0)), r"q.times: time 2.0 is listed twice"),
    (Schedule(start=0.75), r"q.start: time 0.75 is not an analysis time"),
])
def test_schedule_missing_the_analysis_times_names_the_key(schedule, match):
    with pytest.raises(ConfigError, match=match):
        schedule.cycles(T, "q")


@pytest.mark.parametrize("kwargs, match", [
    (dict(times=(1.0,), every=1.0), r"schedule: give either times or start/every/end, not both"),
    (dict(times=()), r"schedule.times: empty"),
    (dict(every=0.0), r"schedule.every: must be positive, got 0.0"),
    (dict(start=3.0, end=1.0), r"schedule.end: 1.0 is before schedule.start 3.0"),
])
def test_schedule_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Schedule(**kwargs)
