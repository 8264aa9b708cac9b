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
#   ci/install.sh --only S,..  only the named steps, in this order: apt, deps
#                              (.venv with the package's dependencies, not the
#                              package), venv, build, images.  The Dockerfile
#                              installs step by step so its layers cache apart.
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"

log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

QEMU_MIN_MAJOR=10
# Steps in the order they run.  "deps" (the package's dependencies alone) is
# part of "venv" and runs only when named with --only.
ALL_STEPS="apt deps venv build images"
steps="apt venv build images"
while [ $# -gt 0 ]; do
    case "$1" in
        --no-apt) steps="${steps/apt /}" ;;
        --no-images) steps="${steps/ images/}" ;;
        --only)
            [ $# -ge 2 ] || die "--only needs a comma-separated list of steps ($ALL_STEPS)"
            steps="${2//,/ }"
            shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
for s in $steps; do
    case " $ALL_STEPS " in *" $s "*) ;; *) die "unknown step '$s' (steps: $ALL_STEPS)" ;; esac
done
want_step() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

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
QEMU_SAME_VERSION=(qemu-system-common qemu-system-data)   # it needs these at its version
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
    # The file goes where apt reads source parts (normally
    # /etc/apt/sources.list.d; a Docker build points apt elsewhere).
    local parts=/etc/apt/sources.list.d/ list mirror uri key
    eval "$(apt-config shell parts Dir::Etc::sourceparts/d)"
    list="${parts}cca-cosim-backports.sources"
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
    # One transaction, with only the QEMU packages taken from $qemu_suite
    # (PKG/SUITE; apt does not carry that choice over to their exact-version
    # dependencies, hence the list).  -t SUITE would raise the whole suite for
    # the transaction: on a fresh Debian 12 it took libbpf1 and then libelf1
    # from backports, which gdb-multiarch's libdw1 from bookworm cannot live with.
    local qemu=("$QEMU_PACKAGE" "${QEMU_SAME_VERSION[@]}")
    [ -z "$qemu_suite" ] || qemu=("${qemu[@]/%//$qemu_suite}")
    log "apt: installing ${qemu[*]} ${APT_PACKAGES[*]}"
    apt_run install -y --no-install-recommends "${qemu[@]}" "${APT_PACKAGES[@]}"
    major="$(qemu_major)"
    [ "${major:-0}" -ge "$QEMU_MIN_MAJOR" ] || die "QEMU $major.x installed, need >= $QEMU_MIN_MAJOR.0"
    log "apt: $(qemu-system-aarch64 --version | head -1)"
}

make_venv() {
    local py=/usr/bin/python3
    [ -x "$py" ] || py="$(command -v python3)" || die "python3 not found"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$py is older than Python 3.11"
    if [ ! -x .venv/bin/python ]; then
        log "venv: creating .venv with $py"
        "$py" -m venv .venv || die "python3 -m venv failed (is python3-venv installed?)"
    fi
}

pip_logged() {
    # pip with its chatter in build/pip.log; the tail is shown on failure.
    mkdir -p build
    if ! .venv/bin/python -m pip "$@" >>build/pip.log 2>&1; then
        tail -n 25 build/pip.log >&2
        die "pip $* failed (full log: build/pip.log)"
    fi
}

install_deps() {
    # The dependencies pyproject.toml lists (with the test extras), without
    # the package: needs pyproject.toml alone, so it caches apart from the code.
    local reqs
    make_venv
    mapfile -t reqs < <(.venv/bin/python -c 'import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["test"]))')
    log "venv: installing the dependencies of pyproject.toml (log: build/pip.log)"
    mkdir -p build && : >build/pip.log
    pip_logged install --upgrade pip
    pip_logged install "${reqs[@]}"
}

install_venv() {
    local stamp=.venv/.cosim-installed want
    make_venv
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c 'import cosim' 2>/dev/null; then
        log "venv: package up to date"
        return
    fi
    log "venv: installing cosim with test extras (log: build/pip.log)"
    mkdir -p build && : >build/pip.log
    pip_logged install --upgrade pip
    pip_logged install -e '.[test]'
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

! want_step apt || install_apt
! want_step deps || install_deps
! want_step venv || install_venv
! want_step build || build
! want_step images || fetch_images
log "done"
