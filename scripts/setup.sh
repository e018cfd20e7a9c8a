#!/usr/bin/env bash
# Install pgdoctor into ./.venv (created with python3) with its test, lint and fast-scan extras.
# Idempotent and quick when already done. Prints the path of the pgdoctor command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${PGDOCTOR_VENV:-.venv}"
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
