#!/usr/bin/env bash
# One command: install everything, then start Panoptes on its embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/panoptes up "$@"
