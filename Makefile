# Two commands for a fresh machine (Python 3.11+):
#   make run   - set up .venv and run Frontier Watch on the embedded default (SQLite, console output)
#   make test  - set up .venv with the dev tools and run lint, type checks and the tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test demo lint typecheck pytest bench clean

$(BIN)/frontierwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/frontierwatch
	$(BIN)/frontierwatch run

demo: $(BIN)/frontierwatch
	$(BIN)/frontierwatch demo

test: lint typecheck pytest

lint: $(BIN)/frontierwatch
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/frontierwatch
	$(BIN)/mypy bot handlers

pytest: $(BIN)/frontierwatch
	$(BIN)/pytest -q -ra

bench: $(BIN)/frontierwatch
	$(BIN)/python bench/poll.py --feeds 1000
	$(BIN)/python bench/classify.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
