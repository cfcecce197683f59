# newswatch. `make run` and `make test` are all a fresh machine needs (Python 3.11 + make).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# setuptools tells every editable install "Editable installation ... be careful with folders ..." in a banner:
# information, not a problem, and the first thing a new user would read; keep it out of `make run`
QUIET_BUILD := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: run test lint typecheck bench chaos airflow airflow-home kafka opensearch worker-demo lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" setuptools wheel

$(STAMP_RUN): pyproject.toml constraints.txt | $(BIN)/python
	$(QUIET_BUILD) $(PIP) install -q -c constraints.txt -e .
	touch $@

$(STAMP_TEST): pyproject.toml constraints.txt | $(BIN)/python
	$(QUIET_BUILD) $(PIP) install -q -c constraints.txt -e ".[test,airflow]"
	touch $@ $(STAMP_RUN)

## the main job: the demo on embedded backends (sample newsroom -> ... -> alerts), then how to browse it
run: $(STAMP_RUN)
	$(BIN)/python -m pipeline demo

## install what the tests need and run them
test: $(STAMP_TEST)
	$(BIN)/python -m ruff check pipeline dags tests bench
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

lint: $(STAMP_TEST)
	$(BIN)/python -m ruff check pipeline dags tests bench

typecheck: $(STAMP_TEST)
	$(BIN)/python -m mypy

## benchmarks: ingest speed vs bare trafilatura, tagging throughput, bus and index throughput, polling 10,000 feeds and publication-to-alert latency
bench: $(STAMP_TEST)
	$(BIN)/python -m bench

## failure benchmark: the production shape on real Kafka and OpenSearch with workers, broker, search node and
## alert peers failing mid-stream (about 11 minutes; CHAOS_DURATION, CHAOS_PASSES, CHAOS_COPIES, CHAOS_KILLS size it)
chaos: $(STAMP_TEST)
	$(BIN)/python -m bench chaos

## development engines in the foreground (Java 17+ and Maven; jars from Maven Central on first start; Ctrl-C stops)
## Kafka 4 (KRaft, one node) on 127.0.0.1:$KAFKA_PORT (9092); data and log in var/engines/kafka
kafka: $(STAMP_RUN)
	$(BIN)/python -m pipeline.engines kafka

## OpenSearch 2.19 (one node, plain HTTP) on 127.0.0.1:$OPENSEARCH_PORT (9200); data and log in var/engines/opensearch
opensearch: $(STAMP_RUN)
	$(BIN)/python -m pipeline.engines opensearch

## an AIRFLOW_HOME (var/airflow) where plain `airflow ...` sees the project's DAGs, no examples, UI on 127.0.0.1
airflow-home: $(STAMP_TEST)
	$(BIN)/python docker/airflow_home.py

## Airflow standalone on SQLite with the project's DAGs (UI on http://localhost:8080), after airflow-home
airflow: $(STAMP_TEST)
	bash docker/airflow-standalone.sh

## regenerate constraints.txt from the unpinned requirements
lock:
	rm -rf /tmp/newswatch-lock && $(PYTHON) -m venv /tmp/newswatch-lock
	/tmp/newswatch-lock/bin/pip install -q ".[test,airflow,postgres]"
	/tmp/newswatch-lock/bin/pip freeze --exclude newswatch > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
