# The two commands of the README: `make run` (set up, start the gateway), `make test` (set up, run the tests).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test test-fast lint format bench clean codex

# Codex CLI, for the end-to-end test that runs it against the gateway: pinned, in a folder of the
# project's (never installed globally), from npm's registry.
CODEX_VERSION = 0.171.0
CODEX_DIR = .tools/codex
CODEX_STAMP = $(CODEX_DIR)/.installed-$(CODEX_VERSION)

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.installed $(CODEX_STAMP)
	$(BIN)/python -m pytest -q

$(CODEX_STAMP):
	rm -rf $(CODEX_DIR) && mkdir -p $(CODEX_DIR)
	npm install --prefix $(CODEX_DIR) --no-audit --no-fund --no-save --loglevel=error @openai/codex@$(CODEX_VERSION)
	touch $@

codex: $(CODEX_STAMP)

# The unit tests alone (no real processes, no fuzzing): about 20 seconds.
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "not e2e and not fuzz"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The benchmark (bench/README.md): wrk and Node.js from Debian's packages when missing, then every
# scenario through the gateway and straight at the fake upstream. `make bench BENCH_ARGS=--quick`.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench: $(VENV)/.installed
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	@command -v node >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .tools
