# metricflow developer entry points. `make demo` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(shell find proto -name '*.proto')

.PHONY: install demo test test-unit test-integration proto proto-check lint clean

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q -U pip
	$(VPY) -m pip install -q -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VPY) examples/run_demo.py

# Installs, warms the local service launchers (Kafka jars, PostgreSQL, moto), runs every test.
test: $(STAMP)
	PY=$(VPY) bash scripts/services/prefetch.sh
	$(VPY) -m pytest -q tests

test-unit: $(STAMP)
	$(VPY) -m pytest -q tests/unit

test-integration: $(STAMP)
	$(VPY) -m pytest -q tests/integration

# Regenerate committed protobuf code; tests/unit/test_proto_fresh.py fails when it is stale.
proto: $(STAMP)
	$(VPY) scripts/gen_proto.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests loadtests

clean:
	rm -rf $(VENV) .pytest_cache metricflow-data
