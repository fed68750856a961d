# Two commands: `make run` (the app with the demo, no server needed) and `make test` (the lint checks, then the whole
# suite). `make lint` alone: ruff, its formatting, and the import contracts of pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	HOST=$(HOST) PORT=$(PORT) bash scripts/run.sh

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: lint
	bash scripts/ensure-system-packages.sh
	$(BIN)/pytest --durations=25
	# The service and API suites again on make run's database (SQLite); tests/embedded/ above ran make run itself.
	$(BIN)/pytest --ds=config.settings.test_sqlite -m "not slow and not browser and not postgresql" -p no:cacheprovider

bench: $(VENV)/.installed
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/json_array_bench.py
	$(BIN)/python bench/review_bench.py
	$(BIN)/python bench/bulk_bench.py
	$(BIN)/python bench/stats_bench.py
	$(BIN)/python bench/train_bench.py
	$(BIN)/python bench/tiny_local_bench.py
	$(BIN)/python bench/eval_bench.py
	$(BIN)/python bench/store_bench.py
