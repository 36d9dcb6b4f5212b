#!/usr/bin/env bash
# Create/refresh the project virtual environment in .venv (idempotent, fast when up to date).
# constraints.txt pins torch==2.13.0 (the local CPU wheel here) so nothing pulls CUDA wheels.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-python3}"
stamp="$venv/.probforecast-installed"
want="$(cat "$repo/pyproject.toml" "$repo/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing probforecast[dev,docs] with constraints.txt (torch CPU wheel)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$repo/constraints.txt" torch==2.13.0
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$repo/constraints.txt" -e "$repo[dev,docs]"
  echo "$want" > "$stamp"
fi
