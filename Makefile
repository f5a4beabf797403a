# The README's two commands: `make run` and `make test`. Both set themselves up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench serve migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/align chat

serve: $(VENV)/.installed
	$(BIN)/align serve

migrate: $(VENV)/.installed
	$(BIN)/align migrate

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict bot storage

test: $(VENV)/.installed-dev lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.bench_tally
	$(BIN)/python -m bench.bench_irv
	$(BIN)/python -m bench.bench_votes
	$(BIN)/python -m bench.bench_anonymous
	$(BIN)/python -m bench.bench_digest
	$(BIN)/python -m bench.bench_slack
	$(BIN)/python -m bench.bench_webhooks

clean:
	rm -rf $(VENV) *.egg-info
