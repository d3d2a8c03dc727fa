# One entry point. `make run` and `make test` work on a fresh clone with only Python,
# make and Debian's package manager: everything else is installed from here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: install run test test-slow test-all lint format type perf check system-deps perf-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# setuptools warns on every editable install about same-named folders (there are none)
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install -q -e '.[dev,perf,dlna]'
	touch $@

install: $(STAMP)

run: install
	$(BIN)/streme serve $(ARGS)

# Debian packages the tests drive as real clients and references (curl, ffprobe, nginx;
# aria2 and transmission as independent BitTorrent seeders, opentracker as a tracker;
# chromium as a real video player, driven by Playwright, playing clips made by ffmpeg;
# iproute2's ip for the network namespace where the DLNA test's multicast stays).
system-deps:
	bash scripts/system-deps.sh curl:curl ffprobe:ffmpeg nginx:nginx-light aria2c:aria2 \
		transmission-daemon:transmission-daemon opentracker:opentracker chromium:chromium \
		strace:strace ip:iproute2

perf-deps: system-deps
	bash scripts/system-deps.sh curl:curl nginx:nginx-light wrk:wrk node:nodejs npm:npm
	test -d perf/.node/node_modules/peerflix || \
		npm install --prefix perf/.node --ignore-scripts --no-audit --no-fund peerflix@0.39

test: install system-deps
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

test-slow: install system-deps
	$(BIN)/python -m pytest -m slow $(ARGS)

test-all: install system-deps
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check streme tests perf
	$(BIN)/ruff format --check streme tests perf

format: install
	$(BIN)/ruff format streme tests perf
	$(BIN)/ruff check --fix streme tests perf

type: install
	$(BIN)/mypy

perf: install perf-deps
	$(BIN)/python -m perf $(ARGS)
	$(BIN)/python -m perf.p2p
	$(BIN)/python -m perf.coldstart
	$(BIN)/python -m perf.player
	$(BIN)/python -m perf.workers
	$(BIN)/python -m perf.prefetch

check: lint type test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
