# yilian — two commands: `make run` (set up + run the pipeline on the simulated region)
# and `make test`. Only Python 3.11+ and make are needed; uv is bootstrapped into .tools/.
PYTHON ?= python3
UV := .tools/bin/uv
DAYS ?= 3
SCALE ?= 0.1
PYTEST_ARGS ?=

.PHONY: setup run test test-quick lint ui bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1"

# --compile-bytecode: every task process imports pandas, pyarrow, duckdb and Airflow; where
# bytecode is not written (PYTHONDONTWRITEBYTECODE, as on our CI machines) each would compile
# them from source again (an `airflow` command 3.6 s → 1.4 s)
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode
	touch $@

setup: .venv/.synced

run: setup
	.venv/bin/yilian run --days $(DAYS) --scale $(SCALE)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: lint
	.venv/bin/pytest $(PYTEST_ARGS)

test-quick: lint
	.venv/bin/pytest -m "not e2e and not slow" $(PYTEST_ARGS)

ui: setup
	.venv/bin/yilian ui

bench: setup
	.venv/bin/yilian bench

clean:
	find data -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .venv .tools
