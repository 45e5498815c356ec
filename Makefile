# Two commands set everything up on a machine with Python 3.11+:
#   make run    serve the API on the SQLite default at http://localhost:8000
#   make test   run the test suite (SQLite and PostgreSQL; see README)
# Both install the pinned, hash-checked versions of requirements.lock (`make lock` refreshes it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The lock resolves for every platform from Python 3.11 on; `make lock LOCK_FLAGS=--upgrade`
# moves every pin to the newest release the pyproject ranges allow.
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock' $(LOCK_FLAGS)

.PHONY: install run test lint smoke lock bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/craftdesk serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/mypy

# Builds the wheel and sdist, installs each in a fresh venv and runs the README's quickstart.
smoke: $(STAMP)
	scripts/wheel_smoke.sh

# requirements-runtime.lock: what the server needs (the Docker image, the wheel smoke test);
# requirements.lock: that plus the dev tools, at the same versions.
lock: $(STAMP)
	$(LOCK) -o requirements-runtime.lock
	$(LOCK) --extra dev -c requirements-runtime.lock -o requirements.lock

bench: $(STAMP)
	bench/run

clean:
	rm -rf $(VENV) build dist craftdesk.db craftdesk.db-wal craftdesk.db-shm

# Node tools that tests/openapi/test_tools.py runs on the OpenAPI document (Spectral, Redocly,
# openapi-typescript, tsc), installed from tools/package-lock.json. Without npm, those tests
# skip (outside CI). No install script runs: the one there (@scarf/scarf) is telemetry.
# Refresh the lock with `npm install --prefix tools --ignore-scripts <package>@<version>`.
TOOLS_STAMP := tools/node_modules/.installed

$(TOOLS_STAMP): tools/package.json tools/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tools --ignore-scripts --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: the OpenAPI tool tests will skip (they need Node.js 20.19+)" >&2; \
	fi

test: $(TOOLS_STAMP)
