#!/usr/bin/env bash
# Install whatever is missing, then run the whole test suite: lint, unit
# tests (no QEMU) and system tests (real QEMU), slow ones included.
#   ci/test.sh [pytest arguments...]     e.g. ci/test.sh -m "not slow"
# With COSIM_RESULTS=DIR (set in the Docker image), pytest writes its JUnit
# report to DIR/junit.xml and each failed system test its trace to DIR/traces/.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"
ci/install.sh
echo "[test] ruff"
.venv/bin/ruff check cosim tests bench
echo "[test] pytest"
if [ -n "${COSIM_RESULTS:-}" ]; then
    mkdir -p "$COSIM_RESULTS"
    set -- --junitxml="$COSIM_RESULTS/junit.xml" "$@"
fi
if [ "$$" != 1 ]; then
    exec .venv/bin/python -m pytest tests "$@"
fi
# PID 1, as in a container: processes orphaned by the tests (the failure tests
# kill a co-simulator and leave its QEMU to exit) are re-parented to PID 1.
# bash reaps them while it waits; pytest would keep them as zombies that the
# leftover-process check then counts.  Signals reach pytest through bash.
# Job control (set -m) keeps SIGINT live in the background job, which a
# non-interactive shell would otherwise start with SIGINT ignored.
set -m
.venv/bin/python -m pytest tests "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' TERM INT
while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
