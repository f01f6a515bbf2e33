#!/usr/bin/env bash
# Install Panoptes into ./.venv: Debian packages where the machine lacks them, then the
# Python package with the extras named in $1 (default: none; "dev" for the tests).
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"

need_apt=()
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null || {
    echo "Panoptes needs Python 3.11 (found: $("$PY" --version 2>&1)); set PYTHON=python3.11" >&2
    command -v python3.11 >/dev/null || need_apt+=(python3.11)
    PY=python3.11
}
"$PY" -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3.11-venv)
if ((${#need_apt[@]})); then
    if command -v apt-get >/dev/null; then
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -q
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
    else
        echo "missing: ${need_apt[*]} (install them with your package manager)" >&2
        exit 1
    fi
fi

# What the platform runs beside Python: the demo camera is GStreamer's RTSP server
# (Debian's Python owns its gi bindings; FFmpeg cannot serve RTSP players), and code
# nodes of non-root agents are sandboxed with bubblewrap.
source scripts/apt.sh
apt_install_unless '/usr/bin/python3 -c "import gi; gi.require_version(\"GstRtspServer\", \"1.0\")"' \
    gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-good \
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
apt_install_unless 'command -v bwrap' bubblewrap

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install -q -e "$spec"
echo "installed: $(.venv/bin/panoptes --version) in $(pwd)/.venv"
