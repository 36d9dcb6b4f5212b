#!/usr/bin/env bash
# Mutation score of the core math modules (issue 19): bash scripts/mutation_score.sh [MODULE ...]
# Sets up .venv (scripts/setup_env.sh), adds mutmut (the `mutation` extra, with constraints.txt),
# then runs scripts/mutation_score.py, which writes docs/mutation.md. Module names: pyproject.toml,
# [tool.probforecast.mutation.modules]. Runs from a clean clone with ../shared beside it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup_env.sh"
if ! "$repo/.venv/bin/python" -c "import mutmut" 2>/dev/null; then
  "$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$repo/constraints.txt" -e "$repo[dev,mutation]"
fi
cd "$repo"
exec "$repo/.venv/bin/python" scripts/mutation_score.py "$@"
