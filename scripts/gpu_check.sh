#!/usr/bin/env bash
# Device check (issue 16 item 5): metrics, GLS likelihood and one epoch + test of each model
# family, fp32 and mixed precision, as one markdown table in docs/gpu_check.md. Finishes in a few
# minutes on one GPU. CPU smoke run: python scripts/gpu_check.py --device cpu --tiny
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
timeout 480 "$PY" scripts/gpu_check.py --out docs/gpu_check.md "$@"
