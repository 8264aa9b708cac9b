#!/usr/bin/env bash
# Make sure the Docker base image exists (default debian:trixie, the Dockerfile's
# BASE).  Present: nothing to do.  Else try `docker pull`; when no registry
# answers (as on machines without one), create it locally: debootstrap a
# minimal root file system of that Debian suite from the mirror this machine's
# apt sources name (ci/docker-registry.sh mirror), drop every trace of that
# mirror from it, and `docker import` it under the tag.  Needs root for
# debootstrap, which it installs from Debian when missing.
#
#   ci/docker-base.sh [debian:SUITE]
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"

log() { printf '[docker-base] %s\n' "$*"; }
die() { printf '[docker-base] ERROR: %s\n' "$*" >&2; exit 1; }

tag="${1:-debian:trixie}"
case "$tag" in
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    debian:*) suite="${tag#debian:}" ;;
    *) die "can only create debian:SUITE images, not '$tag'" ;;
esac
DOCKER="${DOCKER:-docker}"
LOG="$top/build/docker-base.log"
PULL_TIMEOUT="${COSIM_PULL_TIMEOUT:-60}"

if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    log "$tag present ($("$DOCKER" image inspect -f '{{.Created}}' "$tag"))"
    exit 0
fi
mkdir -p "$(dirname "$LOG")"
: >"$LOG"
log "$tag missing: trying docker pull (at most ${PULL_TIMEOUT}s)"
if timeout "$PULL_TIMEOUT" "$DOCKER" pull -q "$tag" >>"$LOG" 2>&1; then
    log "pulled $tag"
    exit 0
fi
log "no registry gave $tag: creating it with debootstrap (log: $LOG)"
[ "$(id -u)" = 0 ] || die "creating $tag needs root (debootstrap); run this script as root"

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap ||
      { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap; }
    } >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; die "apt-get install debootstrap failed"; }
fi
[ -e "/usr/share/debootstrap/scripts/$suite" ] || die "this debootstrap does not know suite '$suite'"

mirror="$(ci/docker-registry.sh mirror "$suite")" ||
    die "this machine's apt sources name no Debian mirror for '$suite' (nor, on Debian, for its own suite): cannot debootstrap"
read -r uri keyring <<<"$mirror"
keyopt=()
[ "$keyring" = "-" ] || keyopt=(--keyring="$keyring")

root="$(mktemp -d /var/tmp/cosim-rootfs.XXXXXX)"
cleanup() {
    # debootstrap mounts proc and sys in the target; never delete through them.
    local m
    for m in proc sys dev/pts dev; do
        mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT

start=$SECONDS
log "debootstrap --variant=minbase $suite"
debootstrap --variant=minbase "${keyopt[@]}" "$suite" "$root" "$uri" >>"$LOG" 2>&1 ||
    { tail -n 20 "$LOG" >&2; die "debootstrap of $suite failed (full log: $LOG)"; }

# Nothing of the builder's registry stays in the image: no apt sources (the
# Docker build brings its own as a build secret), no package lists or caches
# (their file names carry the mirror's host), no logs, no resolver file.
rm -f "$root/etc/apt/sources.list" "$root/etc/resolv.conf" "$root/etc/hostname"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* "$root/debootstrap"
mkdir -p "$root/var/lib/apt/lists/partial"

log "docker import as $tag"
tar --numeric-owner --xattrs -C "$root" -c . |
    "$DOCKER" import --change 'CMD ["bash"]' --message "cca-cosim ci/docker-base.sh: debootstrap $suite minbase" - "$tag" \
    >>"$LOG" 2>&1 || { tail -n 5 "$LOG" >&2; die "docker import failed"; }
log "$tag created in $((SECONDS - start))s, $("$DOCKER" image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec) "
