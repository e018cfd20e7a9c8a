"""The member table of ``run``: what ``patronictl list`` shows, built from the DCS keys and
the REST answers collected on this node, so one run on any node shows the whole cluster."""

from __future__ import annotations

from typing import Any

from doctor.facts import Facts
from doctor.members import keys_read, leader_name, lsn_str, merged, primary_view
from doctor.views import view


@view("cluster")
def cluster_view(facts: Facts) -> dict[str, Any] | None:
    if not facts.has("dcs") and not facts.has("patroni_api"):
        return None
    rows = merged(facts)
    init = facts.get("dcs.initialize") if keys_read(facts) else None
    members = []
    for m in rows:
        members.append({
            "name": m["name"], "host": m.get("host"), "port": m.get("port"), "role": m.get("role"),
            "role_note": m.get("role_note"),
            "state": m.get("state"), "timeline": m.get("timeline"),
            "receive_lsn": lsn_str(m.get("receive_lsn")), "replay_lsn": lsn_str(m.get("replay_lsn")),
            "lsn": lsn_str(m.get("lsn")), "lag_bytes": m.get("lag_bytes"),
            "replay_lag_bytes": m.get("replay_lag_bytes"),
            "sync_state": "sync" if m.get("role") == "Sync Standby" else ("leader" if m.get("role") == "Leader" else
                                                                    "async" if m.get("role") == "Replica" else ""),
            "tags": m.get("tags") or {}, "pending_restart": m.get("pending_restart", False),
            "source": m.get("source"), "disagree": m.get("disagree") or [],
            "rest_error": (m.get("rest_error") or {}).get("kind"),
        })
    cfg = facts.get("dcs.config")
    return {
        "scope": facts.get("config.data.scope"),
        "system_identifier": init if init else ("initializing" if init == "" else None),
        "leader": primary_view(facts)["leader"],
        "dcs_leader": leader_name(facts),
        "paused": bool(cfg.get("pause")) if isinstance(cfg, dict) else None,
        "dcs_read": keys_read(facts),
        "dcs_consistency": facts.get("dcs.keys_consistency"),
        "dcs_note": facts.get("dcs.keys_note"),
        "members": members,
    }
