"""The ``replication`` report section: the cluster's sync settings as live in the DCS, one row per
member (positions, lag in bytes and seconds, sync state, replay pause, tags, slot) and the verdicts
on writes, failover and ``synchronous_node_count``.

Every figure the terminal table shows is here as a number (bytes as integers, times as seconds),
so scripts read the JSON instead of parsing the table.
"""

from __future__ import annotations

from typing import Any

from doctor.facts import Facts
from doctor.replication import DEFAULT_SLOT_RETAINED_BYTES, model
from doctor.views import view

ROW_KEYS = ("name", "host", "port", "role", "state", "timeline", "in_dcs", "source", "pg_reachable", "pg_error",
            "lsn", "lsn_bytes", "receive_lsn", "receive_lsn_bytes", "replay_lsn", "replay_lsn_bytes", "lsn_source",
            "receive_lag_bytes", "replay_lag_bytes", "failover_lag_bytes", "lag_source", "lag_seconds",
            "lag_seconds_source", "write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds", "walsender_state",
            "sync_state", "sync_priority", "in_sync_key", "streaming", "wal_receiver_status", "wal_receiver_sender",
            "wal_receiver_slot", "replay_paused", "replay_pause_state", "tags", "nofailover", "nosync",
            "failover_priority", "slot", "failover", "sync_candidate", "synchronous_standby_names", "sync_waiters",
            "role_note", "disagree")


@view("replication", commands=("replication",))
def replication_view(facts: Facts) -> dict[str, Any]:
    m = model(facts)
    settings = dict(facts.get("settings") or {})
    return {
        "settings": m["settings"],
        "reference_lsn": m["reference_lsn"],
        "reference_lsn_bytes": m["reference_lsn_bytes"],
        "reference_source": m["reference_source"],
        "members": [{k: r.get(k) for k in ROW_KEYS} for r in m["members"]],
        "writes": m["writes"],
        "failover": m["failover"],
        "synchronous_node_count": m["synchronous_node_count"],
        "thresholds": {"maximum_lag_on_failover": m["settings"]["maximum_lag_on_failover"],
                       "max_lag_bytes": settings.get("max_lag_bytes"),
                       "max_lag_seconds": settings.get("max_lag_seconds"),
                       "slot_retained_bytes": settings.get("slot_retained_bytes", DEFAULT_SLOT_RETAINED_BYTES)},
        "collected_at": facts.get("collected_at"),
    }
