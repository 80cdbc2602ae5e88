# Estafette: `make run` starts the whole platform locally, `make test` runs the whole suite.
# Both install what is missing first (virtualenv, Python packages; Kafka jars and PostgreSQL are
# installed by deploy/local/*.sh when they first start).

PYTHON ?= python3
# e.g. make bench BENCH_ARGS="--scales region,national,stress"
BENCH_ARGS ?=
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install run test test-unit test-integration bench infra-up infra-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)
	@echo "installed: $(VENV) with the estafette command"

run: install
	$(VENV)/bin/estafette up

test: install
	$(VENV)/bin/pytest -q tests

test-unit: install
	$(VENV)/bin/pytest -q tests/unit tests/contract

test-integration: install
	$(VENV)/bin/pytest -q tests/integration tests/e2e

bench: install
	$(VENV)/bin/pip install --quiet -e '.[dev,bench]'
	$(VENV)/bin/python bench/matching_bench.py $(BENCH_ARGS)

infra-up: install
	deploy/local/infra.sh up

infra-down:
	deploy/local/infra.sh down

clean: infra-down
	rm -rf .local $(VENV)
