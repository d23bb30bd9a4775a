# README.md's two commands are `scripts/bookingctl plan STACK` (which runs `make install` first)
# and `make test` (lint, then the strict type check and every test side by side; what .ci/run
# calls). Both create ./venv (the virtualenv Pulumi.yaml names) and install the project on first use.
#   make plan STACK=production [FORMAT=json] [POLICY_CONFIG=file]   the plan via make (exit 2 on any failure)

PYTHON ?= python3
VENV   := venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= production
FORMAT ?= table
POLICY_CONFIG ?=

.PHONY: install install-runtime plan test test-runtime dev lint typecheck unit bench clean

$(STAMP): pyproject.toml requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# pip byte-compiles site-packages but not an editable project; where PYTHONDONTWRITEBYTECODE
	@# is set (as on our machines) every command would recompile ours: ~60 ms per bookingctl run.
	$(BIN)/python -m compileall -q booking_shared stackconfig infra bookingctl policies ops
	@touch $(STAMP)

install: $(STAMP)

# Not echoed: make prints a recipe line on stdout, which would spoil --format json/sarif output.
plan: $(STAMP)
	@$(BIN)/bookingctl plan $(STACK) --format $(FORMAT) $(if $(POLICY_CONFIG),--policy-config $(POLICY_CONFIG))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/zizmor --offline --min-severity high .github/workflows

# Two worker processes: a cold run spends most of its time in pulumi_cloudflare's typed SDK.
typecheck: $(STAMP)
	$(BIN)/mypy --strict --num-workers 2 booking_shared/ stackconfig/ infra/ bookingctl/ policies/ ops/

# Three test processes on two cores: many integration tests wait on deadlines, sockets and child
# processes rather than compute. `loadscope` keeps a module's shared fixtures in one process.
unit: $(STAMP)
	$(BIN)/pytest -n 3 --dist loadscope

# The real Workers runtime (package.json pins wrangler, which brings workerd and the local D1, and a
# Node new enough for it: wrangler 4.x refuses Node older than 22.12). Not part of `make install`:
# npm ci fetches about 400 MB.
RUNTIME := node_modules/.installed
$(RUNTIME): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(RUNTIME)

install-runtime: $(RUNTIME)

# The tests marked `runtime` (tests/runtime/): bookingctl against the reference Worker under
# `wrangler dev`. One process: each test starts its own workerd, and two cores are enough for one.
test-runtime: $(STAMP) $(RUNTIME)
	$(BIN)/pytest -m runtime tests/runtime

# The reference Worker on http://127.0.0.1:8787 with a local D1 migrated and seeded by bookingctl.
dev: $(STAMP) $(RUNTIME)
	$(BIN)/bookingctl dev

# The type check and the tests run side by side, each printing as it goes: the tests' progress
# streams for minutes while mypy works and prints its one verdict line when it ends (make's
# --output-sync would hold both back until each finished, leaving the terminal silent for minutes).
test: lint
	@$(MAKE) --no-print-directory -j2 typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/plan_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info
