# ratchet — the two commands of the quick start, and the checks CI runs.
CARGO ?= cargo

.PHONY: demo test deps lint-code fmt build

deps:
	@./scripts/ensure-deps.sh

build: deps
	$(CARGO) build --release -p ratchet

## Run a multi-step migration on a throwaway PostgreSQL cluster.
demo: deps
	$(CARGO) run --release -q -p ratchet -- demo

## The whole test suite (unit + integration against real PostgreSQL).
test: deps
	$(CARGO) test --workspace --all-targets

## Formatting and clippy, as CI checks them.
lint-code:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
