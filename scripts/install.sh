#!/usr/bin/env bash
# Idempotent install: a virtualenv in .venv with summit and its dependencies; with --test, also
# what the test suite needs (test libraries and Debian's chromium for the browser tests).
# Safe to run again: each step is skipped when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
PY=${PYTHON:-python3}

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

extras=""
[ $want_test = 1 ] && extras="[test]"
stamp=".venv/.summit-installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing summit$extras into .venv (pip)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".$extras"
  touch "$stamp"
fi

if [ $want_test = 1 ]; then
  apt_needed=()
  command -v chromium >/dev/null 2>&1 || apt_needed+=(chromium)
  if [ ${#apt_needed[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "need Debian packages: ${apt_needed[*]} (run as root, or: sudo apt-get install ${apt_needed[*]})" >&2
      exit 1
    fi
    say "installing Debian packages: ${apt_needed[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
  fi
fi
say "ready"
