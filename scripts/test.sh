#!/usr/bin/env bash
# The test command: installs everything the tests need, then runs the fast suite and the lab suite.
#
#   bash scripts/test.sh          everything (fast suite, real-cluster lab, browser)
#   bash scripts/test.sh --fast   only the fast suite (unit + system tests, seconds)
#
# Needs root on Debian bookworm (the lab installs etcd/PostgreSQL/Patroni and runs Patroni as postgres).
set -uo pipefail
cd "$(dirname "$0")/.."
fast_only=0
[ "${1:-}" = "--fast" ] && { fast_only=1; shift; }

bash scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }
PY=.venv/bin/python

if [ "$fast_only" = 1 ]; then
    "$PY" -m pytest tests/unit tests/system -q "$@"
    rc=$?
else
    bash scripts/install-lab.sh || { echo "test: install-lab.sh failed" >&2; exit 1; }
    if [ -f scripts/install-test-deps.sh ]; then
        bash scripts/install-test-deps.sh || { echo "test: install-test-deps.sh failed" >&2; exit 1; }
    fi
    # Whatever happens, leave no lab process behind.
    trap '"$PY" -m doctor.cli lab down >/dev/null 2>&1 || true' EXIT
    start=$(date +%s)
    "$PY" -m pytest tests -q "$@"
    rc=$?
    echo "test: whole suite took $(( $(date +%s) - start )) s"
fi
if [ "$rc" = 5 ]; then
    echo "test: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$rc"
