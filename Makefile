PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench bench-quick clean

$(BIN)/runwire: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/runwire
	$(BIN)/runwire serve

# pytest exits 5 when it ran no test: that is a failure here, never a pass. Four worker processes on two cores:
# most tests wait on servers, streams and subprocesses rather than on the CPU. More than four made the suite slower
# on this machine, and its browser tests late.
test: $(BIN)/runwire
	$(BIN)/pytest -q -n 4; status=$$?; if [ $$status -eq 5 ]; then echo "no tests ran" >&2; exit 1; fi; exit $$status

lint: $(BIN)/runwire
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every benchmark (stream, list vs floor, engine, step vs bare DBOS, template, chat, web), each printing its table. Load comes from
# wrk when installed (apt-get install wrk), else from an async httpx client; the output says which.
bench: $(BIN)/runwire
	$(BIN)/python -m bench

# The same harness with small counts and short loads (about a minute), so that it cannot rot.
bench-quick: $(BIN)/runwire
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .runwire
