# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint static bench clean-data

run: $(VENV)/.installed-run
	$(PY) manage.py up --port $(PORT) $(ARGS)

test: $(VENV)/.installed-test
	@scripts/ensure-chromium
	@scripts/ensure-deploy-servers
	@scripts/ensure-sip
	@scripts/ensure-cti-client $(PY)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(VENV)/bin/lint-imports

# The console's bundled JsSIP (console/static/console/vendor/jssip.js, committed) from
# frontend/package-lock.json: after changing frontend/, run this and commit the bundle.
static: $(VENV)/.installed-test
	scripts/build-static $(PY)

# Running needs the project alone; the test tools (pytest, Playwright, ruff...) are the test extra.
$(VENV)/.installed-run: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ".[test]"
	touch $@

clean-data:
	rm -rf .rapport
