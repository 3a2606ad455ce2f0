"""The command lines: --version, arguments kept from PETSc, arguments checked."""

import sys

import pytest

from fdassim.cli import main


def test_cli_version(capsys):
    from fdassim import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"fdassim {__version__}"


def test_cli_gives_petsc_only_what_follows_the_separator(monkeypatch, capsys):
    """Firedrake starts PETSc with sys.argv: fdassim's own arguments must not be in it."""
    monkeypatch.setattr(sys, "argv", ["fdassim", "keys", "--", "-log_view", "-ksp_monitor"])
    assert main() == 0
    assert sys.argv == ["fdassim", "-log_view", "-ksp_monitor"]
    assert "| `run.cycles` |" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["fdassim", "keys"])
    assert main() == 0 and sys.argv == ["fdassim"]
