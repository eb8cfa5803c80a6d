# The two commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-12)

export GX_ANALYTICS_ENABLED := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: setup browser java run test bench lint clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: setup
	$(PY) -m pci demo

# headless Chromium for the report's browser test (Debian's package)
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Java 17 for the local Spark session of the Spark tests (Debian's package)
java:
	@command -v java >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

# one worker per core, each taking whole test files (a module's fixtures built once);
# `make test TEST_WORKERS=0` runs the suite in this process alone
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

test: setup browser java
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: setup
	$(PY) -m pci bench --scale medium --runs 3

# SQL style of the dbt models and data tests (.sqlfluff); the profile's
# warehouse in memory, so that linting opens no warehouse file
lint: setup
	PCI_WAREHOUSE=:memory: $(VENV)/bin/sqlfluff lint models tests/dbt

clean:
	rm -rf data target logs .pytest_cache
