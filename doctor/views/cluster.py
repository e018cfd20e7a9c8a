"""The member table of ``run``: what ``patronictl list`` shows, built from the DCS keys and
the REST answers collected on this node, so one run on any node shows the whole cluster."""

from __future__ import annotations

from typing import Any

from doctor.facts import Facts
from doctor.model import model_of
from doctor.model.lsn import lsn_str
from doctor.views import view

SYNC_STATE_OF_ROLE = {"Sync Standby": "sync", "Leader": "leader", "Replica": "async"}


@view("cluster")
def cluster_view(facts: Facts) -> dict[str, Any] | None:
    if not facts.has("dcs") and not facts.has("patroni_api"):
        return None
    model = model_of(facts)
    init = facts.get("dcs.initialize") if facts.dcs_keys_read else None
    pending = {p.member: [f"{k} {v}" if "→" in v else f"{k} = {v}" for k, v in p.parameters.items()]
               for p in model.pending_restarts}
    members = [{
        "name": m.name, "host": m.host, "port": m.port, "role": m.role, "role_note": m.role_note,
        "state": m.state, "timeline": m.timeline,
        "receive_lsn": lsn_str(m.receive_lsn), "replay_lsn": lsn_str(m.replay_lsn), "lsn": lsn_str(m.lsn),
        "lag_bytes": m.lag_bytes, "replay_lag_bytes": m.replay_lag_bytes,
        "sync_state": SYNC_STATE_OF_ROLE.get(m.role, ""),
        "tags": m.tags, "pending_restart": m.pending_restart or m.name in pending,
        "pending_restart_params": pending.get(m.name, []),
        "scheduled_restart": (m.scheduled_restart or {}).get("schedule"), "patroni_state": m.pg_state,
        "source": m.source, "disagree": list(m.disagree), "rest_error": (m.rest_error or {}).get("kind"),
    } for m in model.members]
    cfg = facts.dcs_config
    return {
        "scope": facts.get("config.data.scope"),
        "system_identifier": init if init else ("initializing" if init == "" else None),
        "leader": model.writable_leader,
        "dcs_leader": model.dcs_leader,
        "paused": bool(cfg.get("pause")) if cfg is not None else None,
        "dcs_read": facts.dcs_keys_read,
        "dcs_consistency": facts.get("dcs.keys_consistency"),
        "dcs_note": facts.get("dcs.keys_note"),
        "members": members,
        "scheduled": [a.to_dict() for a in model.scheduled_actions],
    }
