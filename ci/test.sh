#!/usr/bin/env bash
# Install whatever is missing, then run the whole test suite: lint, unit
# tests (no QEMU) and system tests (real QEMU), slow ones included.
#   ci/test.sh [pytest arguments...]     e.g. ci/test.sh -m "not slow"
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
ci/install.sh
echo "[test] ruff"
.venv/bin/ruff check cosim tests bench
echo "[test] pytest"
exec .venv/bin/python -m pytest tests "$@"
