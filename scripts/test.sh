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
    # The fast suite first (it must not meet a running lab), then the real-cluster and browser suites.
    "$PY" -m pytest tests/unit tests/system -q "$@"
    rc=$?
    fast=$(date +%s)
    echo "test: fast suite took $(( fast - start )) s"
    "$PY" -m pytest tests/lab tests/browser -q "$@"
    rc2=$?
    echo "test: lab and browser suites took $(( $(date +%s) - fast )) s"
    if [ "$rc" = 0 ] || [ "$rc" = 5 ]; then rc=$rc2; elif [ "$rc2" != 0 ] && [ "$rc2" != 5 ]; then rc=$rc; fi
    [ "$rc2" = 5 ] && rc=5
fi
if [ "$rc" = 5 ]; then
    echo "test: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$rc"
