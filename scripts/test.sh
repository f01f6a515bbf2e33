#!/usr/bin/env bash
# One command: install what the tests need, lint, then run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
# The converters are optional for users but tested here: torch (a CPU build from
# this machine's wheel cache), TensorFlow and the FP16 tools.
bash scripts/install.sh dev,torch,tensorflow,fp16
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
exec .venv/bin/pytest "$@"
