# The two commands of the README. Each installs what it needs first (idempotent).
.PHONY: run test install install-test bench install-bench

ARGS ?=

run: install            ## serve Summit Photos at http://127.0.0.1:8000 (stage 1, embedded)
	.venv/bin/summit up $(ARGS)

test: install-test      ## the import contract, the whole suite (PostgreSQL and PgBouncer started by its fixtures), then the app's tests again on PostgreSQL
	.venv/bin/lint-imports --no-cache --no-logo
	.venv/bin/python -m pytest -n auto $(ARGS)
	TEST_DATABASE=postgres .venv/bin/python -m pytest -n auto tests/api tests/web $(ARGS)

bench: install-bench     ## benchmark stage 1 (starts it, ~5 min); report in bench/results/
	.venv/bin/summit bench run --start $(ARGS)

install:
	@scripts/install.sh

install-test:
	@scripts/install.sh --test

install-bench:
	@scripts/install.sh --bench
