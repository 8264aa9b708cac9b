#!/usr/bin/env bash
# Build the Docker image the way a user's CI would and run the whole suite in
# it, offline (--network none), as the image's non-root user.
#
#   ci/docker-check.sh [--tag TAG] [--base IMAGE] [--out DIR] [--network MODE]
#                      [-- ci/test.sh args]
#
#   1. the base image (--base, default debian:trixie): kept when present, else
#      pulled, else created with debootstrap (ci/docker-base.sh)
#   2. this machine's registry settings collected into one BuildKit secret
#      (ci/docker-registry.sh), in a private directory removed on exit
#   3. docker build (BuildKit: `docker buildx`, or a client that has it built
#      in; DOCKER=path picks the client) of TAG (default cca-cosim:latest);
#      its RUN steps use the engine's default network unless --network says
#      otherwise (host: for a proxy that listens on the builder's loopback)
#   4. docker run of the default command (ci/test.sh, the whole suite), or of
#      ci/test.sh with the given arguments
#   5. artifacts in DIR (default build/docker): build.log, results/junit.xml,
#      results/traces/*.jsonl (failed tests' traces), summary.txt (key=value)
# Exits non-zero when any step or any test fails; the container is removed
# on every exit.
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"

log() { printf '[docker-check] %s\n' "$*"; }
die() { printf '[docker-check] ERROR: %s\n' "$*" >&2; exit 1; }

tag=cca-cosim:latest
base=debian:trixie
out="$top/build/docker"
network=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag="${2:?--tag needs a value}"; shift ;;
        --base) base="${2:?--base needs a value}"; shift ;;
        --out) out="${2:?--out needs a directory}"; shift ;;
        --network) network=(--network "${2:?--network needs a mode}"); shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
run_args=()
[ $# = 0 ] || run_args=(ci/test.sh "$@")

# --- a docker client that builds with BuildKit (the build secret needs it) --
build_cmd=()
pick_builder() {
    local c
    for c in ${DOCKER:-} $(type -ap docker | awk '!seen[$0]++'); do
        if "$c" buildx version >/dev/null 2>&1; then
            DOCKER="$c"; build_cmd=("$c" buildx build --load); return 0
        fi
        if DOCKER_BUILDKIT=1 "$c" build --help 2>/dev/null | grep -q -- '--secret'; then
            DOCKER="$c"; build_cmd=(env DOCKER_BUILDKIT=1 "$c" build); return 0
        fi
    done
    return 1
}
command -v docker >/dev/null 2>&1 || [ -n "${DOCKER:-}" ] || die "no docker client on PATH"
pick_builder || die "no docker client here builds with BuildKit (needed for the build secret): install docker buildx"
export DOCKER
"$DOCKER" info >/dev/null 2>&1 || die "the Docker engine does not answer ('$DOCKER info' failed)"

mkdir -p "$out"
rm -rf "$out/results" "$out/summary.txt"
secrets="$(mktemp -d)"
container="cca-cosim-check-$$"
cleanup() {
    "$DOCKER" rm -f "$container" >/dev/null 2>&1 || true
    rm -rf "$secrets"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. base image ---------------------------------------------------------
t0=$SECONDS
ci/docker-base.sh "$base"
t_base=$((SECONDS - t0))
suite="$("$DOCKER" run --rm --network none "$base" sh -c '. /etc/os-release && echo "$VERSION_CODENAME"')" ||
    die "cannot read /etc/os-release of $base"

# --- 2. + 3. registry settings and the build --------------------------------
ci/docker-registry.sh collect "$secrets/registry.tgz" "$suite"
log "building $tag from $base ($suite) with ${build_cmd[*]} (log: $out/build.log)"
t0=$SECONDS
if ! "${build_cmd[@]}" --progress=plain --secret "id=cosim-registry,src=$secrets/registry.tgz" \
        "${network[@]}" --build-arg "BASE=$base" -t "$tag" . >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    die "docker build failed (full log: $out/build.log)"
fi
t_build=$((SECONDS - t0))
rm -rf "$secrets"
# The image this tag named before is now dangling: remove it (and only ours).
"$DOCKER" image prune -f --filter label=cca-cosim.image=1 >/dev/null || true
size="$("$DOCKER" image inspect -f '{{.Size}}' "$tag")"
log "built $tag in ${t_build}s: $(numfmt --to=iec "$size")"

# --- 4. + 5. the suite, offline, and its artifacts --------------------------
log "running the suite in $tag (--network none)"
t0=$SECONDS
rc=0
"$DOCKER" run --name "$container" --network none "$tag" "${run_args[@]}" || rc=$?
t_suite=$((SECONDS - t0))
"$DOCKER" cp "$container:/results/." "$out/results" 2>/dev/null || log "no results to copy out"
{
    echo "image=$tag"
    echo "base=$base"
    echo "image_bytes=$size"
    echo "base_s=$t_base"
    echo "build_s=$t_build"
    echo "suite_s=$t_suite"
    echo "suite_rc=$rc"
} >"$out/summary.txt"
log "base ${t_base}s, build ${t_build}s, suite ${t_suite}s (exit $rc); artifacts in $out/results"
[ "$rc" = 0 ] || die "the suite failed inside the container (exit $rc): see $out/results/junit.xml"
log "ok"
