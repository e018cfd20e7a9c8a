"""The replication state of the cluster: its sync settings, one row per member and the three
verdicts (writes, failover, what ``synchronous_node_count`` means here).

Shared by the ``replication`` view and the replication checks through :func:`doctor.model.model_of`,
so the table a DBA reads and the findings that fail a run come from one build.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from doctor.facts import Facts
from doctor.model.health import LeaderPostgres
from doctor.model.lsn import lsn_str
from doctor.model.members import LeaderView, Member, dcs_down
from doctor.model.patroni_rules import ReplicationSettings, read_settings
from doctor.model.rows import MemberRow, build_rows, leader_pg, leader_row, reference_lsn, replicas
from doctor.model.verdicts import FailoverVerdict, NodeCountMeaning, WritesVerdict, failover, node_count_meaning, writes


@dataclass(frozen=True)
class ReplicationState:
    settings: ReplicationSettings
    members: list[MemberRow]
    reference_lsn_bytes: int | None  # the leader's WAL position lag is measured against
    reference_lsn: str | None
    reference_source: str
    writes: WritesVerdict
    failover: FailoverVerdict
    synchronous_node_count: NodeCountMeaning
    leader_pg: dict[str, Any] = field(default_factory=dict, repr=False)  # the leader's PostgreSQL facts, {} unreached

    def leader_row(self) -> MemberRow | None:
        return leader_row(self.members)

    def replicas(self) -> list[MemberRow]:
        return replicas(self.members)

    def row(self, name: str) -> MemberRow | None:
        return next((r for r in self.members if r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the ``replication`` section of ``docs/json-output.md`` without its thresholds."""
        return {"settings": dataclasses.asdict(self.settings), "reference_lsn": self.reference_lsn,
                "reference_lsn_bytes": self.reference_lsn_bytes, "reference_source": self.reference_source,
                "members": [r.to_dict() for r in self.members], "writes": dataclasses.asdict(self.writes),
                "failover": dataclasses.asdict(self.failover),
                "synchronous_node_count": dataclasses.asdict(self.synchronous_node_count)}


def build_replication(facts: Facts, members: list[Member], lv: LeaderView,
                      leader_pg_state: LeaderPostgres | None = None) -> ReplicationState:
    """Settings, member rows and the verdicts for one facts snapshot; ``leader_pg_state``: whether the leader
    key's holder has a running PostgreSQL (a leader whose PostgreSQL is down acknowledges nothing)."""
    cfg = read_settings(facts)
    lpg = leader_pg(facts, lv.writable_leader)
    ref, ref_source = reference_lsn(facts, lpg)
    rows = build_rows(facts, members, lv, cfg, lpg, ref, ref_source)
    down = dcs_down(facts)
    fo = failover(cfg, rows, lv, down)
    if fo.status == "unknown":  # judged from stale keys, a per-member verdict would mislead
        for r in replicas(rows):
            if r.failover is not None:
                r.failover = dataclasses.replace(r.failover, candidate=None, reasons=[fo.text])
    return ReplicationState(settings=cfg, members=rows, reference_lsn_bytes=ref, reference_lsn=lsn_str(ref),
                            reference_source=ref_source, writes=writes(cfg, rows, lv, bool(lpg), down, leader_pg_state), failover=fo,
                            synchronous_node_count=node_count_meaning(cfg, rows), leader_pg=lpg)
