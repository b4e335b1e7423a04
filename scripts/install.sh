#!/usr/bin/env bash
# Idempotent install: a virtualenv in .venv with summit and its dependencies (psycopg included, so
# that `summit up --stage 1+` can reach PostgreSQL); with --test, also what the test suite needs
# (test libraries, Debian's chromium for the browser tests, PostgreSQL and PgBouncer for the
# engine tests); with --bench, also what `summit bench` drives (Debian's wrk and nginx,
# redis-benchmark, pgbench). `summit engines install` installs a stage's engines the same way.
# Safe to run again: each step is skipped when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in "" | --test | --bench) ;; *) echo "usage: $0 [--test | --bench]" >&2; exit 2 ;; esac
PY=${PYTHON:-python3}

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

# apt_install PACKAGE...: install the Debian packages given (the caller lists only missing ones)
apt_install() {
  [ $# -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then
    echo "need Debian packages: $* (run as root, or: sudo apt-get install $*)" >&2
    exit 1
  fi
  say "installing Debian packages: $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

extras="[postgres]"  # always: the driver of stage 1+'s PostgreSQL
[ "$mode" = --test ] && extras="[postgres,test]"
[ "$mode" = --bench ] && extras="[postgres,bench]"
stamp=".venv/.summit-installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing summit$extras into .venv (pip)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".$extras"
  touch "$stamp"
fi

needed=()
if [ "$mode" = --test ]; then
  command -v chromium >/dev/null 2>&1 || needed+=(chromium)
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    needed+=(postgresql postgresql-contrib)
  elif ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then
    needed+=(postgresql-contrib)
  fi
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || needed+=(pgbouncer)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || needed+=(haproxy)
fi
if [ "$mode" = --bench ]; then
  command -v wrk >/dev/null 2>&1 || needed+=(wrk)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || needed+=(nginx)
  command -v redis-benchmark >/dev/null 2>&1 || needed+=(redis-tools)
  ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || needed+=(postgresql-contrib)
  command -v taskset >/dev/null 2>&1 || needed+=(util-linux)
fi
apt_install "${needed[@]+"${needed[@]}"}"
say "ready"
