# pyinfra-wordpress-lb: every target sets itself up (virtualenv, Docker engine).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv engine test test-unit test-integration demo down images settings docs bench bench-mesh status

help:
	@echo "make demo        bring up the split test bed (5 Debian 13 containers) and deploy"
	@echo "make test        unit + composition + integration tests (needs root or Docker)"
	@echo "make test-unit   unit and composition tests only (seconds, no containers)"
	@echo "make down        remove every test-bed container and network"
	@echo "make bench       measure ours beside the tutorial's settings (~27 min)"
	@echo "make bench-mesh  compare the mesh engines (csync2, syncthing; ~13 min)"
	@echo "make status      the demo bed's health: one table, exit 0 well, 1 attention, 2 unreachable"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

venv: $(STAMP)

engine:
	@scripts/ensure-engine

test-unit: $(STAMP)
	$(BIN)/pytest -q --ignore=tests/integration tests

test: $(STAMP) engine
	$(BIN)/pytest -q -ra tests

test-integration: $(STAMP) engine
	$(BIN)/pytest -q -ra tests/integration

images: $(STAMP) engine
	$(BIN)/python -m tests.testbed build

demo: $(STAMP) engine
	$(BIN)/python -m tests.testbed up split --reuse --port 8080
	PWLB_HOSTS=.testbed/split/hosts.toml $(BIN)/pyinfra -y inventory.py deploy.py
	@$(BIN)/python -m tests.testbed url split

down: $(STAMP)
	$(BIN)/python -m tests.testbed down

settings: $(STAMP)
	$(BIN)/python -m pyinfra_wordpress_lb.deploys.settings --write README.md

docs: $(STAMP)
	$(BIN)/python scripts/reference.py --write

bench: $(STAMP) engine
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python -m bench.run

bench-mesh: $(STAMP) engine
	$(BIN)/python -m bench.mesh_engines

# The demo bed unless PWLB_HOSTS names another inventory (never a hosts.toml by surprise).
status: $(STAMP)
	PWLB_HOSTS="$${PWLB_HOSTS:-$(CURDIR)/.testbed/split/hosts.toml}" scripts/status
