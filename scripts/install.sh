#!/usr/bin/env bash
# Install the pinned Firedrake + Icepack stack and fdassim, from nothing, with caches.
#
#   scripts/install.sh            (what `make install`, `make test` and `make demo` call)
#
# Settings (environment variables):
#   FDASSIM_CACHE   where PETSc and the locally built wheels are cached, outside the work tree
#                   (default: $XDG_CACHE_HOME/fdassim or ~/.cache/fdassim)
#   VENV            the virtual environment to create or update (default: .venv)
#   ICEPACK_SOURCE  Icepack to install: an archive, a directory or a pip URL
#                   (default: the archive named in constraints.txt, else the URL there)
#   PYTHON          the interpreter for the venv (default: python3)
#   FDASSIM_SKIP_APT=1  do not look at system packages (you installed them yourself)
#   FDASSIM_APT_OPTIONAL  optional system packages (default: octave; empty: none)
#
# Every step prints what it does and how long it took; a failed step stops with its name and
# the tail of its log. The PETSc build and the wheels are keyed by versions and configure
# options, so a second install on the same machine (a fresh clone, CI) reuses them.
set -Eeuo pipefail  # -E: the ERR trap also fires inside functions

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONSTRAINTS="$ROOT/constraints.txt"
pin() { sed -n "s/^$1==\(.*\)$/\1/p" "$CONSTRAINTS"; }
meta() { sed -n "s/^# $1: *\(.*\)$/\1/p" "$CONSTRAINTS"; }

PETSC_VERSION="$(pin petsc)"
FIREDRAKE_VERSION="$(pin firedrake)"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
CACHE="${FDASSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdassim}"
MULTIARCH="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
HDF5_DIR="/usr/lib/$MULTIARCH/hdf5/openmpi"
LOGDIR="$CACHE/logs"
mkdir -p "$CACHE" "$LOGDIR"

APT_PACKAGES="bison build-essential cmake flex gfortran git ninja-build pkg-config
 libfftw3-dev libfftw3-mpi-dev libhwloc-dev libhdf5-mpi-dev libmumps-ptscotch-dev libmetis-dev
 libnetcdf-dev libopenblas-dev libopenmpi-dev libpnetcdf-dev libptscotch-dev
 libscalapack-openmpi-dev libsuitesparse-dev libsuperlu-dev libsuperlu-dist-dev openmpi-bin
 python3-dev python3-pip python3-venv"
# GNU Octave stands in for MATLAB in the ISSM bridge tests; it is optional (the fdassim
# container leaves it to the ISSM one with FDASSIM_APT_OPTIONAL="").
APT_OPTIONAL="${FDASSIM_APT_OPTIONAL-octave}"

PETSC_CONFIGURE=(
  --COPTFLAGS=-O3 --CXXOPTFLAGS=-O3 --FOPTFLAGS=-O3
  --with-c2html=0 --with-debugging=0 --with-fortran-bindings=0 --with-shared-libraries=1
  --with-strict-petscerrorcode --with-bison --with-hwloc --with-metis --with-mumps --with-zlib
  --with-suitesparse
  --with-ptscotch-include=/usr/include/scotch
  "--with-ptscotch-lib=-lptesmumps -lptscotchparmetisv3 -lptscotch -lptscotcherr -lesmumps -lscotch -lscotcherr"
  --with-scalapack-lib=-lscalapack-openmpi
  --with-superlu_dist-include=/usr/include/superlu-dist --with-superlu_dist-lib=-lsuperlu_dist
  --with-hdf5-include=/usr/include/hdf5/openmpi
  "--with-hdf5-lib=-L$HDF5_DIR -lhdf5_hl -lhdf5"
)
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
KEY="$(printf '%s\n' "$PETSC_VERSION" "$MULTIARCH" "$(. /etc/os-release && echo "$ID$VERSION_ID")" \
        "${PETSC_CONFIGURE[@]}" | sha256sum | cut -c1-12)"
PETSC_ARCH=arch-fd
PETSC_DIR="$CACHE/petsc-$PETSC_VERSION-$KEY"
WHEELHOUSE="$CACHE/wheels-$PETSC_VERSION-$KEY-py$PYVER"

export PETSC_DIR PETSC_ARCH HDF5_DIR
export HDF5_MPI=ON CC=mpicc CXX=mpicxx OMP_NUM_THREADS=1
export PIP_CONSTRAINT="$CONSTRAINTS" PIP_DISABLE_PIP_VERSION_CHECK=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

STEP="" LOG="" T0=0
begin() { STEP="$1"; LOG="$LOGDIR/$1.log"; T0=$SECONDS; : >"$LOG"; echo "==> $1: $2"; }
end() { echo "    $STEP done in $((SECONDS - T0)) s"; STEP=""; }
skip() { echo "==> $1: cached ($2)"; }
on_error() {
  local rc=$?
  if [ -n "$STEP" ]; then
    echo "!! step '$STEP' failed (exit $rc) after $((SECONDS - T0)) s; last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2 || true
  fi
  exit "$rc"
}
trap on_error ERR
run() { "$@" >>"$LOG" 2>&1; }
START=$SECONDS

# 1. System packages -------------------------------------------------------------------
missing_packages() {
  local p
  for p in $1; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
if [ "${FDASSIM_SKIP_APT:-0}" != 1 ] && command -v dpkg-query >/dev/null; then
  MISSING="$(missing_packages "$APT_PACKAGES") $(missing_packages "$APT_OPTIONAL")"
  MISSING="$(echo $MISSING)"
  if [ -n "$MISSING" ]; then
    begin apt "installing $MISSING"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    run $SUDO apt-get update
    run env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
      $(missing_packages "$APT_PACKAGES")
    OPT="$(missing_packages "$APT_OPTIONAL")"
    if [ -n "$OPT" ]; then
      run env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $OPT \
        || echo "    (optional $OPT not installed: the ISSM bridge tests that need it will skip)"
    fi
    end
  else
    skip apt "all system packages present"
  fi
fi

# 2. PETSc, built once per version and configure options --------------------------------
if [ -f "$PETSC_DIR/.fdassim-complete" ]; then
  skip petsc "$PETSC_DIR"
else
  exec 9>"$CACHE/petsc.lock"; flock 9
  if [ ! -f "$PETSC_DIR/.fdassim-complete" ]; then
    begin petsc-source "fetching PETSc $PETSC_VERSION source from the package registry"
    rm -rf "$PETSC_DIR" "$CACHE/petsc-src"
    run "$PYTHON" -m pip download --no-deps --no-binary petsc -d "$CACHE/petsc-src" "petsc==$PETSC_VERSION"
    mkdir -p "$PETSC_DIR"
    run tar -xzf "$CACHE/petsc-src/petsc-$PETSC_VERSION.tar.gz" -C "$PETSC_DIR" --strip-components=1
    rm -rf "$CACHE/petsc-src"
    end
    begin petsc-configure "configuring PETSc (about 1 min)"
    (cd "$PETSC_DIR" && run ./configure PETSC_ARCH="$PETSC_ARCH" "${PETSC_CONFIGURE[@]}")
    end
    begin petsc-build "building PETSc (about 10 min on 2 cores)"
    (cd "$PETSC_DIR" && run make PETSC_DIR="$PETSC_DIR" PETSC_ARCH="$PETSC_ARCH" MAKE_NP="$(nproc)" all)
    rm -rf "$PETSC_DIR/$PETSC_ARCH/obj"
    touch "$PETSC_DIR/.fdassim-complete"
    end
  fi
  flock -u 9
fi

# 3. The virtual environment -------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  begin venv "creating $VENV"
  run "$PYTHON" -m venv "$VENV"
  run "$VENV/bin/pip" install --upgrade pip setuptools wheel
  end
fi
PIP=("$VENV/bin/python" -m pip)
# a venv made against another PETSc build (another cache, other options) gets its
# PETSc-linked packages reinstalled from this build's wheelhouse
FORCE=()
[ "$(cat "$VENV/.fdassim-petsc" 2>/dev/null)" = "$PETSC_DIR" ] || FORCE=(--force-reinstall)
begin build-tools "installing build tools (cython, numpy, mpi4py, pkgconfig, pybind11)"
run "${PIP[@]}" install cython numpy mpi4py pkgconfig pybind11
end

# 4. Wheels built against this PETSc, kept in a wheelhouse keyed like it -----------------
build_wheel() {  # name spec [extra pip args]
  local name="$1" spec="$2"; shift 2
  if ls "$WHEELHOUSE"/"$name"-*.whl >/dev/null 2>&1; then
    skip "wheel-$name" "$(basename "$(ls "$WHEELHOUSE"/"$name"-*.whl | head -n1)")"
  else
    begin "wheel-$name" "building $spec against the cached PETSc"
    # --no-cache-dir: pip's own wheel cache does not know which PETSc a wheel was built against
    run "${PIP[@]}" wheel --no-cache-dir --no-deps --no-build-isolation "$@" -w "$WHEELHOUSE.tmp" "$spec"
    mkdir -p "$WHEELHOUSE"
    mv "$WHEELHOUSE.tmp"/"$name"-*.whl "$WHEELHOUSE"/
    rm -rf "$WHEELHOUSE.tmp"
    end
  fi
}
mkdir -p "$WHEELHOUSE"
build_wheel petsc4py "petsc4py==$(pin petsc4py)"
begin petsc4py "installing petsc4py"
run "${PIP[@]}" install "${FORCE[@]}" --no-index --no-deps --find-links "$WHEELHOUSE" "petsc4py==$(pin petsc4py)"
end
build_wheel h5py "h5py==$(pin h5py)" --no-binary h5py
begin deps "installing wheels firedrake needs at build time"
# the PETSc-linked wheels only from the keyed wheelhouse (never pip's cache or the index)
run "${PIP[@]}" install "${FORCE[@]}" --no-index --no-deps --find-links "$WHEELHOUSE" "h5py==$(pin h5py)"
run "${PIP[@]}" install libsupermesh firedrake-rtree rtree petsctools
end
build_wheel firedrake "firedrake==$FIREDRAKE_VERSION"

begin firedrake "installing firedrake $FIREDRAKE_VERSION and its pure dependencies"
run "${PIP[@]}" install "${FORCE[@]}" --no-index --no-deps --find-links "$WHEELHOUSE" "firedrake==$FIREDRAKE_VERSION"
run "${PIP[@]}" install "firedrake==$FIREDRAKE_VERSION"  # its pure dependencies; firedrake itself is in place
end

echo "$PETSC_DIR" >"$VENV/.fdassim-petsc"

# 5. Icepack (never from the registry: that name belongs to an unrelated archiver) --------
ICEPACK_COMMIT="$(meta icepack-commit)"
if [ -z "${ICEPACK_SOURCE:-}" ]; then
  # the archive beside the checkout (../shared/third_party), else the copy cached by an
  # earlier install, else the public repository
  ARCHIVE="$(meta icepack-archive)"
  CACHED="$CACHE/$(basename "$ARCHIVE")"
  if [ -f "$ROOT/$ARCHIVE" ]; then
    ICEPACK_SOURCE="$ROOT/$ARCHIVE"
    cmp -s "$ICEPACK_SOURCE" "$CACHED" || cp "$ICEPACK_SOURCE" "$CACHED"
  elif [ -f "$CACHED" ]; then
    ICEPACK_SOURCE="$CACHED"
  else
    ICEPACK_SOURCE="$(meta icepack-url)"
    echo "    no Icepack archive at $ARCHIVE (beside the checkout) nor in $CACHE: cloning it;"
    echo "    without network access, set ICEPACK_SOURCE to an Icepack archive or directory"
  fi
fi
if "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(0 if m.distribution("icepack").read_text("direct_url.json") and m.version("icepack") else 1)' 2>/dev/null \
   && [ -f "$VENV/.icepack-source" ] && [ "$(cat "$VENV/.icepack-source")" = "$ICEPACK_SOURCE" ]; then
  skip icepack "$ICEPACK_SOURCE"
else
  begin icepack "installing Icepack $ICEPACK_COMMIT from $ICEPACK_SOURCE"
  run "${PIP[@]}" install "$ICEPACK_SOURCE"
  echo "$ICEPACK_SOURCE" >"$VENV/.icepack-source"
  end
fi

# 6. fdassim and issm_bridge, editable, with the test extras ------------------------------
begin project "installing fdassim and issm_bridge (editable) with test extras"
run "${PIP[@]}" install -e "$ROOT[test]"
end
begin check "pip check and fdassim doctor"
run "${PIP[@]}" check
"$VENV/bin/fdassim" doctor >>"$LOG" 2>&1 || { cat "$LOG"; false; }
end
echo "==> stack ready in $((SECONDS - START)) s (PETSc and wheels cached in $CACHE)"
