# The interface people and CI use. Every target works from a fresh clone: it installs first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export BENTOML_HOME ?= $(CURDIR)/var/bentoml
export BENTOML_DO_NOT_TRACK := true
export NML_DISABLE_USAGE_LOGGING := 1
PORT ?= 3000

.PHONY: install test lint train serve build bench bench-logging bench-ingest bench-analysis bench-estimates bench-store bench-all bench-policy bench-candidates bench-scale replay monitor demo demo-flights manifests clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

.tools/.installed: scripts/install-tools.sh
	bash scripts/install-tools.sh
	touch $@

install: $(VENV)/.installed .tools/.installed  ## Python deps (one venv) + helm, kubectl, promtool, wrk, checkov

lint: install  ## ruff (lint + format), mypy, and the architecture's import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install  ## the whole test suite: unit, integration (real servers and tools), e2e
	$(PY) -m pytest -q -p no:cacheprovider --durations=25 tests

train: $(VENV)/.installed  ## train the good model and a worse release into the BentoML store
	$(PY) -m bentos.training.train -r good -r no-key-features

serve: $(VENV)/.installed  ## serve the newest rain_forecast model with `bentoml serve` on PORT
	$(VENV)/bin/bentoml serve . --port $(PORT)

build: $(VENV)/.installed  ## bentoml build (offline)
	$(VENV)/bin/bentoml build .

bench: install train  ## serving benchmark (BentoML vs bare Starlette vs MLServer); figures in bench/results
	$(PY) bench/serve_bench.py

bench-logging: install  ## inference-logging overhead and zero-loss checks (outage, burst, SIGTERM)
	$(PY) bench/logging_bench.py

bench-ingest: install  ## monitor ingest records/s over HTTP, records_frame read speed and memory
	$(PY) bench/ingest_bench.py

bench-analysis: install  ## estimation accuracy on the replay (offline) and analysis scaling 10k/100k/1M
	$(PY) bench/replay_accuracy.py
	$(PY) bench/analysis_scaling.py

bench-estimates: install  ## interval coverage/width, MAE, nowcast per chunk size; estimates by label delay 1/7/30 d (offline; rain at 7 d through predictor + monitor)
	$(PY) bench/estimates_bench.py
	$(PY) -m replay.cli replay --label-delay-hours 168 --step-seconds 0.5 --workdir var/replay_delay7 --out bench/results/replay_label_delay.json
	$(PY) bench/label_delay.py

bench-candidates: install  ## candidate verdicts on the 2013 replay: right? how soon? CPU per chunk (offline)
	$(PY) -m bench.candidates_bench

bench-store: install  ## SQLite vs PostgreSQL: ingest records/s (1/2/4 senders, 2 replicas), cycle at 100k rows
	$(PY) bench/store_backends.py

bench-scale: install  ## many models: N=10/50/200 on SQLite and PostgreSQL (1, 2 replicas); bench/results/scale.json (~1.5 h on 2 cores)
	$(PY) bench/scale_bench.py

bench-all: bench bench-logging bench-ingest bench-analysis bench-estimates bench-policy bench-candidates bench-store  ## every benchmark

bench-policy: install  ## rollbacks per policy over 5 release dates x 4 releases (docs/design.md "Deciding")
	$(PY) -m bench.policy_eval

replay: $(VENV)/.installed  ## replay 2013 H2 through predictor + monitor; figures in bench/results/replay.json
	$(PY) -m replay.cli replay

monitor: $(VENV)/.installed  ## run the monitor on :8080 (state in var/monitor.db; MONITOR_* env to configure)
	MONITOR_DB_PATH=$${MONITOR_DB_PATH:-var/monitor.db} $(PY) -m monitor serve

demo: $(VENV)/.installed  ## the main job: train, build, serve, monitor, replay real traffic, show the verdict
	$(PY) -m replay.cli demo

demo-flights: $(VENV)/.installed  ## bring-your-own-model on all 336,776 flights via the modelguard command; bench/results/flights.json
	$(PY) examples/flights/demo.py --json bench/results/flights.json

manifests: install  ## regenerate the plain k8s/ manifests from the chart
	bash k8s/generate.sh

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
