"""When a quantity is observed: explicit times, or ``start / every / end``.

A schedule's times must be analysis times of the run: a time that misses them is an error
naming the quantity, the time and the nearest analysis time, never silently dropped (a
float schedule that misses the model's grid silently loses observations in other systems).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..typed import setting

__all__ = ["Schedule", "match_times"]


def _tolerance(analysis_times: np.ndarray) -> float:
    """Two times closer than this are the same time: a millionth of the shortest interval."""
    t = np.asarray(analysis_times, dtype=float)
    gaps = np.diff(t)
    scale = gaps.min() if gaps.size else max(1.0, abs(float(t[0])))
    return 1e-6 * scale


def match_times(times, analysis_times, key: str) -> np.ndarray:
    """The cycle index of each of ``times`` among ``analysis_times`` (``t_1 .. t_K``).

    Raises
    ------
    ConfigError
        Naming ``key``, the time and the nearest analysis time, when a time is not an analysis
        time (within a millionth of the shortest interval), or a time is repeated.
    """
    times = np.asarray(times, dtype=float).reshape(-1)
    ta = np.asarray(analysis_times, dtype=float).reshape(-1)
    tol = _tolerance(ta)
    cycles = np.empty(times.size, dtype=int)
    for i, t in enumerate(times.tolist()):
        if not np.isfinite(t):
            raise ConfigError(f"{key}: time {i} is {t!r}; times must be finite numbers")
        j = int(np.argmin(np.abs(ta - t)))
        if abs(ta[j] - t) > tol:
            where = (f"after the last analysis time {float(ta[-1])!r}" if t > ta[-1] else
                     f"before the first analysis time {float(ta[0])!r}" if t < ta[0] else
                     f"between analysis times; the nearest is {float(ta[j])!r}")
            raise ConfigError(f"{key}: time {t!r} is not an analysis time ({where}); analyses are at "
                              f"{_describe(ta)}: observe at those times or change run.interval")
        cycles[i] = j
    if np.unique(cycles).size != cycles.size:
        dup = float(ta[np.sort(cycles)[np.flatnonzero(np.diff(np.sort(cycles)) == 0)[0]]])
        raise ConfigError(f"{key}: time {dup!r} is listed twice")
    return cycles


def _describe(ta: np.ndarray) -> str:
    if ta.size <= 4:
        return ", ".join(repr(float(t)) for t in ta)
    return f"{float(ta[0])!r}, {float(ta[1])!r}, ..., {float(ta[-1])!r}"


@dataclass(frozen=True)
class Schedule:
    """The times at which a quantity is observed.

    Give ``times`` (a list), or any of ``start`` (default: the first analysis time),
    ``every`` (default: every analysis time) and ``end`` (default: the last analysis time);
    nothing at all means every analysis time.

    Examples
    --------
    >>> Schedule(times=(2.0,))                 # the bed, observed once at year 2
    >>> Schedule(start=2.0, every=2.0)         # surface and velocity every 2 years from year 2
    """

    times: tuple[float, ...] | None = setting(None, doc="the observation times (analysis times of the run)")
    start: float | None = setting(None, doc="the first observation time (default: the first analysis time)")
    every: float | None = setting(None, doc="the interval between observation times (default: every analysis)")
    end: float | None = setting(None, doc="the last observation time (default: the last analysis time)")

    def __post_init__(self):
        if self.times is not None:
            if any(v is not None for v in (self.start, self.every, self.end)):
                raise ConfigError("schedule: give either times or start/every/end, not both")
            if len(self.times) == 0:
                raise ConfigError("schedule.times: empty; list at least one time (or leave the schedule out "
                                  "to observe at every analysis)")
            object.__setattr__(self, "times", tuple(float(t) for t in self.times))
        if self.every is not None and not (np.isfinite(self.every) and self.every > 0):
            raise ConfigError(f"schedule.every: must be positive, got {self.every!r}")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ConfigError(f"schedule.end: {self.end!r} is before schedule.start {self.start!r}")

    def cycles(self, analysis_times, key: str = "schedule") -> np.ndarray:
        """The cycle indices (into ``analysis_times``, ``t_1 .. t_K``) of the observation times.

        Raises
        ------
        ConfigError
            Naming ``key`` if a time is not an analysis time, or the schedule is empty.
        """
        ta = np.asarray(analysis_times, dtype=float).reshape(-1)
        if self.times is not None:
            return match_times(self.times, ta, f"{key}.times")
        if self.start is None and self.every is None and self.end is None:
            return np.arange(ta.size)
        start = ta[0] if self.start is None else self.start
        end = ta[-1] if self.end is None else self.end
        if self.every is None:
            first = match_times([start], ta, f"{key}.start")[0]
            last = match_times([end], ta, f"{key}.end")[0]
            return np.arange(first, last + 1)
        n = int(np.floor((end - start) / self.every * (1 + 1e-12) + 1e-9)) + 1
        if n < 1:
            raise ConfigError(f"{key}: no time between start {start!r} and end {end!r}")
        return match_times(start + self.every * np.arange(n), ta, key)
