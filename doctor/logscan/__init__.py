"""Log analysis: find the playbooks' known messages in Patroni, PostgreSQL and etcd logs.

    sources (files, .gz, stdin, journal)  ->  engine (hyperscan | literal prefilter)
        ->  confirm with re  ->  counted matches + events  ->  facts["logs"]

Patterns live in the playbooks' front matter; ``patterns_from`` collects them.
"""

from __future__ import annotations

from typing import Iterable

from doctor.playbooks import LogPattern, Playbook, load_playbooks


def patterns_from(playbooks: dict[str, Playbook] | None = None) -> list[LogPattern]:
    """Every log pattern of every playbook, in a stable order (playbook id, then file order)."""
    books = playbooks if playbooks is not None else load_playbooks()
    out: list[LogPattern] = []
    for pid in sorted(books):
        out.extend(books[pid].patterns)
    return out


def pattern_ids(patterns: Iterable[LogPattern]) -> list[str]:
    return [p.id for p in patterns]
