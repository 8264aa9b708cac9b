#!/usr/bin/env bash
# Install everything on a fresh Debian 12/13 machine, then run the main job:
# Debian's stock arm64 kernel booted as a realm through the KVM-style VMM,
# its attestation token verified, the realm torn down.
#   ci/demo.sh [cosim realm run arguments...]     e.g. ci/demo.sh -- uname -a
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
ci/install.sh
exec .venv/bin/cosim realm run "$@"
