# Omnicenter. `make run` starts it, `make test` runs every test. See README.md.
SHELL := /bin/bash
HOST ?= 127.0.0.1
PORT ?= 8000
PYTHON ?=
export UV_PYTHON_DOWNLOADS := never

# uv from PATH, else from the interpreter's site-packages, else installed there with pip.
UV := $(shell if uv --version >/dev/null 2>&1; then echo uv; \
	elif python3 -m uv --version >/dev/null 2>&1; then echo "python3 -m uv"; \
	else python3 -m pip install --quiet uv >&2 && echo "python3 -m uv"; fi)
# PYTHON=3.12 picks another interpreter; pyenv installs are resolved to their full path for uv.
PYTHON_ARG := $(if $(PYTHON),--python $(shell p=$$(pyenv prefix $$(pyenv latest $(PYTHON) 2>/dev/null) 2>/dev/null) && echo $$p/bin/python || echo $(PYTHON)),)
VENV_PY := .venv/bin/python

.PHONY: run test sync lint messages smoke bench clean help

help:
	@echo "make run   - start Omnicenter on $(HOST):$(PORT) (embedded, or production with DATABASE_URL+REDIS_URL)"
	@echo "make test  - lint and the whole test suite (PostgreSQL, Redis, Chromium), plus the SQLite smoke run"

sync:
	$(UV) sync --frozen $(PYTHON_ARG)

messages: sync
	$(VENV_PY) manage.py compilemessages_if_needed

run: sync
	@export PUBLIC_BASE_URL="$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}"; \
	if [ -n "$$DATABASE_URL" ] && [ -n "$$REDIS_URL" ]; then \
		exec $(VENV_PY) manage.py run_production --host $(HOST) --port $(PORT); \
	elif [ -n "$$DATABASE_URL$$REDIS_URL" ]; then \
		echo "Set both DATABASE_URL and REDIS_URL (production mode) or neither (embedded mode)." >&2; exit 2; \
	else \
		exec $(VENV_PY) manage.py run_embedded --host $(HOST) --port $(PORT); \
	fi

lint: sync
	.venv/bin/ruff check .

test: lint messages
	DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: sync
	$(VENV_PY) bench/run_all.py

clean:
	rm -rf var/ .venv/
