# Skiff: Kubernetes in one binary.
#   make run    build Skiff and start `skiff server` (SQLite datastore, one node)
#   make test   install what the tests need, then run every test (fmt, clippy, unit,
#               integration, end to end with the real kubectl and the Python client)
#   make bench  run the benchmark harness; writes docs/benchmarks.md

SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= /var/lib/skiff
PORT ?= 6443
VENV := $(CURDIR)/.venv
export CARGO_TERM_COLOR ?= never
# A CI run builds a clean clone once: incremental caches would only cost disk (gigabytes).
ifdef CI
export CARGO_INCREMENTAL ?= 0
endif

.PHONY: run test bench deps deps-apt deps-python build release lint unit e2e python-e2e clean

run: release
	@echo "Starting skiff server (data in $(DATA_DIR)); when it says ready:"
	@echo "  export KUBECONFIG=$(DATA_DIR)/admin.kubeconfig; kubectl get namespaces"
	./target/release/skiff server --data-dir $(DATA_DIR) --https-listen-port $(PORT)

deps: deps-apt deps-python

# Debian packages the build and tests use. Idempotent: installs only what is missing.
# nginx is the do-nothing HTTPS baseline of the create benchmark, started by the harness and
# its test on loopback ports of their own; RUNLEVEL=1 keeps the package's own service (port
# 80) from being started where no policy-rc.d forbids it.
APT_PACKAGES := ca-certificates curl python3-venv nginx
deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq $$missing; \
	fi
	@command -v kubectl >/dev/null || { echo "kubectl 1.32 is required at /usr/bin/kubectl (part of this machine's image)"; exit 1; }

# The official Kubernetes Python client, in a venv of the project's own.
deps-python:
	@if [ ! -x $(VENV)/bin/python ]; then python3 -m venv $(VENV); fi
	@$(VENV)/bin/python -c 'import kubernetes' 2>/dev/null || $(VENV)/bin/pip install -q 'kubernetes>=32,<38'

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release -p skiff

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --no-fail-fast

# Every end-to-end script in tests/e2e (lib.sh is their shared helper); each prints
# "N passed, M failed" and fails on any failure.
e2e: build
	@rc=0; for t in tests/e2e/*.sh; do \
	  [ "$$t" = tests/e2e/lib.sh ] && continue; \
	  echo "== $$t"; SKIFF_BIN=$(CURDIR)/target/debug/skiff bash $$t || rc=1; \
	done; exit $$rc

python-e2e: build deps-python
	SKIFF_BIN=$(CURDIR)/target/debug/skiff $(VENV)/bin/python tests/e2e/python_client.py

test: deps lint unit e2e python-e2e

bench: deps-apt release
	./target/release/skiff bench --out docs/benchmarks.md

clean:
	$(CARGO) clean
