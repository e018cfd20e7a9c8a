"""Log analysis: find the playbooks' known messages in Patroni, PostgreSQL and etcd logs.

    sources (files, .gz, stdin, journal)  ->  engine (hyperscan | literal prefilter)
        ->  confirm with re  ->  counted matches + events  ->  facts["logs"]

Patterns live in the playbooks' front matter; ``patterns_from`` collects them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the playbooks (and Jinja2) load only when patterns are asked for, not with every import
    from doctor.playbooks import LogPattern, Playbook


def patterns_from(playbooks: dict[str, Playbook] | None = None) -> list[LogPattern]:
    """Every log pattern of every playbook, in a stable order (playbook id, then file order)."""
    from doctor.playbooks import load_playbooks

    books = playbooks if playbooks is not None else load_playbooks()
    out: list[LogPattern] = []
    for pid in sorted(books):
        out.extend(books[pid].patterns)
    return out


def mark_ages(matches: list[dict], now: float | None = None) -> None:
    """Give each match ``age_seconds``: how long before ``now`` it was last seen.

    ``now`` is the collection time on a live node; for a log read from elsewhere it defaults to
    the newest time any match was seen, i.e. the end of that log.
    """
    if now is None:
        seen = [m["last_ts"] for m in matches if m.get("last_ts") is not None]
        if not seen:
            return
        now = max(seen)
    for m in matches:
        if m.get("last_ts") is not None:
            m["age_seconds"] = round(max(0.0, now - m["last_ts"]), 1)
