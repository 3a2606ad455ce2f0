"""Tests of fdassim.options: one mechanism converts and checks the options of schemes, inflations, models."""

import dataclasses
import math
import typing

import numpy as np
import pytest

from fdassim.config import INFLATIONS, MODELS, SCHEMES, _load_class
from fdassim.errors import ConfigError, OptionError
from fdassim.options import Bounds, check_options, option
from fdassim.typed import build


@dataclasses.dataclass(frozen=True)
class Example:
    count: int = option(3, ge=1)
    ratio: float = option(0.5, gt=0, le=1)
    free: float = option(1.0, finite=False)
    stds: tuple[float, ...] = option((1.0,), ge=0)
    maybe: float | None = option(None, lt=10)

    def __post_init__(self):
        check_options(self)


@pytest.mark.parametrize("kwargs, match", [
    (dict(count=0), r"Example: count: must be an integer >= 1, got 0"),
    (dict(count=True), r"Example: count: expected an integer, got True"),
    (dict(count=2.0), r"Example: count: expected an integer, got 2.0"),
    (dict(ratio=0), r"Example: ratio: must be a finite number > 0 and <= 1, got 0"),
    (dict(ratio=math.nan), r"Example: ratio: must be a finite number > 0 and <= 1, got nan"),
    (dict(ratio="0.5"), r"Example: ratio: expected a number, got '0.5'"),
    (dict(free=math.nan), r"Example: free: must be a number, got nan"),
    (dict(stds=[1.0, -2.0]), r"Example: stds: must be a finite number >= 0, got \[1.0, -2.0\]"),
    (dict(maybe=10), r"Example: maybe: must be a finite number < 10, got 10"),
])
def test_check_options_rejects_with_owner_key_and_allowed_values(kwargs, match):
    with pytest.raises(OptionError, match=match) as info:
        Example(**kwargs)
    assert info.value.owner == "Example" and info.value.key == next(iter(kwargs))


def test_check_options_converts_numbers_lists_and_numpy_scalars():
    e = Example(count=np.int64(2), ratio=1, free=math.inf, stds=np.array([0.0, 2.0]), maybe=np.float32(3.5))
    assert (e.count, e.ratio, e.free, e.stds, e.maybe) == (2, 1.0, math.inf, (0.0, 2.0), 3.5)
    assert type(e.count) is int and type(e.ratio) is float
    assert Example(stds=[1, 2]).stds == (1.0, 2.0)


def test_yaml_errors_name_the_key_path():
    with pytest.raises(ConfigError, match=r"filter.options.ratio: must be a finite number > 0 and <= 1, got 2.0"):
        build(Example, {"ratio": 2.0}, "filter.options")


def test_bounds_describe():
    assert Bounds(ge=0, le=1).describe() == "a finite number >= 0 and <= 1"
    assert Bounds(gt=0, finite=False).describe(integer=True) == "an integer > 0"


def registered():
    return [pytest.param(spec, id=name) for registry in (SCHEMES, INFLATIONS, MODELS) for name, spec in registry.items()]


def required(cls):
    """Values of required options (a localization of radius 5; none other is expected)."""
    from fdassim.analysis.localization import Localization

    names = [f.name for f in dataclasses.fields(cls)
             if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    assert set(names) <= {"localization"}, f"{cls.__name__}: give this test a value for {names}"
    return {name: Localization(5.0) for name in names}


@pytest.mark.parametrize("spec", registered())
def test_every_registered_class_checks_its_options_by_the_one_mechanism(spec):
    """Every scheme, inflation and model of params.yaml is a dataclass that converts its options
    with check_options: a bool where a number is expected is refused with the one message, the
    same from Python as from params.yaml."""
    if spec.startswith("fdassim.models.heat"):
        pytest.importorskip("firedrake")
    cls = _load_class(spec)
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    numeric = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")
               and hints[f.name] in (float, int, float | None, int | None)]
    for name in numeric:
        with pytest.raises(OptionError, match=rf"{cls.__name__}: {name}: expected an? (number|integer), got True"):
            cls(**{**required(cls), name: True})
    cls(**required(cls))  # the defaults pass
