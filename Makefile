# tabstream: every install step lives here or in scripts/, so a fresh machine needs only `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A CPU build of torch shipped on the machine (if any) is installed first, so pip does not fetch the CUDA one.
TORCH_WHEEL ?= $(firstword $(wildcard /opt/wheels/torch-*.whl))
KAFKA_PORT ?= 9092
export KAFKA_PORT
# The 3-broker cluster of the `cluster` tests: nodes on 127.0.0.1:19700, 19702, 19704
# (controllers on the odd ports after them).
KAFKA_CLUSTER_PORT ?= 19700
export KAFKA_CLUSTER_PORT
# The S3-compatible test server (scripts/s3.sh: S3Proxy from Maven Central) on 127.0.0.1.
S3_PORT ?= 9000
export S3_PORT

.PHONY: venv quickstart test test-cluster test-fast test-repeat bench lint kafka-install kafka-start kafka-stop \
	kafka-cluster-start kafka-cluster-stop s3-install s3-start s3-stop clean browser-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(if $(TORCH_WHEEL),$(PY) -m pip install --quiet "$(TORCH_WHEEL)",)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

quickstart: venv
	$(VENV)/bin/tabstream quickstart

kafka-install:
	scripts/kafka.sh install

# The browser tests drive the system Chromium (Debian package) through Python Playwright, which
# never downloads a browser. Installed only when missing; needs root (or sudo) and apt.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser-deps:
	@test -x $(CHROMIUM) || { \
	  echo "installing chromium (apt) for the browser tests"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core >/dev/null; }

kafka-start: kafka-install
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

kafka-cluster-start: kafka-install
	scripts/kafka.sh cluster-start

kafka-cluster-stop:
	scripts/kafka.sh cluster-stop

s3-install:
	scripts/s3.sh install

s3-start: s3-install
	scripts/s3.sh start

s3-stop:
	scripts/s3.sh stop

# Two phases: everything but the `cluster` tests on one broker (and the S3 server), then the
# `cluster` tests on a 3-broker cluster and the S3 server started for them: the EventLog and
# projection contract suites with replication 3 and min.insync.replicas 2, a partition leader
# killed -9, and the soak (tests/soak). On a fresh clone on 2 cores: 344 s, then 293 s.
# PYTEST_ARGS goes to the first phase, CLUSTER_PYTEST_ARGS to the second.
test: venv kafka-install s3-install browser-deps lint
	scripts/with-kafka.sh scripts/with-s3.sh $(PY) -m pytest -m "not cluster" $(PYTEST_ARGS)
	scripts/with-kafka-cluster.sh scripts/with-s3.sh $(PY) -m pytest -m cluster $(CLUSTER_PYTEST_ARGS)

test-cluster: venv kafka-install s3-install
	scripts/with-kafka-cluster.sh scripts/with-s3.sh $(PY) -m pytest -m cluster $(CLUSTER_PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not kafka and not cluster and not s3 and not slow and not browser" $(PYTEST_ARGS)

# Flake hunt: the unit tests REPEAT times in a row (fresh processes, no cache); stops at the
# first red run. A flaky test is a failing test.
REPEAT ?= 5
test-repeat: venv
	for i in $$(seq $(REPEAT)); do echo "== run $$i of $(REPEAT)"; \
	  $(PY) -m pytest tests/unit -q -p no:cacheprovider -m "not kafka and not cluster" $(PYTEST_ARGS) || exit 1; done

# FLAML (the quality benchmark's baseline) pins xgboost<3: it gets its own venv, so it never
# changes the xgboost tabstream is measured (and tested) with.
FLAML_VENV ?= .venv-flaml
# AutoGluon (a second baseline) pins its own numpy/pandas/xgboost/torch ranges: its own venv too.
AUTOGLUON_VENV ?= .venv-autogluon
bench: venv kafka-install s3-install $(FLAML_VENV)/.installed $(AUTOGLUON_VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	scripts/with-kafka.sh scripts/with-kafka-cluster.sh scripts/with-s3.sh $(PY) -m benchmarks

$(FLAML_VENV)/.installed:
	test -x $(FLAML_VENV)/bin/python || python3 -m venv $(FLAML_VENV)
	$(FLAML_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLAML_VENV)/bin/python -m pip install --quiet 'flaml[automl]>=2.1' 'pyarrow>=15'
	touch $@

# autogluon.tabular 1.6.3 accepts torch >=2.10,<2.14: TORCH_WHEEL goes in first only when its
# version is in that range, else pip takes torch from the index. The extras bring the medium
# preset's models (LightGBM, CatBoost, XGBoost, fastai and AutoGluon's torch net; RF/XT/KNN are
# scikit-learn).
AUTOGLUON_TORCH_WHEEL := $(foreach w,$(TORCH_WHEEL),$(if $(filter torch-2.10.% torch-2.11.% \
	torch-2.12.% torch-2.13.%,$(notdir $(w))),$(w)))
$(AUTOGLUON_VENV)/.installed:
	test -x $(AUTOGLUON_VENV)/bin/python || python3 -m venv $(AUTOGLUON_VENV)
	$(AUTOGLUON_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(if $(AUTOGLUON_TORCH_WHEEL),$(AUTOGLUON_VENV)/bin/python -m pip install --quiet \
	  "$(AUTOGLUON_TORCH_WHEEL)",)
	$(AUTOGLUON_VENV)/bin/python -m pip install --quiet \
	  'autogluon.tabular[lightgbm,catboost,xgboost,fastai]==1.6.3' 'pyarrow>=15'
	touch $@

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(FLAML_VENV) $(AUTOGLUON_VENV) .kafka .s3 build dist src/*.egg-info
