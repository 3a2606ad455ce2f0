"""Exceptions raised by fdassim.

Every message names what is wrong (the key, the value, the member, the cycle) and, where
there is one, the fix.
"""

from __future__ import annotations

__all__ = ["FdassimError", "ConfigError", "OptionError", "InputError", "ObservationError", "ModelError",
           "MemberFailure", "StoreError", "DivergenceWarning"]


class FdassimError(Exception):
    """Base class of every error fdassim raises on purpose."""


class ConfigError(FdassimError, ValueError):
    """A setting (from ``params.yaml`` or a keyword) is missing, unknown or has a bad value."""


class OptionError(ConfigError):
    """An option of a scheme, inflation or model has a bad value (see :mod:`fdassim.options`).

    Parameters
    ----------
    owner
        The class whose option it is.
    key
        The option's name.
    reason
        What is wrong and what is allowed (``"must be a finite number >= 1, got 0.9"``).
    """

    def __init__(self, owner: str, key: str, reason: str):
        self.owner, self.key, self.reason = owner, key, reason
        super().__init__(f"{owner}: {key}: {reason}")


class InputError(FdassimError, ValueError):
    """An array handed to an analysis scheme has the wrong shape or non-finite values."""


class ObservationError(FdassimError, ValueError):
    """Observations, their operator or their error covariance are inconsistent."""


class StoreError(FdassimError, OSError):
    """A run store cannot be made, locked, opened or grown (busy, unreadable, no space)."""


class StoreNotFound(StoreError, FileNotFoundError):
    """There is no run store at the path given (to restart or to read): catch this rather
    than matching the text of a message."""


class DivergenceWarning(UserWarning):
    """The filter has lost the truth: its analysis error is many times its spread."""


class ModelError(FdassimError, RuntimeError):
    """A model's lifecycle hook (``start`` or ``close`` of its domain or members) failed."""


class MemberFailure(ModelError):
    """A forecast of one ensemble member failed or returned NaN/Inf.

    Parameters
    ----------
    member
        Index of the member (0-based, global over the ensemble).
    cycle
        Index of the assimilation cycle during which it failed.
    reason
        What went wrong.
    """

    def __init__(self, member: int, cycle: int, reason: str):
        self.member = member
        self.cycle = cycle
        self.reason = reason
        super().__init__(f"member {member} failed in cycle {cycle}: {reason}")
