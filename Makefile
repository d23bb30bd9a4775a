# README.md's two commands are `scripts/bookingctl plan STACK` (which runs `make install` first)
# and `make check` (every test: lint, the strict type check and all tests side by side, then the
# tests against the real Workers runtime; what .ci/run calls). `make test` is the quick loop: the
# same without the tests marked `slow` (processes, sockets, whole-stack plans) and the runtime.
# Both create ./venv (the virtualenv Pulumi.yaml names) and install the project on first use.
#   make plan STACK=production [FORMAT=json] [POLICY_CONFIG=file]   the plan via make (exit 2 on any failure)

PYTHON ?= python3
VENV   := venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= production
FORMAT ?= table
POLICY_CONFIG ?=

.PHONY: install install-runtime plan test check test-runtime dev lint typecheck all-tests quick slow bench clean

$(STAMP): pyproject.toml requirements.txt
	@echo "installing the project into ./$(VENV) (about half a minute with pip's cache, longer without)" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# pip's own lines (one per package it collects and installs) show the install moving; on stderr,
	@# so a first `make plan FORMAT=json` still prints only JSON on stdout.
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]' >&2
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
all-tests: $(STAMP)
	$(BIN)/pytest -n 3 --dist loadscope

# The quick tier: every test not marked `slow`.
quick: $(STAMP)
	$(BIN)/pytest -n 3 --dist loadscope -m "not runtime and not slow"

# The slow tier alone (processes, sockets, whole-stack plans).
slow: $(STAMP)
	$(BIN)/pytest -n 3 --dist loadscope -m "slow and not runtime"

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
	@$(MAKE) --no-print-directory -j2 typecheck quick

# Everything: lint, the type check beside every test, then the real Workers runtime.
check: lint
	@$(MAKE) --no-print-directory -j2 typecheck all-tests
	@$(MAKE) --no-print-directory test-runtime

bench: $(STAMP)
	$(BIN)/python bench/plan_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info
