# Sourced by install.sh and test.sh: Debian packages, installed only when missing.

# apt_install_unless CHECK PACKAGE...: when the shell command CHECK fails, install the
# packages with apt-get (as root, or through sudo). Without apt-get, say what to install.
apt_install_unless() {
    local check="$1"; shift
    if eval "$check" >/dev/null 2>&1; then return 0; fi
    if ! command -v apt-get >/dev/null; then
        echo "missing: $* (install them with your package manager)" >&2
        return 0
    fi
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${_PANOPTES_APT_UPDATED:-}" ]; then
        $sudo apt-get update -q >/dev/null || true
        _PANOPTES_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null \
        || echo "apt-get could not install: $*" >&2
}
