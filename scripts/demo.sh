#!/usr/bin/env bash
# The main job on built-in defaults: twin experiments that print RMSE and spread and write a
# store (and a figure) each, in demo-output/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
. "$ROOT/scripts/env.sh"
export PATH="$VENV/bin:$PATH"
mkdir -p demo-output
echo "==> Icepack ice shelf, thickness assimilated by the ETKF (the script way), 2 ranks"
mpiexec -n 2 python demos/icepack_shelf.py --members 12 --cycles 10
fdassim report demo-output/icepack_shelf.h5
echo
echo "==> ICESEE ice-stream twin (Icepack), its first 25 years: 40 members, localized EnKF, 2 ranks"
mpiexec -n 2 python demos/icestream_twin/twin.py --short
echo
echo "==> Firedrake heat model with an unknown source (the YAML way), 2 ranks"
mpiexec -n 2 fdassim run demos/heat_twin.yaml --overwrite
fdassim report demo-output/heat_twin.h5
echo
echo "==> Lorenz-96, ETKF, 2000 cycles (the YAML way)"
fdassim run demos/lorenz96_etkf.yaml --overwrite
fdassim report demo-output/lorenz96_etkf.h5
if command -v octave >/dev/null || command -v matlab >/dev/null; then
  echo
  echo "==> ISSM bridge: the flowline test glacier through 2 MATLAB/Octave servers, ETKF"
  issm-bridge assimilate demos/issm_flowline_twin.yaml --overwrite
  fdassim report demo-output/issm_flowline_twin.h5
fi
