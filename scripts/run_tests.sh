#!/usr/bin/env bash
# Set up the environment and run the whole test suite (what CI runs, verbatim).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup_env.sh
export WANDB_MODE=offline WANDB_SILENT=true
# pytest -n 2 runs two workers on the 2 cores: one torch thread each, or small batched linear
# algebra oversubscribes and slows down up to 30x (measured: docs/benchmarks.md).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export PROBFORECAST_CACHE="${PROBFORECAST_CACHE:-$repo/.cache/probforecast}"
.venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"
