#!/usr/bin/env bash
# Create the DAPPER 1.8.1 virtual environment used by benchmarks/l96_vs_dapper.py.
#
# DAPPER is kept out of the project's environment (it needs Python >= 3.12 and pulls in
# jupyter): it gets its own venv, outside the work tree, under
#     ${FDASSIM_CACHE:-$HOME/.cache/fdassim}/dapper-venv
# The benchmark then runs it as a subprocess:
#     python benchmarks/l96_vs_dapper.py --dapper-python "$(bash benchmarks/setup_dapper.sh --print)"
#
# The Python 3.12 interpreter is taken from $DAPPER_BASE_PYTHON if set, else from pyenv
# (PYENV_VERSION=3.12.1 pyenv which python), else from python3.12 on PATH.
set -euo pipefail

cache="${FDASSIM_CACHE:-$HOME/.cache/fdassim}"
venv="$cache/dapper-venv"
version="1.8.1"

if [[ "${1:-}" == "--print" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

base="${DAPPER_BASE_PYTHON:-}"
if [[ -z "$base" ]] && command -v pyenv >/dev/null 2>&1; then
    base="$(PYENV_VERSION=3.12.1 pyenv which python 2>/dev/null || true)"
fi
if [[ -z "$base" ]] && command -v python3.12 >/dev/null 2>&1; then
    base="$(command -v python3.12)"
fi
if [[ -z "$base" ]]; then
    echo "setup_dapper.sh: no Python 3.12 found; DAPPER $version needs Python >= 3.12." >&2
    echo "Install one (e.g. 'pyenv install 3.12.1') or set DAPPER_BASE_PYTHON=/path/to/python3.12." >&2
    exit 1
fi

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import dapper, sys; sys.exit(dapper.__version__ != '$version')" 2>/dev/null; then
    echo "DAPPER $version already installed in $venv"
else
    mkdir -p "$cache"
    "$base" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "dapper==$version"
    echo "DAPPER $version installed in $venv"
fi
echo "Run the benchmark with: DAPPER_PYTHON=$venv/bin/python python benchmarks/l96_vs_dapper.py"
