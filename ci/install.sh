#!/usr/bin/env bash
# Install everything cca-cosim needs on Debian 12 (bookworm) or 13 (trixie):
# apt packages (QEMU >= 10.0 from Debian, cross toolchain, gdb-multiarch), the
# Python venv in .venv with the package and its test extras, the TCG plugin, the
# firmware images, and the realm guest images (`cosim images fetch`: Debian's
# arm64 kernel and busybox, into ~/.cache/cca-cosim or $COSIM_CACHE).
# Idempotent: every step checks before it acts.
#
#   ci/install.sh              everything
#   ci/install.sh --no-apt     skip the apt step (packages already present)
#   ci/install.sh --no-images  skip fetching the realm guest images
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"

log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

QEMU_MIN_MAJOR=10
do_apt=1
do_images=1
for arg in "$@"; do
    case "$arg" in
        --no-apt) do_apt=0 ;;
        --no-images) do_images=0 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

# --- which Debian ----------------------------------------------------------
[ -r /etc/os-release ] || die "/etc/os-release is missing: this script supports Debian 12 and 13 only"
# shellcheck disable=SC1091
. /etc/os-release
codename="${VERSION_CODENAME:-}"
case "${ID:-}:$codename" in
    debian:bookworm) qemu_suite="bookworm-backports"; libarchive=libarchive13 ;;
    debian:trixie) qemu_suite=""; libarchive=libarchive13t64 ;;   # trixie itself carries QEMU 10.0
    *) die "unsupported system '${PRETTY_NAME:-unknown}': need Debian 12 (bookworm) or 13 (trixie)" ;;
esac
log "system: ${PRETTY_NAME:-$ID $codename}"

APT_PACKAGES=(
    gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
    gcc make                    # the TCG plugin is built for the host
    gdb-multiarch
    python3 python3-venv python3-dev
    device-tree-compiler        # dtc: readable device-tree dumps in error reports
    "$libarchive"               # libarchive-c writes the realm initramfs with it
)
QEMU_PACKAGE=qemu-system-arm    # provides qemu-system-aarch64
APT_LOG="$top/build/apt.log"

qemu_major() {
    command -v qemu-system-aarch64 >/dev/null 2>&1 || { echo 0; return; }
    qemu-system-aarch64 --version | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p'
}

packages_missing() {
    local p missing=()
    for p in "${APT_PACKAGES[@]}" "$QEMU_PACKAGE"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    echo "${missing[@]:-}"
}

apt_run() {
    # apt-get with its chatter in build/apt.log; the tail is shown on failure.
    mkdir -p "$(dirname "$APT_LOG")"
    if ! DEBIAN_FRONTEND=noninteractive apt-get "$@" >>"$APT_LOG" 2>&1; then
        tail -n 25 "$APT_LOG" >&2
        die "apt-get $* failed (full log: $APT_LOG)"
    fi
}

enable_backports() {
    # Add $qemu_suite from the mirror the machine's own sources name for
    # $codename.  Backports suites are NotAutomatic: nothing is taken from
    # them unless asked for with -t, so libc and friends never move.
    local list=/etc/apt/sources.list.d/cca-cosim-backports.sources mirror uri key
    if [ -f "$list" ]; then log "apt: $qemu_suite already enabled ($list)"; return; fi
    mirror="$(ci/apt-mirror.sh "$codename")" || die "no apt source for '$codename' found in /etc/apt: cannot tell which mirror to take $qemu_suite from"
    read -r uri key <<<"$mirror"
    log "apt: enabling $qemu_suite from $uri"
    {
        echo "# Added by cca-cosim ci/install.sh: QEMU >= $QEMU_MIN_MAJOR.0 comes from here."
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: $qemu_suite"
        echo "Components: main"
        [ "$key" = "-" ] || echo "Signed-By: $key"
    } >"$list"
}

install_apt() {
    local missing major
    missing="$(packages_missing)"
    major="$(qemu_major)"
    if [ -z "$missing" ] && [ "${major:-0}" -ge "$QEMU_MIN_MAJOR" ]; then
        log "apt: all packages present, QEMU $major.x"
        return
    fi
    [ "$(id -u)" = 0 ] || die "apt packages missing (${missing:-qemu >= $QEMU_MIN_MAJOR}); run this script as root"
    [ -z "$qemu_suite" ] || enable_backports
    log "apt: apt-get update"
    apt_run update
    if [ -n "$qemu_suite" ]; then
        log "apt: installing $QEMU_PACKAGE from $qemu_suite"
        apt_run install -y --no-install-recommends -t "$qemu_suite" "$QEMU_PACKAGE"
    else
        log "apt: installing $QEMU_PACKAGE"
        apt_run install -y --no-install-recommends "$QEMU_PACKAGE"
    fi
    log "apt: installing ${APT_PACKAGES[*]}"
    apt_run install -y --no-install-recommends "${APT_PACKAGES[@]}"
    major="$(qemu_major)"
    [ "${major:-0}" -ge "$QEMU_MIN_MAJOR" ] || die "QEMU $major.x installed, need >= $QEMU_MIN_MAJOR.0"
    log "apt: $(qemu-system-aarch64 --version | head -1)"
}

install_venv() {
    local py=/usr/bin/python3 stamp=.venv/.cosim-installed want
    [ -x "$py" ] || py="$(command -v python3)" || die "python3 not found"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$py is older than Python 3.11"
    if [ ! -x .venv/bin/python ]; then
        log "venv: creating .venv with $py"
        "$py" -m venv .venv || die "python3 -m venv failed (is python3-venv installed?)"
    fi
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c 'import cosim' 2>/dev/null; then
        log "venv: package up to date"
        return
    fi
    log "venv: installing cosim with test extras (log: build/pip.log)"
    mkdir -p build
    if ! { .venv/bin/python -m pip install --upgrade pip &&
           .venv/bin/python -m pip install -e '.[test]'; } >build/pip.log 2>&1; then
        tail -n 25 build/pip.log >&2
        die "pip install of the cosim package failed (full log: build/pip.log)"
    fi
    echo "$want" >"$stamp"
}

build() {
    log "build: qemu_plugin/"
    make -s -C qemu_plugin PYTHON="$top/.venv/bin/python" || die "building the TCG plugin failed"
    log "build: images/"
    make -s -C images PYTHON="$top/.venv/bin/python" || die "building the firmware images failed"
}

fetch_images() {
    # A cache that already holds the images makes this a one-line no-op (no network).
    log "images: cosim images fetch"
    .venv/bin/cosim images fetch ||
        die "fetching the realm guest images failed (reason above); retry with .venv/bin/cosim images fetch, or skip with --no-images"
}

[ "$do_apt" = 0 ] || install_apt
install_venv
build
[ "$do_images" = 0 ] || fetch_images
log "done"
