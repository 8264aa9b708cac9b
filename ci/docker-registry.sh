#!/usr/bin/env bash
# The package-registry settings of a Docker build: taken from the machine that
# builds, handed to the build as ONE BuildKit secret (cosim-registry, a tar.gz),
# used by the RUN steps that install, and never left in the image.
#
#   ci/docker-registry.sh collect FILE SUITE   (builder) write the secret for a
#                                              Debian SUITE image to FILE
#   ci/docker-registry.sh mirror SUITE         (builder) "URI KEYRING" of the
#                                              Debian mirror to take SUITE from
#   ci/docker-registry.sh use CMD [ARGS...]    (inside a RUN step) run CMD with
#                                              the secret's settings, then scrub
#
# What the secret holds (each part only when the builder has it):
#   apt-sources.list  SUITE, SUITE-updates and SUITE-security from the mirrors
#                     this machine's apt sources name (ci/apt-mirror.sh)
#   apt.conf          apt's Acquire:: settings (proxies, Check-Valid-Until...)
#   apt-auth.conf     apt's auth.conf and auth.conf.d (mirror credentials)
#   env               proxy variables and pip's settings (pip config list and
#                     PIP_* variables) as PIP_* variables
#   ca.pem            the CA bundle pip (or Python's ssl) is told to trust
# Settings whose value is a path on the builder (pip find-links, apt CaInfo)
# cannot reach the build and are left out, with a note.
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECRET=/run/secrets/cosim-registry

note() { printf '[docker-registry] %s\n' "$*" >&2; }
die() { printf '[docker-registry] ERROR: %s\n' "$*" >&2; exit 1; }

debian_codename() {
    # This machine's Debian codename; nothing on other systems (an Ubuntu
    # machine's mirror carries no Debian suites).
    (. /etc/os-release 2>/dev/null && [ "${ID:-}" = debian ] && echo "${VERSION_CODENAME:-}") || true
}

mirror() {
    # The mirror this machine names for $1, else, on Debian, the one it names
    # for its own suite with the same ending (bookworm-security for
    # trixie-security): one Debian archive carries every suite.
    local suite="$1" host tail=""
    host="$(debian_codename)"
    case "$suite" in *-*) tail="-${suite#*-}" ;; esac
    "$top/ci/apt-mirror.sh" "$suite" && return
    [ -n "$host" ] && "$top/ci/apt-mirror.sh" "$host$tail"
}

pip_settings() {
    # "key value" lines from pip's own view (config files and PIP_* variables),
    # else from the PIP_* variables alone.
    local line key value
    if python3 -m pip --version >/dev/null 2>&1; then
        python3 -m pip config list 2>/dev/null | while IFS= read -r line; do
            key="${line%%=*}"; key="${key#*.}"; value="${line#*=}"
            case "$value" in \'*\') value="${value:1:${#value}-2}" ;; esac
            printf '%s %s\n' "$key" "$value"
        done
    fi
    env | sed -n 's/^PIP_\([A-Z_]*\)=\(.*\)$/\1 \2/p' | while read -r key value; do
        key="${key,,}"; printf '%s %s\n' "${key//_/-}" "$value"
    done
}

collect() {
    local out="$1" suite="$2" dir uri key sec securi seckey v name ca="" seen=" "
    # Beside FILE, so that whoever cleans FILE's directory cleans this too.
    dir="$(mktemp -d "$(dirname "$out")/cosim-registry.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$dir'" RETURN EXIT

    if uri="$(mirror "$suite")"; then
        read -r uri key <<<"$uri"
        local opt=""
        [ "$key" = "-" ] || opt=" [signed-by=$key]"
        {
            echo "deb$opt $uri $suite main"
            echo "deb$opt $uri $suite-updates main"
            if sec="$(mirror "$suite-security")"; then
                read -r securi seckey <<<"$sec"
                opt=""
                [ "$seckey" = "-" ] || opt=" [signed-by=$seckey]"
                echo "deb$opt $securi $suite-security main"
            fi
        } >"$dir/apt-sources.list"
    else
        note "this machine's apt sources name no Debian mirror: the build uses the base image's own"
    fi

    # apt's transport settings; values that are paths on this machine cannot
    # be used in the build (the CA bundle travels as ca.pem instead).
    apt-config dump 2>/dev/null |
        grep -E '^Acquire::((http|https|ftp|socks)::|Check-Valid-Until |Check-Date |Retries |ForceIPv[46] )' |
        grep -v '"/' >"$dir/apt.conf" || true
    [ -s "$dir/apt.conf" ] || rm -f "$dir/apt.conf"

    local netrc=/etc/apt/auth.conf netrcparts=/etc/apt/auth.conf.d/
    eval "$(apt-config shell netrc Dir::Etc::netrc/f netrcparts Dir::Etc::netrcparts/d 2>/dev/null)"
    cat "$netrc" "$netrcparts"*.conf >"$dir/apt-auth.conf" 2>/dev/null || true
    [ -s "$dir/apt-auth.conf" ] || rm -f "$dir/apt-auth.conf"

    : >"$dir/env"
    for name in http_proxy https_proxy ftp_proxy no_proxy all_proxy HTTP_PROXY HTTPS_PROXY FTP_PROXY NO_PROXY ALL_PROXY; do
        [ -z "${!name:-}" ] || printf 'export %s=%q\n' "$name" "${!name}" >>"$dir/env"
    done
    while read -r name v; do
        case "$seen" in *" $name "*) continue ;; esac
        seen="$seen$name "
        if [ "$name" = cert ]; then ca="$v"; continue; fi
        case "$v" in
            /*) note "pip setting '$name' is a path on this machine ($v): not passed to the build" ;;
            *) name="${name^^}"; printf 'export PIP_%s=%q\n' "${name//-/_}" "$v" >>"$dir/env" ;;
        esac
    done < <(pip_settings)
    [ -s "$dir/env" ] || rm -f "$dir/env"

    for v in "$ca" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}"; do
        if [ -n "$v" ] && [ -f "$v" ]; then cp "$v" "$dir/ca.pem"; break; fi
    done

    tar -czf "$out" -C "$dir" .
    note "settings for the build: $(cd "$dir" && echo *)"
}

use() {
    # Inside a RUN step (as root or not): unpack the secret into a private
    # directory, point apt (APT_CONFIG), pip and Python's ssl at it, run the
    # command, then remove every file the settings or the install left that
    # names a registry: the directory, apt's lists, caches and logs, and the
    # install logs.  All within one RUN, so none of it reaches a layer.
    local dir conf rc=0
    dir="$(mktemp -d /tmp/cosim-registry.XXXXXX)"
    conf="$dir/apt.conf.all"
    : >"$conf"
    if [ -r "$SECRET" ]; then
        tar -xzf "$SECRET" -C "$dir"
        if [ -f "$dir/apt-sources.list" ]; then
            mkdir -p "$dir/parts"
            printf 'Dir::Etc::SourceList "%s";\nDir::Etc::SourceParts "%s/";\n' \
                "$dir/apt-sources.list" "$dir/parts" >>"$conf"
        fi
        [ ! -f "$dir/apt.conf" ] || cat "$dir/apt.conf" >>"$conf"
        [ ! -f "$dir/apt-auth.conf" ] ||
            printf 'Dir::Etc::netrc "%s";\nDir::Etc::netrcparts "%s/";\n' "$dir/apt-auth.conf" "$dir/parts" >>"$conf"
        if [ -f "$dir/ca.pem" ]; then
            printf 'Acquire::https::CAInfo "%s";\n' "$dir/ca.pem" >>"$conf"
            export PIP_CERT="$dir/ca.pem" SSL_CERT_FILE="$dir/ca.pem" REQUESTS_CA_BUNDLE="$dir/ca.pem"
        fi
        # shellcheck disable=SC1091
        [ ! -f "$dir/env" ] || . "$dir/env"
    else
        note "no cosim-registry build secret: using the image's own apt sources and pip's defaults"
        if ! grep -qsE '^[[:space:]]*(deb|URIs:)' /etc/apt/sources.list /etc/apt/sources.list.d/*; then
            note "the image names no apt sources either: apt will find no package" \
                 "(build with ci/docker-check.sh, or pass --secret id=cosim-registry,src=FILE" \
                 "made by ci/docker-registry.sh collect FILE SUITE)"
        fi
    fi
    [ ! -s "$conf" ] || export APT_CONFIG="$conf"
    export PIP_NO_CACHE_DIR=1
    "$@" || rc=$?

    rm -rf "$dir"
    if [ "$(id -u)" = 0 ]; then
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/*
    fi
    rm -f "$top/build/apt.log" "$top/build/pip.log"
    rmdir "$top/build" 2>/dev/null || true
    return "$rc"
}

case "${1:-}" in
    collect) [ $# = 3 ] || die "usage: $0 collect FILE SUITE"; collect "$2" "$3" ;;
    mirror) [ $# = 2 ] || die "usage: $0 mirror SUITE"; mirror "$2" ;;
    use) [ $# -ge 2 ] || die "usage: $0 use CMD [ARGS...]"; shift; use "$@" ;;
    -h|--help) sed -n '2,24p' "$0" ;;
    *) die "unknown command '${1:-}' (collect, mirror, use; try --help)" ;;
esac
