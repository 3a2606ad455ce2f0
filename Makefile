# fdassim: two commands on a fresh machine, each installing what is missing first.
#   make demo   the main job on built-in defaults
#   make test   the whole suite, serial and on 2 and 3 MPI ranks
# Settings: VENV (default .venv), FDASSIM_CACHE (PETSc and wheel cache, outside the work tree),
# ICEPACK_SOURCE (archive, directory or pip URL). See README.md.

VENV ?= .venv
export VENV := $(abspath $(VENV))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fdassim-installed

.PHONY: install test test-serial test-parallel demo doctor bench clean-venv

$(STAMP): pyproject.toml constraints.txt scripts/install.sh
	scripts/install.sh
	@touch $@

install: $(STAMP)

test: $(STAMP)
	scripts/test.sh

test-serial: $(STAMP)
	scripts/test.sh serial

test-parallel: $(STAMP)
	scripts/test.sh parallel

demo: $(STAMP)
	scripts/demo.sh

doctor: $(STAMP)
	$(VENV)/bin/fdassim doctor

clean-venv:
	rm -rf $(VENV)
