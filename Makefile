# Signoff — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-dev lint bench clean browser

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Signoff needs Python 3.11 or 3.12"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

## The UI's browser assets (mermaid, from the npm registry — no CDN) and compiled message catalogues.
UI_ASSETS := web/static/vendor/mermaid.min.js
CATALOGS  := $(patsubst %.po,%.mo,$(wildcard web/translations/*/LC_MESSAGES/messages.po))

$(UI_ASSETS): package.json package-lock.json
	@if ! command -v npm >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; fi
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error && mkdir -p $(@D) && \
		cp node_modules/mermaid/dist/mermaid.min.js $@; \
	else echo "npm not found: state diagrams will be shown as text (install Node.js/npm to draw them)"; fi

%.mo: %.po | $(VENV)/.installed
	$(BIN)/pybabel compile -i $< -o $@

## Browser tests drive Debian's Chromium with CJK fonts (installed when missing and running as root).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; fi

install: $(VENV)/.installed $(UI_ASSETS) $(CATALOGS)
install-dev: $(VENV)/.installed-dev $(UI_ASSETS) $(CATALOGS) browser

## Start Signoff on its embedded defaults (SQLite + embedded Redis): web + one worker, with demo data.
run: install
	$(BIN)/python -m web.serve

## Install and run the test suite (TEST_DATABASE_URL / TEST_REDIS_URL select PostgreSQL / Redis).
test: install-dev
	$(BIN)/python -m pytest -q

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance .pytest_cache

## Benchmarks (never part of the tests): PostgreSQL and Redis on this machine.
bench: install-dev
	$(BIN)/python -m bench.deadlines
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.memory
