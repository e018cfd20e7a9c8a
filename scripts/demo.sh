#!/usr/bin/env bash
# The set-up-and-run command: installs pgdoctor and the lab (etcd, PostgreSQL 15, Patroni),
# starts a real three-member cluster on 127.0.0.11-13, breaks it, and runs `pgdoctor run` on the
# broken node, as an operator would on a failing node.
#
#   bash scripts/demo.sh                      # the stuck initialize key (the default fault)
#   bash scripts/demo.sh pg-hba-replication-missing
#   bash scripts/demo.sh port-in-use.pg       # faults are <problem-id>[.<variant>]
#   bash scripts/demo.sh --list               # every fault the lab can produce
#
# Afterwards: `.venv/bin/pgdoctor lab heal` restores the cluster, `.venv/bin/pgdoctor lab down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
fault="${1:-initialize-key-stuck}"

bash scripts/setup.sh
PGDOCTOR=.venv/bin/pgdoctor
if [ "$fault" = "--list" ]; then
    exec "$PGDOCTOR" lab faults
fi
bash scripts/install-lab.sh

echo "demo: starting a new lab (three members on 127.0.0.11-13)"
"$PGDOCTOR" lab down --purge >/dev/null
"$PGDOCTOR" lab up
echo "demo: breaking it: $fault"
fault_json=$(mktemp)
trap 'rm -f "$fault_json"' EXIT
"$PGDOCTOR" lab break "$fault" --format json > "$fault_json"
node=$(.venv/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["node"])' "$fault_json")
config=$(.venv/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["config"])' "$fault_json")
echo "demo: pgdoctor run -c $config    (on $node)"
echo
set +e
"$PGDOCTOR" run -c "$config"
rc=$?
set -e
echo
echo "demo: pgdoctor exited $rc (0 healthy, 1 warnings, 2 failures, 3 could not run)."
echo "demo: try '$PGDOCTOR run -c $config --format json | jq .diagnoses[0].id',"
echo "demo: then '$PGDOCTOR lab heal' to repair the cluster and '$PGDOCTOR lab down' to stop it."
