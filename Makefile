# Two commands set everything up on a machine with Python 3.11+:
#   make run    serve the API on the SQLite default at http://localhost:8000
#   make test   run the test suite (SQLite and PostgreSQL; see README)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/craftdesk serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/mypy

bench: $(STAMP)
	bench/run

clean:
	rm -rf $(VENV) craftdesk.db craftdesk.db-wal craftdesk.db-shm
