"""Capture the cluster facts fixtures (tests/unit/test_cluster_checks.py, test_catalogue.py) from the real lab.

Run as root with the lab installed (it breaks and heals the lab for real)::

    PGDOCTOR_LAB_ADDRS=... PGDOCTOR_LAB_DIR=... python tests/unit/capture_cluster_fixtures.py [NAME ...]

For each fault it collects this node's facts with ``doctor.pipeline.collect`` (no logs, no
``--validate-config``), keeps the domains the cluster checks read, and writes
``tests/unit/fixtures/<NAME>.json``. Facts are redacted as in a bundle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from doctor.collect import CollectOptions
from doctor.lab import cluster, faults
from doctor.lab.layout import Layout
from doctor.pipeline import collect

FIXTURES = Path(__file__).parent / "fixtures"
KEEP = ("version", "collected_at", "config", "dcs", "patroni_api", "postgres", "replication")

# fixture name (<problem-id>[.<variant>], or healthy.<what>) -> (fault to break, node to break, node whose
# config pgdoctor runs on: None = the fault's); the fault is named like the fixture where one produces it
PLAN: dict[str, tuple[str | None, str | None, str | None]] = {
    "healthy.cluster": (None, None, "node1"),
    "dcs-api-mismatch": ("dcs-api-mismatch", None, None),
    "dcs-unreachable": ("dcs-unreachable", None, "node1"),
    "dcs-unreachable.quorum-lost": ("dcs-unreachable.quorum-lost", "node1", None),
    "initialize-key-stuck": ("initialize-key-stuck", "node1", None),
    "replication-auth-failed": ("replication-auth-failed", None, None),
    "pg-hba-replication-missing": ("pg-hba-replication-missing", None, None),
    "timeline-diverged": ("timeline-diverged", None, None),
    "cluster-paused": ("cluster-paused", None, "node1"),
    "rest-api-unreachable": ("rest-api-unreachable", None, "node1"),
    # member states (doctor/lab/faults/members.py); node1 is never the default replica (the highest-named is)
    "member-down": ("member-down", None, "node1"),
    "member-down.start-failed": ("member-down.start-failed", None, "node1"),
    "leader-postgres-down": ("leader-postgres-down", None, None),
    "pending-restart": ("pending-restart", None, "node1"),
    "healthy.scheduled-switchover": ("scheduled-action", None, "node1"),  # an announced plan, not a problem
    "member-count": ("member-count", None, "node1"),
}


def trim(data: dict) -> dict:
    out = {k: data[k] for k in KEEP if k in data}
    system = data.get("system") or {}
    out["system"] = {k: system[k] for k in ("datadir", "pg_user") if k in system}
    out["config"] = {k: v for k, v in (out.get("config") or {}).items() if k in ("path", "data", "exists")}
    return out


def capture(lay: Layout, name: str) -> None:
    fault, node, on = PLAN[name]
    info = faults.break_fault(fault, node=node, lay=lay) if fault else {"config": None}
    try:
        config = str(lay.node(on).config) if on else info["config"]
        facts, _ = collect(CollectOptions(config_path=config, read_logs=False, validate_config=False))
        (FIXTURES / f"{name}.json").write_text(json.dumps(trim(facts.data), indent=1, sort_keys=True) + "\n")
        print(f"wrote {name}.json from {config}")
    finally:
        if fault:
            faults.heal(lay=lay)


def main(names: list[str]) -> None:
    lay = Layout.from_env()
    cluster.up(lay)
    for name in names or list(PLAN):
        capture(lay, name)


if __name__ == "__main__":
    main(sys.argv[1:])
