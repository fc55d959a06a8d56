# The two commands at the top of the README are `make up` and `make test`.
.PHONY: up down logs run reset switch setup machine venv test lint format bootstrap bench monitoring-up monitoring-down

COMPOSE ?= docker compose
VENV := .venv
PY := $(VENV)/bin/python
# The commit before the speed work: benchmarks/images.py builds its images and
# benchmarks/apicost.py runs its API, in the same run as this checkout's (before and after)
BENCH_BASELINE ?= 7ddd438

up:        ## build and start the whole stack (compose.yml); returns once every service is healthy
	$(COMPOSE) up -d --build --wait
down:      ## stop the whole stack (data/ and artifacts/ stay)
	$(COMPOSE) down
logs:      ## follow the logs of the three services
	$(COMPOSE) logs --follow --tail=50

run: venv  ## the three services from .venv, no Docker (8080, 8081, 8082); Ctrl-C stops them all
	$(PY) scripts/run_local.py
reset:     ## start over: says what it puts aside (data, artifacts, reports), asks, moves it to data/archive/
	$(PY) scripts/reset.py

setup: machine venv  ## everything the tests need, without running them
machine:   ## Debian packages, a Docker engine, the base image (tools/setup-machine.sh)
	bash tools/setup-machine.sh
# pip compiles every module at install: where PYTHONDONTWRITEBYTECODE is set (it is on
# these machines) Python never writes them later, and each of the tests' many processes
# would compile numpy, pandas or Evidently again (a CI run took 18 min of CPU, not 12)
venv:      ## .venv with requirements.lock's versions, the two projects installed editable
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . -e ./webapp
test: setup lint  ## set up the machine and .venv, then ruff and every test
	PY=$(PY) bash tools/run-tests.sh $(PYTEST_ARGS)
lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
format:
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

switch:    ## Docker: move to the data set .env names (DATASET_DIR / DATASET_CSV), the old one's rows, samples, models and reports put aside in data/archive/
	$(COMPOSE) stop serving-api reporting
	$(COMPOSE) run --build --rm --no-deps -v "$(CURDIR)/reporting/workspace:/workspace" -e WORKSPACE_DIR=/workspace serving-api python -m mlstack.bootstrap
	$(COMPOSE) up -d --build --wait

bootstrap: ## build data/ref_data.csv and train the artifacts locally (a changed DATASET_DIR / DATASET_CSV: switches to it)
	$(PY) scripts/bootstrap.py
bench: setup  ## the benchmarks (figures, not tests; wrk and valgrind come with the set-up)
	$(PY) benchmarks/serving.py
	$(PY) benchmarks/apicost.py --baseline $(BENCH_BASELINE) --instructions
	$(PY) benchmarks/metrics.py
	$(PY) benchmarks/reporting.py
	$(PY) benchmarks/gate.py
	$(PY) benchmarks/retraining.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/embeddings.py
	$(PY) benchmarks/images.py --baseline $(BENCH_BASELINE)
monitoring-up:   ## Prometheus :9090 and Grafana :3000, after `make up`
	$(COMPOSE) -f monitoring/docker-compose.yml up -d --build --wait
monitoring-down:
	$(COMPOSE) -f monitoring/docker-compose.yml down
