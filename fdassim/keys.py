"""The reference of every ``params.yaml`` key, generated from the code so it cannot go stale.

``fdassim keys`` prints it (Markdown); ``docs/params.md`` is its output, and a test fails when
that file differs from what the code says. Meanings come from the settings dataclasses
(:func:`fdassim.typed.setting`'s ``doc``) and, for the options of models, schemes and
inflations, from the ``Parameters`` section of each class's numpy-style docstring; types and
defaults from the dataclass fields. A key added anywhere in those appears here as it lands.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import math
import re
import types
import typing
from typing import Any

__all__ = ["reference", "section_type", "REGENERATE"]

#: the command that rewrites the reference file
REGENERATE = "fdassim keys > docs/params.md"

_NONE = type(None)


def reference() -> str:
    """The Markdown reference of every key of ``params.yaml``."""
    from .config import INFLATIONS, MODELS, PARAMETERS, SCHEMES, SMOOTHERS, Settings, _load_class

    out = ["# params.yaml: every key", "",
           "Generated from the settings classes and the docstrings of the models, schemes and",
           f"inflations by `fdassim keys`; do not edit (regenerate: `{REGENERATE}`).", "",
           "Relative paths (`observations.file`, `output.path`) are relative to the directory",
           "`fdassim run` is started from, not to the settings file. A restart (`--restart`) must",
           "keep every key that changes the result; the keys marked *free* may change, and",
           "`run.cycles` may grow (the store is extended).", ""]
    for section in dataclasses.fields(Settings):
        tp = section_type(_hints(Settings)[section.name])
        out += [f"## `{section.name}`", "", section.metadata.get("doc", ""), ""]
        if section.name == "inflation":
            out += ["A list of `{kind: options}` mappings (or one mapping of kinds), applied in order:", "",
                    "```yaml", "inflation:", "  - multiplicative: {lam: 1.02}", "  - rtps: {alpha: 0.5}", "```", ""]
            for name, spec in INFLATIONS.items():
                out += _class_table(f"`{name}`", _load_class(spec), "inflation[i]." + name)
            continue
        if section.name == "parameters":
            out += ["A list of `{kind: options}` mappings, applied in order after each analysis:", "",
                    "```yaml", "parameters:", "  - beta: {field: bed, observed: bed}",
                    "  - clip: {field: friction, lower: 0.0}", "```", ""]
            for name, spec in PARAMETERS.items():
                out += _class_table(f"`{name}`", _load_class(spec), "parameters[i]." + name)
            continue
        if section.name == "inversion":
            from .models.inversion import FrictionInversion

            out += ["```yaml", "inversion:", "  velocity_std: 1.0", "  length: 500.0", "  bounds: [0.01, 1.0]",
                    "  target: mean", "  quantity: velocity", "```", ""]
            out += _class_table("`inversion`", FrictionInversion, "inversion")[:-1]
            out += ['| `inversion.quantity` | string | `"velocity"` | The observed quantity holding the velocity at '
                    'every node. |', ""]
            continue
        out += _table([_row(f"{section.name}.{f.name}", f, _hints(tp)[f.name]) for f in _fields(tp)])
        registry = {"model": MODELS, "filter": SCHEMES, "smoother": SMOOTHERS}.get(section.name)
        for name, spec in (registry or {}).items():
            out += _class_table(f"`{section.name}.options` of `{name}`", _load_class(spec),
                                f"{section.name}.options")
    return "\n".join(out).rstrip() + "\n"


def section_type(tp):
    """The settings dataclass of a section (``FilterSettings | None`` -> ``FilterSettings``)."""
    options = _dataclass_options(tp)
    return options[0] if options else tp


def _class_table(title: str, cls, prefix: str) -> list[str]:
    rows = []
    docs = _param_docs(cls)
    for f in _fields(cls):
        rows += _option_rows(f"{prefix}.{f.name}", f, _hints(cls).get(f.name, f.type), docs.get(f.name, ""))
    head = [f"### {title}", "", f"`{cls.__module__}.{cls.__qualname__}`" + (": takes no options" if not rows else ""), ""]
    return head + (_table(rows) if rows else [])


def _option_rows(key: str, f, tp, doc: str) -> list[tuple]:
    rows = [(key, _type(tp), _default(f), doc or "(undocumented)")]
    for sub in _dataclass_options(tp):  # nested options (e.g. localization: {radius, periodic})
        docs = _param_docs(sub)
        for g in _fields(sub):
            rows += _option_rows(f"{key}.{g.name} ({sub.__name__})", g, _hints(sub).get(g.name, g.type),
                                 docs.get(g.name, ""))
    return rows


def _row(key: str, f, tp) -> tuple:
    free = f.metadata.get("restart")
    note = "" if free is None or free.value == "same" else f" *({free.value} on restart)*"
    return (key, _type(tp), _default(f), f.metadata.get("doc", "(undocumented)") + note)


def _table(rows: list[tuple]) -> list[str]:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, tp, default, doc in rows:
        lines.append(f"| `{key}` | {_cell(tp)} | {_cell(default)} | {_cell(doc)} |")
    return lines + [""]


def _cell(text: str) -> str:
    text = re.sub(r"``(.+?)``", r"`\1`", text)  # reStructuredText literals and roles -> Markdown code
    text = re.sub(r":(?:class|func|meth|attr|mod|data):`~?(?:[\w.]*\.)?([^`.]+)`", r"`\1`", text)
    text = re.sub(r":math:`([^`]+)`", r"`\1`", text)
    return text.replace("|", "\\|").replace("\n", " ")


def _fields(cls) -> list:
    return [f for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]


def _hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # annotations that do not resolve outside their module: show them as written
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _dataclass_options(tp) -> list:
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return [a for a in args if isinstance(a, type) and dataclasses.is_dataclass(a)]


def _type(tp) -> str:
    if isinstance(tp, str):
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (tuple, list) or tp in (tuple, list):
        if args and args[-1] is not Ellipsis and origin is tuple:
            return f"list of {len(args)}"
        return f"list of {_type(args[0])}" if args and args[0] is not Any else "list"
    if origin is dict or tp is dict or origin is typing.Mapping:
        return "mapping"
    names = {bool: "true/false", int: "integer", float: "number", str: "string", _NONE: "null", Any: "any"}
    if tp in names:
        return names[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in tp)
    return getattr(tp, "__name__", str(tp))


def _default(f) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "(see its keys)"
    return f"`{_yaml(value)}`"


def _yaml(value) -> str:
    if isinstance(value, enum.Enum):
        return _yaml(value.value)
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, (str, int, float, bool, dict)) or value is None:
        return json.dumps(value)
    return type(value).__name__


def _param_docs(cls) -> dict[str, str]:
    """``{name: first paragraph}`` of the ``Parameters`` section of ``cls``'s docstring."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    m = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-{3,}\n|\Z)", doc, re.S | re.M)
    if not m:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    done = False  # the first paragraph of the current entry is read
    for line in m.group(1).splitlines():
        if line and not line[0].isspace():
            names = [n.strip() for n in line.split(":")[0].split(",") if n.strip()]
            done = False
            for n in names:
                out[n] = ""
        elif not line.strip():
            done = True
        elif not done:
            for n in names:
                out[n] = (out[n] + " " + line.strip()).strip()
    return out
