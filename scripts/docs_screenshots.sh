#!/usr/bin/env bash
# Build the docs site and screenshot the landing page and one API page in headless Chromium
# (Debian: apt-get install chromium): docs/figures/site/{landing,api_models}.png.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 "$repo/.venv/bin/mkdocs" build --strict --quiet -f "$repo/mkdocs.yml" --site-dir "$site"
shot() { chromium --headless --no-sandbox --disable-gpu --window-size="$1" --screenshot="$2" "file://$site/$3"; }
shot 1280,900 "$repo/docs/figures/site/landing.png" index.html
shot 1280,1400 "$repo/docs/figures/site/api_models.png" api/models/index.html
