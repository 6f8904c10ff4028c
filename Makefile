# The two commands: `make demo` runs a whole simulated lab, `make test` runs every check.
VENV := .venv

.PHONY: setup demo test lint pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

demo: setup
	$(VENV)/bin/labmeter demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest

# Lint first so that pytest's summary is the last line printed.
test: lint pytest
