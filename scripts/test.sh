#!/usr/bin/env bash
# The whole test suite: the serial tests, then the 2-rank and 3-rank tests under mpiexec.
#   scripts/test.sh [serial|parallel|all] [extra pytest args]
# Exits non-zero when any test fails or when a group ran no test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
. "$ROOT/scripts/env.sh"
PY="$VENV/bin/python"
what="${1:-all}"; [ $# -gt 0 ] && shift

run_group() {  # name, command...
  local name="$1"; shift
  local t0=$SECONDS rc=0
  echo "==> $name: $*"
  "$@" || rc=$?
  # pytest exit 5 means no test was collected: a suite that runs nothing fails
  if [ "$rc" = 5 ]; then echo "!! $name: no test ran" >&2; fi
  echo "    $name finished in $((SECONDS - t0)) s (exit $rc)"
  return "$rc"
}

status=0
if [ "$what" = all ] || [ "$what" = serial ]; then
  run_group serial "$PY" -m pytest -m "not parallel" "$@" || status=1
fi
if [ "$what" = all ] || [ "$what" = parallel ]; then
  # mpi-pytest runs, under mpiexec -n 2, the tests marked parallel(nprocs=2). Spawning
  # mpiexec from inside a serial pytest fails with Debian's OpenMPI, so run them directly.
  run_group parallel mpiexec -n 2 "$PY" -m pytest -m "parallel[2]" -p no:cacheprovider "$@" || status=1
  # uneven 3-way splits of rows (env.sh lets OpenMPI put 3 ranks on fewer cores)
  run_group parallel-3 mpiexec -n 3 "$PY" -m pytest -m "parallel[3]" -p no:cacheprovider "$@" || status=1
fi
exit "$status"
