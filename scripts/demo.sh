#!/usr/bin/env bash
# The main job on built-in defaults: twin experiments that print RMSE and spread and write
# a store and a figure each, in demo-output/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
. "$ROOT/scripts/env.sh"
export PATH="$VENV/bin:$PATH"
mkdir -p demo-output
echo "==> Firedrake twin experiment (heat + unknown source), 2 ranks, one member per rank in turn"
mpiexec -n 2 fdassim run demos/heat_twin.yaml
fdassim report demo-output/heat_twin.h5
echo
echo "==> Lorenz-96 twin experiment, ETKF"
fdassim run demos/lorenz96_etkf.yaml
fdassim report demo-output/lorenz96_etkf.h5
