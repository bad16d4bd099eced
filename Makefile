# ratchet — the two commands of the quick start, the application recipes, and the checks CI runs.
CARGO ?= cargo

.PHONY: demo test test-matrix deps lint-code fmt build examples

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

## The engine suite on PostgreSQL 14, 15, 16, 17 and 18 (binaries fetched once by
## scripts/pg-versions.sh), with a table version x suite; `make test-matrix PG="14 18"`.
test-matrix: deps
	./scripts/test-matrix.sh $(PG)

## Run the application recipes of docs/integration.md (psycopg 3, asyncpg, psycopg2,
## SQLAlchemy, Django, grants) for real on a throwaway cluster; one PASS/FAIL line each.
examples: build
	RATCHET=$(CURDIR)/target/release/ratchet ./examples/integration/run.sh

## Formatting and clippy, as CI checks them.
lint-code:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
