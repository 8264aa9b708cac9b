#!/usr/bin/env bash
# Print "URI KEYRING" of the Debian mirror that this machine's own apt sources
# use for suite $1 (e.g. bookworm).  Reads deb822 *.sources files and one-line
# *.list files where apt itself reads them (apt-config: /etc/apt unless
# APT_CONFIG says otherwise, as in the Docker build); prints nothing and exits
# 1 when no source names that suite.
# Sourced by ci/install.sh and images/linux/fetch.sh so that no registry host
# name is ever written into this repository.
set -euo pipefail

suite="${1:?usage: apt-mirror.sh SUITE}"

parse_deb822() {
    # One stanza per blank-line separated block; print URI and Signed-By of the
    # first stanza whose Suites list contains the wanted suite exactly.
    awk -v want="$suite" '
        function flush() {
            if (uri != "" && found) { print uri, (key == "" ? "-" : key); done = 1; exit }
            uri = ""; key = ""; found = 0
        }
        /^[[:space:]]*#/ { next }
        /^[[:space:]]*$/ { flush(); next }
        tolower($1) == "uris:" { uri = $2 }
        tolower($1) == "signed-by:" { key = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) found = 1 }
        tolower($1) == "enabled:" && tolower($2) == "no" { uri = "" }
        END { if (!done) flush() }
    ' "$1"
}

parse_list() {
    # deb [options] URI suite component...
    awk -v want="$suite" '
        /^[[:space:]]*deb[[:space:]]/ {
            key = "-"; i = 2
            if ($2 ~ /^\[/) {
                for (; i <= NF; i++) {
                    if ($i ~ /^\[?signed-by=/) { k = $i; sub(/^\[?signed-by=/, "", k); sub(/\]$/, "", k); key = k }
                    if ($i ~ /\]$/) { i++; break }
                }
            }
            if ($(i + 1) == want) { print $i, key; exit }
        }
    ' "$1"
}

list=/etc/apt/sources.list parts=/etc/apt/sources.list.d/
if command -v apt-config >/dev/null 2>&1; then
    eval "$(apt-config shell list Dir::Etc::sourcelist/f parts Dir::Etc::sourceparts/d)"
fi
for f in "$parts"*.sources; do
    [ -f "$f" ] || continue
    out=$(parse_deb822 "$f")
    if [ -n "$out" ]; then echo "$out"; exit 0; fi
done
for f in "$list" "$parts"*.list; do
    [ -f "$f" ] || continue
    out=$(parse_list "$f")
    if [ -n "$out" ]; then echo "$out"; exit 0; fi
done
exit 1
