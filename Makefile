# The two commands at the top of the README are `make up` and `make test`.
.PHONY: up down logs test lint format bootstrap bench monitoring-up monitoring-down

up:        ## build and start the whole stack (serving first: it creates serving_prod_net)
	bash tools/stack.sh up
down:      ## stop the whole stack
	bash tools/stack.sh down
logs:      ## follow the logs of the three services
	bash tools/stack.sh logs
test:      ## set up a virtual environment and run every test
	bash tools/test.sh
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
format:
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .
bootstrap: ## build data/ref_data.csv and train the artifacts locally
	.venv/bin/python scripts/bootstrap.py
bench:     ## the serving and reporting benchmarks (figures, not tests; serving needs Debian's wrk)
	.venv/bin/python serving/benchmark.py
	cd reporting && ../.venv/bin/python benchmark.py
monitoring-up:   ## Prometheus :9090 and Grafana :3000, after `make up`
	docker compose -f monitoring/docker-compose.yml up -d --build --wait
monitoring-down:
	docker compose -f monitoring/docker-compose.yml down
