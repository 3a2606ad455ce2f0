"""The README's examples work as written: its params.yaml is valid and its Python runs."""

import os
import re
import subprocess
import sys

import pytest
import yaml

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _blocks(language, marker=""):
    with open(README) as fh:
        return re.findall(rf"{re.escape(marker)}```{language}\n(.*?)```", fh.read(), re.S)


def test_readme_params_yaml_is_valid():
    from fdassim.config import parse

    blocks = [b for b in _blocks("yaml") if b.startswith("model:")]
    assert blocks, "the README shows a params.yaml"
    for text in blocks:
        settings = parse(yaml.safe_load(text))
        assert settings.make_scheme() is not None


def test_readme_python_snippets_run_as_written(tmp_path):
    """Every block marked `<!-- runs as is: tests/test_readme.py -->` runs as a script on its own
    (the Icepack snippet is the demo's lines verbatim, checked against the demo, which runs)."""
    pytest.importorskip("firedrake", reason="the Firedrake stack is not installed (make install)")
    blocks = _blocks("python", "<!-- runs as is: tests/test_readme.py -->\n")
    assert blocks, "the README shows a complete script"
    env = dict(os.environ)
    env.pop("PETSC_OPTIONS", None)
    for i, code in enumerate(blocks):
        script = tmp_path / f"snippet{i}.py"
        script.write_text(code)
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=600)
        assert proc.returncode == 0, f"README python block {i} failed:\n{code}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr
