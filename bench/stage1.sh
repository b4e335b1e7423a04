#!/usr/bin/env bash
# Benchmark stage 1: start it on a free loopback port with fresh temporary data, seed it through
# the API, measure (baselines, raw endpoints, the user mix at stepped rates, demands), stop it.
# Reports land in bench/results/ (git-ignored). About 5 minutes; QUICK=1 for a ~1 minute smoke run.
# Extra arguments go to `summit bench run` (e.g. --rates 50,100,150).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --bench
if [ "${QUICK:-0}" = 1 ]; then
  exec .venv/bin/summit bench run --start --duration 3 --raw-seconds 2 --users 30 --posts 60 \
    --photo-bytes 200000 --refine 0 --probes 2 "$@"
fi
exec .venv/bin/summit bench run --start --duration 8 --raw-seconds 4 "$@"
