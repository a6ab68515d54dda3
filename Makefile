# The verbs a maintainer uses. Each target installs what it needs first, so
# on a fresh Debian machine with Python 3.11 `make serve` and `make test`
# are the only two commands (see README).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: help deps deps-python deps-node deps-system serve build pdf links lint test test-only lab bench build-compat clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

# --- set-up ---------------------------------------------------------------

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# The site needs only the runtime packages; the benchmark's linkinator and
# the Node 22 it needs (devDependencies) are installed by `make bench`.
node_modules/.installed: package.json package-lock.json
	npm ci --omit=dev --no-audit --no-fund --loglevel=error
	@touch $@

deps-python: $(VENV)/.installed
deps-node: node_modules/.installed
deps-system: $(VENV)/.installed
	$(PY) scripts/system_deps.py
deps: deps-python deps-node deps-system  ## install everything (venv, npm, Debian packages)

# --- the site -------------------------------------------------------------

serve: deps-python deps-node  ## build and serve at http://127.0.0.1:$(PORT)/, rebuilding on change
	$(PY) scripts/serve.py --port $(PORT)

build: deps-python deps-node  ## build both languages into site/ (without the PDF books)
	$(PY) scripts/build.py

pdf: build deps-system  ## build the site, then print one PDF book per language into site/pdf/
	$(PY) scripts/export_pdf.py site

links: build  ## build the site and check every link and anchor in it
	$(PY) scripts/check_links.py site --docs docs

lint: deps-python  ## content lint and Python lint
	$(PY) scripts/lint_content.py
	$(PY) -m ruff check kvmdocs kvmlab scripts tests
	$(PY) -m ruff format --check kvmdocs kvmlab scripts tests

# The full gate, as CI runs it: one build, the books, links, lint, tests.
test: deps pdf  ## everything CI checks (build once, books, links, lint, pytest)
	$(PY) scripts/check_links.py site --docs docs
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest tests --prebuilt-site site

lab: deps-python  ## walk the traced path against this machine's /dev/kvm
	$(PY) -m kvmlab

bench: deps build  ## benchmarks (not tests): build, link check and PDF timings vs established tools
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed
	$(PY) scripts/bench_build.py
	$(PY) scripts/bench_links.py
	$(PY) scripts/bench_pdf.py

build-compat: deps-python deps-node  ## build with ProperDocs and Zensical and report differences
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-compat.txt
	$(PY) scripts/build_compat.py

clean:  ## remove build output (keeps .venv and node_modules)
	rm -rf site .pytest_cache
