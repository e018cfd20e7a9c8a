"""The timeline view: what happened on this node, in order, read from its logs.

Bootstrap, clone, leader acquired or lost, demotion, promotion, timeline change, rewind,
configuration change, shutdown — each with its time and node, so the operator sees what came
before the failure. Consecutive repeats and retry loops are already counted by the scanner.
"""

from __future__ import annotations

from typing import Any

from doctor.facts import Facts
from doctor.views import view

MAX_SHOWN = 60


@view("events", commands=("run", "analyze", "logs"))
def events(facts: Facts) -> list[dict[str, Any]] | None:
    evs = facts.get("logs.events")
    if not isinstance(evs, list):
        return None
    out = []
    for e in evs[-MAX_SHOWN:]:
        if not isinstance(e, dict):
            continue
        item = {k: e.get(k) for k in ("time", "event", "source", "message", "count", "pattern", "playbook")}
        for key in ("last", "node", "cycle"):
            if e.get(key):
                item[key] = e[key]
        if e.get("groups"):
            item["groups"] = e["groups"]
        out.append(item)
    return out


@view("logs", commands=("run", "analyze"))
def log_sources(facts: Facts) -> dict[str, Any] | None:
    """Which logs were read (or why not): so the operator knows what the diagnosis rests on."""
    logs = facts.get("logs")
    if not isinstance(logs, dict) or "sources" not in logs:
        return None
    return {"engine": logs.get("engine"), "sources": logs.get("sources") or [], "notes": logs.get("notes") or [],
            "found": logs.get("found") or {}, "skipped": logs.get("skipped")}


@view("logs", commands=("logs",))
def log_scan(facts: Facts) -> dict[str, Any] | None:
    """For ``pgdoctor logs``: everything the scan found except the timeline (shown as ``events``) —
    what was read, the engine, notes, and every counted match, benign ones included."""
    logs = facts.get("logs")
    if not isinstance(logs, dict):
        return None
    return {k: v for k, v in logs.items() if k != "events"}
