#!/usr/bin/env bash
# One command: install what the tests need, lint, then run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
# The converters are optional for users but tested here: torch (a CPU build from
# this machine's wheel cache), TensorFlow and the FP16 tools.
bash scripts/install.sh dev,torch,tensorflow,fp16

# The RTSP camera tests serve video with Debian's GStreamer RTSP server (FFmpeg
# cannot serve RTSP players). Without apt (or its packages) those tests skip.
if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null \
    && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q gstreamer1.0-rtsp \
        gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-good \
        gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly >/dev/null || true
fi
# Code nodes run sandboxed; the bubblewrap mode (for non-root users) is tested too.
if ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q bubblewrap >/dev/null || true
fi
# The device-link tests start a real Mosquitto with the TLS setup Panoptes writes;
# without it those tests skip.
if ! [ -x /usr/sbin/mosquitto ] && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q mosquitto >/dev/null || true
fi
# The console's browser tests drive Debian's chromium through Playwright (which cannot
# download its own browsers here). Without it those tests skip.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium >/dev/null || true
fi
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
exec .venv/bin/pytest "$@"
