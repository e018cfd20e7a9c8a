#!/usr/bin/env bash
# The test command: installs everything the tests need, lints (ruff, mypy), then runs the fast suite and the lab suite.
#
#   bash scripts/test.sh          everything (fast suite, then the real-cluster lab and browser suites)
#   bash scripts/test.sh --fast   only the fast suite (unit + system + fuzz tests, no cluster)
#   bash scripts/test.sh --extended   everything, plus the long lab tests (check_patroni parity, version matrix)
#
# Needs root on Debian bookworm (the lab installs etcd/PostgreSQL/Patroni and runs Patroni as postgres).
set -uo pipefail
cd "$(dirname "$0")/.."
fast_only=0
case "${1:-}" in
    --fast) fast_only=1; shift ;;
    --extended) export PGDOCTOR_EXTENDED=1; shift ;;
esac

bash scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }
PY=.venv/bin/python

suite() {  # suite NAME PATHS... : run pytest; "no tests collected" (exit 5) is a failure too
    local name=$1; shift
    local start rc
    start=$(date +%s)
    "$PY" -m pytest "$@" -q -p no:cacheprovider
    rc=$?
    echo "test: $name suite took $(( $(date +%s) - start )) s (pytest exit $rc)"
    if [ "$rc" = 5 ]; then
        echo "test: the $name suite collected no tests; that is a failure" >&2
        rc=1
    fi
    return "$rc"
}

lint() {  # ruff and mypy over the code, configured in pyproject.toml; any finding fails the run
    local rc_ruff rc_mypy
    .venv/bin/ruff check .; rc_ruff=$?
    .venv/bin/mypy; rc_mypy=$?
    echo "test: lint: ruff exit $rc_ruff, mypy exit $rc_mypy"
    [ "$rc_ruff" = 0 ] && [ "$rc_mypy" = 0 ]
}
lint || { echo "test: lint failed" >&2; exit 1; }

if [ "$fast_only" = 1 ]; then
    suite fast tests/unit tests/system tests/fuzz "$@"
    exit $?
fi

# The version matrix (older Patroni venvs, PostgreSQL 18) only for the extended tests that use it.
lab_opts=()
[ "${PGDOCTOR_EXTENDED:-}" = 1 ] && lab_opts=(--matrix)
bash scripts/install-lab.sh "${lab_opts[@]}" || { echo "test: install-lab.sh failed" >&2; exit 1; }
export PGDOCTOR_REQUIRE_PATRONI=1  # the config corpus must be compared with Patroni's validator, not skipped
bash scripts/install-test-deps.sh || { echo "test: install-test-deps.sh failed" >&2; exit 1; }
# Whatever happens, leave no lab process behind.
trap '"$PY" -m doctor lab down >/dev/null 2>&1 || true' EXIT

# The fast suite first: it must not meet a running lab on the example config's addresses.
suite fast tests/unit tests/system tests/fuzz "$@"
rc_fast=$?
suite lab tests/lab tests/browser "$@"
rc_lab=$?
[ "$rc_fast" != 0 ] && exit "$rc_fast"
exit "$rc_lab"
