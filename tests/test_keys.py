"""The reference of every params.yaml key (docs/params.md) is generated from the code and current."""

import dataclasses
import os

from fdassim.keys import REGENERATE, reference

DOC = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "params.md")


def test_keys_reference_is_current():
    with open(DOC) as fh:
        stored = fh.read()
    assert stored == reference(), f"docs/params.md is stale: a setting changed; regenerate it with `{REGENERATE}`"


def test_keys_every_setting_is_documented_and_listed():
    import typing

    from fdassim.config import Settings
    from fdassim.keys import section_type

    text = reference()
    hints = typing.get_type_hints(Settings)
    for section in dataclasses.fields(Settings):
        assert section.metadata.get("doc"), f"{section.name}: give it a doc (fdassim.typed.setting)"
        tp = section_type(hints[section.name])
        if dataclasses.is_dataclass(tp):
            for f in dataclasses.fields(tp):
                assert f.metadata.get("doc"), f"{section.name}.{f.name}: give it a doc (fdassim.typed.setting)"
                assert f"| `{section.name}.{f.name}` |" in text
    for key in ("run.twin", "run.t0", "run.progress", "output.store_ensembles",
                "filter.options.localization.radius (Localization)", "filter.options.localization.periodic"):
        assert f"`{key}" in text, key


def test_keys_docstring_parameters_are_read():
    from fdassim.keys import _param_docs

    class Example:
        """Title.

        Parameters
        ----------
        a, b : float
            First line
            continued.

            Second paragraph, left out.
        c
            Another.

        Raises
        ------
        ValueError
            Never.
        """

    assert _param_docs(Example) == {"a": "First line continued.", "b": "First line continued.", "c": "Another."}
