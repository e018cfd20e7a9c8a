"""The ``verify`` report section: the after-bootstrap checklist in the order a DBA ticks it.

One item per finding of profile ``verify`` (split brain first, as it outranks everything), each
failure or warning with its fix filled with this node's values (the same items preflight builds),
plus the round trip's figures per replica.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doctor.views import view
from doctor.views.preflight import checklist

if TYPE_CHECKING:
    from doctor.pipeline import Report

ORDER = ("cluster.split-brain", "verify.members", "verify.timeline", "verify.lag", "verify.round-trip",
         "verify.rest-api", "autostart.patroni", "verify.etcd")


@view("verify", commands=("verify",), of_report=True)
def verify_view(report: Report) -> dict[str, Any]:
    items = checklist(report.findings, report.playbooks, report.values)
    rank = {c: i for i, c in enumerate(ORDER)}
    items.sort(key=lambda i: rank.get(i["check"], len(ORDER)))
    for i in items:
        i.pop("group", None)
    rt = report.facts.dict_at("roundtrip") or {}
    return {"items": items,
            "expect_members": (report.facts.get("settings") or {}).get("expect_members"),
            "round_trip": {"leader": rt.get("leader"), "marker": rt.get("marker"), "error": rt.get("error"),
                           "timeout_seconds": rt.get("timeout_seconds"),
                           "replicas": {n: {k: r.get(k) for k in ("arrived", "ms", "replay_lsn", "replay_paused")}
                                        for n, r in sorted((rt.get("replicas") or {}).items())},
                           "sync_acks": rt.get("sync_acks") or {}}}
