#!/usr/bin/env bash
# One command: install what the tests need, lint, then run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
# The converters are optional for users but tested here: torch (a CPU build from
# this machine's wheel cache), TensorFlow and the FP16 tools.
bash scripts/install.sh dev,torch,tensorflow,fp16

# Test-only Debian packages (the platform's own come with install.sh): a real
# Mosquitto with the TLS setup Panoptes writes, Debian's chromium for the console's
# browser tests (Playwright cannot download its browsers here), and systemd-analyze to
# check the agent's boot unit.
source scripts/apt.sh
apt_install_unless 'test -x /usr/sbin/mosquitto' mosquitto
apt_install_unless 'command -v chromium' chromium
apt_install_unless 'command -v systemd-analyze' systemd
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
exec .venv/bin/pytest "$@"
