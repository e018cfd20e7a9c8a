"""Views of a cluster report: the members side by side, and every member's log events on one timeline.

The member table says, per member, where its facts came from (a bundle, this node, or only its REST
API), what it runs, and what the report found on it; members whose own facts are missing are named, with
what would get them. The timeline merges each member's ``logs.events`` by time, each event naming its
member; events without a time keep their member's order, after the timed ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doctor.facts import Facts
from doctor.model.fleet import parse_time, snapshots
from doctor.views import view
from doctor.views.events import events

if TYPE_CHECKING:
    from doctor.pipeline import Report

MAX_EVENTS = 200
COMMANDS = ("cluster",)


@view("members", commands=COMMANDS, of_report=True)
def members(report: Report) -> dict[str, Any]:
    rows = []
    for s in snapshots(report.facts):
        mine = [f for f in report.findings if f.member == s.name]
        problems = sorted({d.id for d in report.diagnoses if d.member and s.name in d.member.split(", ")})
        rows.append({
            "name": s.name, "host": s.host, "facts": "own" if s.local else "REST API only",
            "from": s.source.get("bundle") or s.source.get("via"),
            "collected_at": s.source.get("collected_at") or s.facts.get("collected_at"),
            "role": s.patroni.get("role"), "state": s.patroni.get("state"), **s.versions,
            "fail": sum(1 for f in mine if f.status == "fail"), "warn": sum(1 for f in mine if f.status == "warn"),
            "problems": ", ".join(problems) or "none",
        })
    notes = list(report.facts.get("cluster.notes") or [])
    unseen = [s.name for s in snapshots(report.facts) if not s.local]
    if unseen:
        notes.append(f"only the REST API of {', '.join(unseen)} was read: their config, data directory, processes "
                     "and logs were not seen; contrib/ansible's collect.yml bundles every member and analyzes them "
                     "together")
    return {"members": rows, "notes": notes}


@view("events", commands=COMMANDS)
def timeline(facts: Facts) -> list[dict[str, Any]] | None:
    merged: list[dict[str, Any]] = []
    for s in snapshots(facts):
        for e in events(s.facts) or []:
            merged.append({"member": s.name, **e})
    if not merged:
        return None
    timed = [e for e in merged if parse_time(e.get("time")) is not None]
    untimed = [e for e in merged if parse_time(e.get("time")) is None]
    timed.sort(key=lambda e: (parse_time(e["time"]), e["member"]))
    return (timed + untimed)[-MAX_EVENTS:]
