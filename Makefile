# The two set-up-and-run commands (see README):
#   make demo   set up .venv if needed, then run the main experiment on synthetic data
#   make test   set up .venv if needed, then run the test suite
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= backward-oversmoothing
OUT ?= runs/demo

.PHONY: setup demo test bench clean

$(VENV)/.gnndyn-installed: pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	touch $@

setup: $(VENV)/.gnndyn-installed

demo: setup
	$(BIN)/gnndyn run $(DEMO) --out $(OUT) --overwrite

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/gnndyn bench

clean:
	rm -rf runs .pytest_cache
