"""The ``preflight`` report section: the checklist, in the style of kubeadm's preflight checks.

One item per finding, grouped by area, each failure or warning with its fix filled with this
node's values; what is ignored and where that came from; whether Patroni already runs this
config (a live member), the peers given and the ports checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doctor.views import view

if TYPE_CHECKING:
    from doctor.engine import Finding
    from doctor.facts import Facts
    from doctor.pipeline import Report

GROUPS = (
    ("etcd", ("dcs.", "preflight.etcd-")),
    ("PostgreSQL", ("preflight.pg-", "ports.postgres-outside-patroni", "datadir.postmaster-pid")),
    ("Patroni", ("preflight.patroni-",)),
    ("Config", ("config.", "preflight.config-", "preflight.connect-")),
    ("Data dir", ("datadir.", "preflight.datadir-")),
    ("Ports of this node", ("ports.",)),
    ("Peers", ("preflight.peers",)),
    ("Firewall", ("preflight.firewall",)),
    ("System", ("disk.", "preflight.time-")),
)


def group_of(check_id: str) -> str:
    for name, prefixes in GROUPS:
        if any(check_id.startswith(p) for p in prefixes):
            return name
    return "Other"


def checklist(findings: list[Finding], playbooks: dict[str, Any], node_values: dict[str, Any]) -> list[dict[str, Any]]:
    """One item per finding, grouped, each failure or warning with its own rendered fix."""
    order = {name: i for i, (name, _) in enumerate(GROUPS)}
    items = []
    for f in findings:
        book = playbooks.get(f.playbook or "")
        fix: list[str] = []
        if f.status in ("fail", "warn") and book is not None:
            fix = book.fix_commands({**node_values, **f.values})
        items.append({"group": group_of(f.check), "check": f.check, "title": f.title, "problem": f.playbook,
                      "status": f.status,
                      "summary": f.summary, "subject": f.subject, "ignored": f.ignored,
                      "evidence": list(f.evidence), "fix": fix})
    items.sort(key=lambda i: order.get(i["group"], 99))
    return items


def live_node(facts: Facts) -> dict[str, Any] | None:
    """This node's Patroni, when one already runs this config (preflight on a live member)."""
    from doctor.model.node import NodeView
    from doctor.model.processes import node_patroni
    node = NodeView(facts.get("config.data") or {}, facts.get("config.path"))
    ours = node_patroni(facts, node)
    if not ours:
        return None
    return {"patroni_pids": [p["pid"] for p in ours],
            "postmasters": [p["pid"] for p in facts.get("system.processes.postmasters") or []
                            if p.get("patroni_style_args") and node.data_dir and p.get("data_dir") == node.data_dir]}


@view("preflight", commands=("preflight",), of_report=True)
def preflight_view(report: Report) -> dict[str, Any]:
    facts, sel = report.facts, report.selection
    return {
        "items": checklist(report.findings, report.playbooks, report.values),
        "ignore": sel.ignore,
        "ignore_from_config": sel.ignore_from_config,
        "ignore_unknown_in_config": sel.ignore_unknown_in_config,
        "ignored": sorted({f.playbook or f.check for f in report.findings if f.ignored}),
        "live_node": live_node(facts),
        "peers_given": list(facts.get("preflight.peers_given") or []),
        "etcd_here": bool(facts.get("preflight.etcd_here")),
        "ports": {"postgresql": report.values.get("pg_port"), "restapi": report.values.get("rest_port")},
    }

