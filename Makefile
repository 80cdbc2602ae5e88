# Estafette: `make run` starts the whole platform locally, `make test` runs the whole suite.
# Both install what is missing first (virtualenv, Python packages; Kafka jars and PostgreSQL are
# installed by deploy/local/*.sh when they first start).

PYTHON ?= python3
# e.g. make bench BENCH_ARGS="--scales region,national,stress"
BENCH_ARGS ?=
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

# Translation catalogs (Babel/gettext): services/<service>/locale/<lang>/LC_MESSAGES/messages.po,
# compiled to .mo at install; `pybabel compile --statistics` prints how much of each is translated.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard services/*/locale/*/LC_MESSAGES/messages.po))

.PHONY: install run test test-unit test-integration fault bench bench-regions bench-pipeline infra-up infra-down clean lint-imports i18n-update

# The AsyncAPI viewer that every service's /asyncapi page loads from the service itself (npm
# @asyncapi/react-component, fetched by deploy/local/assets.sh; see estafette/runtime/docs.py).
ASYNCAPI_VIEWER := .local/assets/asyncapi-react/.complete

install: $(STAMP) $(CATALOGS) $(ASYNCAPI_VIEWER)

$(ASYNCAPI_VIEWER): deploy/local/assets.sh
	@deploy/local/assets.sh install && touch -c $@

%.mo: %.po $(STAMP)
	@$(VENV)/bin/pybabel compile --statistics -i $< -o $@

# After changing a translatable text: extract the messages of each service and merge them into its catalogs.
i18n-update: install
	@for d in services/*/locale; do svc=$$(dirname $$d); \
	  $(VENV)/bin/pybabel extract -F babel.cfg --no-location --omit-header -o $$svc/messages.pot $$svc >/dev/null && \
	  $(VENV)/bin/pybabel update --no-fuzzy-matching -i $$svc/messages.pot -d $$d && rm $$svc/messages.pot; done

lint-imports: install
	$(VENV)/bin/lint-imports

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)
	@echo "installed: $(VENV) with the estafette command"

run: install
	$(VENV)/bin/estafette up

test: install
	$(VENV)/bin/pytest -q --durations=25 tests

test-unit: install
	$(VENV)/bin/pytest -q tests/unit tests/contract

test-integration: install
	$(VENV)/bin/pytest -q tests/integration tests/e2e

# The fault suite in its full form (docs/faults.md): crashes and restarts under load, a 60 s Kafka
# outage, 20 SIGTERMs per busy service, Ctrl-C of `make run`; prints its counts.
fault: install
	ESTAFETTE_FAULTS=full ESTAFETTE_OUTAGE_SECONDS=60 $(VENV)/bin/pytest -q -s \
	  tests/integration/test_faults.py tests/integration/test_outage.py tests/integration/test_shutdown.py

bench: install
	$(VENV)/bin/pip install --quiet -e '.[dev,bench]'
	$(VENV)/bin/python bench/matching_bench.py $(BENCH_ARGS)

# Regions: isolation (a region's latencies alone and during another region's burst) and scale-out
# (1, 2, 4 instances of one region); e.g. make bench-regions BENCH_ARGS=--quick
bench-regions: install
	$(VENV)/bin/python bench/regions_bench.py $(BENCH_ARGS)

# Ingress (issue 13): raw Kafka baseline, sign-ups/s and latency at 16, 64, 256 clients, consumer lag,
# CPU per sign-up per process; e.g. make bench-pipeline BENCH_ARGS=--quick
bench-pipeline: install
	$(VENV)/bin/python bench/pipeline_bench.py $(BENCH_ARGS)

# E-mail out (issue 13): raw SMTP baseline, match e-mails (5,000 and 50,000) to the last one in the
# mail sink, the sender alone, CPU per 1,000 e-mails; e.g. make bench-email BENCH_ARGS=--quick
.PHONY: bench-email
bench-email: install
	$(VENV)/bin/python bench/email_bench.py $(BENCH_ARGS)

infra-up: install
	deploy/local/infra.sh up

infra-down:
	deploy/local/infra.sh down

clean: infra-down
	rm -rf .local $(VENV)

# The whole platform in containers, for a machine with Docker and its compose plugin (deploy/compose.yaml;
# not used by make run or make test, which need no Docker). A cluster: deploy/helm/estafette.
.PHONY: compose-up compose-down
compose-up:
	docker compose -f deploy/compose.yaml up --build
compose-down:
	docker compose -f deploy/compose.yaml down
