"""One mechanism for the options of schemes, inflations and models.

An options class is a frozen dataclass whose fields are typed and carry their bounds::

    @dataclass(frozen=True)
    class Multiplicative(Inflation):
        lam: float = option(1.0, ge=1)
        stage: Stage = Stage.PRIOR

    # in __post_init__ (the base classes call it for subclasses that define none):
    check_options(self)

:func:`check_options` converts and checks every field with the conversion ``params.yaml``
uses (:func:`fdassim.typed.convert`): an ``int`` is not a ``bool``, a ``float`` field
accepts integers and gives a float, an ``Enum`` field accepts the member, its value or its
name (``"prior"``, ``"PRIOR"``, ``Stage.PRIOR``), a ``tuple[float, ...]`` accepts a list.
numpy scalars count as the Python numbers they hold. Then the bounds of :func:`option` are
applied: ``gt``, ``ge``, ``lt``, ``le`` and finiteness (every real option is finite unless
``finite=False``), elementwise for a tuple. A bad value raises :class:`OptionError`, which
names the class, the option and the allowed values (``Multiplicative: lam: must be a finite
number >= 1, got 0.9``); from ``params.yaml`` :func:`fdassim.typed.build` names the key
instead (``inflation[0].multiplicative.lam: must be ...``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, OptionError
from .typed import convert

__all__ = ["OptionError", "Bounds", "option", "check_options"]


@dataclass(frozen=True)
class Bounds:
    """Bounds of a real option (``None``: no bound); ``finite`` refuses NaN and infinities."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    finite: bool = True

    def describe(self, integer: bool = False) -> str:
        parts = [f"{op} {v:g}" for op, v in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
                 if v is not None]
        kind = "an integer" if integer else "a finite number" if self.finite else "a number"
        return kind + (f" {' and '.join(parts)}" if parts else "")

    def admits(self, x: float) -> bool:
        return not ((self.finite and not math.isfinite(x)) or math.isnan(x)
                    or (self.gt is not None and not x > self.gt) or (self.ge is not None and not x >= self.ge)
                    or (self.lt is not None and not x < self.lt) or (self.le is not None and not x <= self.le))


def option(default=dataclasses.MISSING, *, gt: float | None = None, ge: float | None = None,
           lt: float | None = None, le: float | None = None, finite: bool = True):
    """A dataclass field with bounds checked by :func:`check_options` (no default: required)."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(gt, ge, lt, le, finite)})


def _plain(value):
    """numpy scalars and arrays as the Python numbers and tuples they hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(_plain(v) for v in value)
    return value


def check_options(obj) -> None:
    """Convert and check every init field of the dataclass ``obj`` in place (see the module).

    Raises
    ------
    OptionError
        Naming the class, the option, the value and what is allowed.
    """
    owner = type(obj).__name__
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init or f.name.startswith("_"):
            continue
        value = getattr(obj, f.name)
        try:
            value = convert(hints[f.name], _plain(value), f.name)
        except ConfigError as exc:  # "<key>: <reason>" from typed.convert
            reason = str(exc)
            raise OptionError(owner, f.name, reason[len(f.name) + 2:] if reason.startswith(f.name + ": ")
                              else reason) from None
        bounds = f.metadata.get("bounds")
        if bounds is not None and value is not None:
            for x in (value if isinstance(value, tuple) else (value,)):
                if not (isinstance(x, numbers.Real) and bounds.admits(float(x))):
                    raise OptionError(owner, f.name, f"must be {bounds.describe(isinstance(x, int))}, "
                                                     f"got {getattr(obj, f.name)!r}")
        object.__setattr__(obj, f.name, value)
