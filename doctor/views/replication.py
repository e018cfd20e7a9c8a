"""The ``replication`` report section: the cluster's sync settings as live in the DCS, one row per
member (positions, lag in bytes and seconds, sync state, replay pause, tags, slot) and the verdicts
on writes, failover and ``synchronous_node_count``.

Every figure the terminal table shows is here as a number (bytes as integers, times as seconds),
so scripts read the JSON instead of parsing the table. A member row's keys are the fields of
:class:`doctor.model.rows.MemberRow`.
"""

from __future__ import annotations

from typing import Any

from doctor.facts import Facts
from doctor.model import model_of
from doctor.model.problems import DEFAULT_SLOT_RETAINED_BYTES
from doctor.views import view


@view("replication", commands=("replication",))
def replication_view(facts: Facts) -> dict[str, Any]:
    model = model_of(facts)
    state = model.replication
    settings = facts.run_settings
    return {
        **state.to_dict(),
        "scheduled": [a.to_dict() for a in model.scheduled_actions],
        "pending_restart": {p.member: p.parameters for p in model.pending_restarts},
        "thresholds": {"maximum_lag_on_failover": state.settings.maximum_lag_on_failover,
                       "max_lag_bytes": settings.get("max_lag_bytes"),
                       "max_lag_seconds": settings.get("max_lag_seconds"),
                       "slot_retained_bytes": settings.get("slot_retained_bytes", DEFAULT_SLOT_RETAINED_BYTES)},
        "collected_at": facts.get("collected_at"),
    }
