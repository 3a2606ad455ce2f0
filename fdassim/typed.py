"""Build frozen dataclasses from YAML mappings, strictly typed.

:func:`build` turns a mapping into an instance of a dataclass, checking every key against
the class's fields and every value against the field's type annotation. Nothing is coerced
by guessing: ``"False"`` is not a bool, ``1.5`` is not an int, an unknown key is an error.
Every error names the full key path (``filter.options.infl``), the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Mapping

from .errors import ConfigError, OptionError

__all__ = ["build", "allowed", "setting", "OnRestart"]

_NONE = type(None)


class OnRestart(enum.Enum):
    """What ``fdassim run --restart`` does when a setting differs from the stored run's."""

    SAME = "same"  #: refuse: it changes the result (the default)
    FREE = "free"  #: accept: it cannot change the result (a progress bar, where files go)
    GROW = "grow"  #: accept a larger value by growing the store (``run.cycles``)


def setting(default: Any = dataclasses.MISSING, *, doc: str, default_factory: Any = dataclasses.MISSING,
            restart: OnRestart = OnRestart.SAME, input_file: bool = False) -> Any:
    """A field of a settings dataclass, with its meaning for the reference of keys.

    Parameters
    ----------
    default, default_factory
        As for :func:`dataclasses.field`; neither makes the key required.
    doc
        What the key means, one or two sentences (``fdassim keys`` prints it).
    restart
        Whether a restart may change it (see :class:`OnRestart`); by default it may not,
        since it may change the result.
    input_file
        The value is the path of an input file: a restart compares the file's contents too.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Example:
    ...     size: int = setting(10, doc="number of members")
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"doc": doc, "restart": restart, "input_file": input_file})


def allowed(cls) -> str:
    """The keys a dataclass accepts, for error messages."""
    return ", ".join(f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_"))


def build(cls, data: Any, path: str):
    """An instance of dataclass ``cls`` from the mapping ``data`` found at key ``path``.

    Raises
    ------
    ConfigError
        Naming the key path for an unknown key, a missing required key, a value of the wrong
        type, or an invalid value rejected by the class itself.
    """
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with keys ({allowed(cls)}), got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")}
    unknown = [k for k in data if k not in fields]
    if unknown:
        if not path:
            raise ConfigError(f"unknown top-level key {unknown[0]!r}; allowed keys are: {allowed(cls)}")
        if not fields:
            raise ConfigError(f"{path}: unknown key {unknown[0]!r}; {cls.__name__} takes no options")
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; allowed keys are: {allowed(cls)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = convert(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    try:
        return cls(**kwargs)
    except OptionError as exc:  # an option of cls: name its key
        raise ConfigError(f"{path}.{exc.key}: {exc.reason}" if path else f"{exc.key}: {exc.reason}") from None
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None


def convert(tp, value: Any, key: str):
    """Check ``value`` against type ``tp`` (converting only lists to tuples and ints to floats)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and _NONE in args:
            return None
        errors = []
        for a in args:
            if a is _NONE:
                continue
            try:
                return convert(a, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{key}: {value!r} is none of {' | '.join(_name(a) for a in args)}:\n  "
                          + "\n  ".join(errors))
    if origin is typing.Literal:
        if value in args and type(value) is type(args[args.index(value)]):
            return value
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(repr, args))}")
    if tp in (tuple, list):  # a bare tuple or list: any items
        tp, origin, args = (tuple[Any, ...], tuple, (Any, Ellipsis)) if tp is tuple else (list[Any], list, (Any,))
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        seq = [convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):  # the member itself (from Python)
            return value
        for member in tp:
            if value == member.value or value == member.name:
                return member
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of "
                          f"{', '.join(repr(m.value) for m in tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false (unquoted), got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{key}: expected {_name(tp)}, got {value!r}")
    return value


def _name(tp) -> str:
    return "null" if tp is _NONE else getattr(tp, "__name__", str(tp))
