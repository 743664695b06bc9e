# metricflow developer entry points. `make demo` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The web UI's build output (package data served by the server); rebuilt when ui/ changes.
UI_BUILT := src/metricflow/ui/static/index.html
UI_SRC := $(shell find ui/src -type f 2>/dev/null) $(wildcard ui/*.json ui/*.ts ui/index.html)
PROTOS := $(shell find proto -name '*.proto')

.PHONY: install ui demo test test-unit test-component test-integration proto proto-check lint clean

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q -U pip
	$(VPY) -m pip install -q -e ".[dev,bench]"
	touch $(STAMP)

$(UI_BUILT): $(UI_SRC)
	bash scripts/build_ui.sh

install: $(STAMP) $(UI_BUILT)

# Builds the UI with Node.js and npm (installed from Debian's packages when missing).
ui: $(UI_BUILT)

demo: $(STAMP) $(UI_BUILT)
	$(VPY) examples/run_demo.py

# Each tier runs in TEST_WORKERS pytest-xdist workers (whole files per worker, each worker
# with its own chDB directory and services). The integration tier mostly waits (for
# processes, services, deadlines): 2 workers took it from ~27 to ~15-18.5 min on this 2-core
# machine, the component tier from 203 to 140 s, the unit tier to 18 s. A third worker for
# the integration tier took it from 1,232 to 988 s and 726 s in CI, but at load average 13
# a timing-bound client test (the spool catch-up in drop mode) dropped points in one of
# three runs: INTEGRATION_WORKERS=3 is for a faster machine. 0 runs each tier in one process.
TEST_WORKERS ?= 2
INTEGRATION_WORKERS ?= $(TEST_WORKERS)
xdist = $(if $(filter-out 0,$(1)),-n $(1) --dist loadfile,-p no:xdist)
XDIST := $(call xdist,$(TEST_WORKERS))
XDIST_INTEGRATION := $(call xdist,$(INTEGRATION_WORKERS))

# Installs, warms the local service launchers (Kafka jars, PostgreSQL, moto), runs every test.
# One pytest process per tier: chDB binds a process to the first directory it opens, so the
# component tier's shared chDB and the integration tier's in-process servers cannot share one.
test: $(STAMP) $(UI_BUILT)
	PY=$(VPY) bash scripts/services/prefetch.sh
	$(VPY) -m pytest -q $(XDIST) tests/unit
	$(VPY) -m pytest -q $(XDIST) tests/component
	$(VPY) -m pytest -q $(XDIST_INTEGRATION) tests/integration

# The tiers (CONTRIBUTING.md): unit is pure and runs in seconds; component starts chDB,
# SQLite and argon2 in-process; integration starts real services (prefetched first).
test-unit: $(STAMP)
	$(VPY) -m pytest -q $(XDIST) tests/unit

# Component tests build the wheel and check its package data, which includes the built UI.
test-component: $(STAMP) $(UI_BUILT)
	$(VPY) -m pytest -q $(XDIST) tests/component

test-integration: $(STAMP) $(UI_BUILT)
	PY=$(VPY) bash scripts/services/prefetch.sh
	$(VPY) -m pytest -q $(XDIST_INTEGRATION) tests/integration

# Regenerate committed protobuf code; tests/component/test_proto_fresh.py fails when it is stale.
proto: $(STAMP)
	$(VPY) scripts/gen_proto.py

# ruff; the import contracts of pyproject's [tool.importlinter] (layers, front doors);
# mypy on src/ ([tool.mypy]).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests loadtests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) .pytest_cache metricflow-data
