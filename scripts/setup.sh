#!/usr/bin/env bash
# Install pgdoctor into ./.venv (created with python3) with its test, lint and fast-scan extras.
# Idempotent and quick when already done. Prints the path of the pgdoctor command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${PGDOCTOR_VENV:-.venv}"
# A brand-new Debian has no python3, or one without venv/ensurepip (package python3-venv): as root,
# install them the way scripts/install-lab.sh does; otherwise say what is missing.
if [ ! -x "$VENV/bin/python" ] && ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && [ -z "${PYTHON:-}" ] && command -v apt-get >/dev/null; then
        echo "setup: installing python3 and python3-venv (apt-get)"
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
          && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv; } \
            >/dev/null || { echo "setup: apt-get install python3 python3-venv failed" >&2; exit 1; }
        PY=/usr/bin/python3
    else
        echo "setup: $PY cannot create a venv (install python3 and python3-venv, or set PYTHON)" >&2
        exit 1
    fi
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $($PY --version 2>&1)"
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.pgdoctor-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing pgdoctor and its dependencies into $VENV"
    log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip \
           && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[fast,test,lint]'; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: pip install failed (log above, also in $log)" >&2
        exit 1
    fi
    touch "$stamp"
fi
echo "setup: $(readlink -f "$VENV/bin/pgdoctor") ($("$VENV/bin/pgdoctor" --version))"
