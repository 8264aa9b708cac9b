#!/usr/bin/env bash
# Install everything on a fresh Debian 12/13 machine, then run the main job.
#   ci/demo.sh [cosim demo arguments...]
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
ci/install.sh
exec .venv/bin/cosim demo "$@"
