# Prognos: the two commands are `make demo` and `make test`; everything else is set up by them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv services demo test bench services-down clean-state chromium

# The browser tests drive Debian's Chromium (Playwright is pinned to the release built for it).
CHROMIUM := /usr/bin/chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The tooling (ops, simulator, benchmarks, tests) is not in the runtime wheel: put the checkout on the path.
	$(BIN)/python -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "prognos-checkout.pth").write_text(sys.argv[1] + "\n")' '$(CURDIR)'
	touch $(STAMP)

venv: $(STAMP)

# Provision (first time) and start TimescaleDB and Mosquitto, then apply the migrations. Idempotent.
services: $(STAMP)
	$(BIN)/prognos services up
	$(BIN)/prognos migrate

demo: services
	$(BIN)/prognos demo

# Debian's Chromium for the browser tests (tests/browser), installed when missing.
chromium:
	test -x $(CHROMIUM) || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: services chromium
	$(BIN)/python -m pytest

bench: services
	mkdir -p results
	for b in ingest simulator detection nab cmapss backblaze api lead_time mttr sla schedule; do \
		$(BIN)/python -m benchmarks.$$b --quick --json results/$$b.json || exit 1; done

services-down:
	test ! -x $(BIN)/prognos || $(BIN)/prognos services down

# Stops the services and deletes every piece of local state (database, broker data, demo data).
clean-state:
	test ! -x $(BIN)/prognos || $(BIN)/prognos services purge
	rm -rf .prognos
