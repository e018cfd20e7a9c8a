"""The typed model of the cluster that checks and views judge: this node's config (``node``), its
processes (``processes``), the members and who leads (``members``), Patroni's rules
(``patroni_rules``), the replication rows, verdicts and problems (``rows``, ``verdicts``,
``replication``, ``problems``).

:func:`model_of` builds it once per facts snapshot: every check and view that asks for the same
:class:`~doctor.facts.Facts` gets the same objects. Treat them as read-only.
"""

from __future__ import annotations

from functools import cached_property

from doctor.facts import Facts
from doctor.model import health
from doctor.model.members import LeaderView, Member, dcs_down, leader_view, members, sync_names
from doctor.model.patroni_rules import truthy
from doctor.model.replication import ReplicationState, build_replication


class ClusterModel:
    """The cluster as one facts snapshot shows it; each part is built on first use."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    @cached_property
    def leaders(self) -> LeaderView:
        return leader_view(self.facts)

    @property
    def dcs_leader(self) -> str | None:
        """The holder of the ``/leader`` key as read (possibly stale, possibly demoted)."""
        return self.leaders.dcs_leader

    @property
    def writable_leader(self) -> str | None:
        """The member that is actually a writable primary, None when there is none or it is unclear."""
        return self.leaders.writable_leader

    @cached_property
    def members(self) -> list[Member]:
        return members(self.facts, self.leaders)

    def member(self, name: str | None) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    @cached_property
    def dcs_down(self) -> str | None:
        """Why Patroni cannot use the DCS now, or None."""
        return dcs_down(self.facts)

    @cached_property
    def replication(self) -> ReplicationState:
        return build_replication(self.facts, self.members, self.leaders, self.leader_postgres)

    @cached_property
    def leader_postgres(self) -> health.LeaderPostgres | None:
        """The leader key's holder and whether its PostgreSQL runs and accepts connections."""
        return health.leader_postgres(self.facts, self.members, self.leaders, truthy((self.facts.dcs_config or {}).get("pause")))

    @cached_property
    def down_members(self) -> list[health.DownMember]:
        """Members other than the leader whose PostgreSQL Patroni reports stopped, crashed or failed."""
        return health.down_members(self.facts, self.members, self.leaders, sync_names(self.facts))

    @cached_property
    def standby_leader(self) -> health.StandbyLeaderReplication | None:
        return health.standby_leader_replication(self.facts, self.members, self.leaders,
                                                 (self.facts.dcs_config or {}).get("standby_cluster"))

    @cached_property
    def pending_restarts(self) -> list[health.PendingRestart]:
        return health.pending_restarts(self.facts, self.members, self.facts.get("patroni_api.name"))

    @cached_property
    def scheduled_actions(self) -> list[health.ScheduledAction]:
        return health.scheduled_actions(self.facts, self.members)

    def member_count(self, expect: int | None) -> health.MemberCount:
        return health.member_count(self.facts, self.members, expect)


def model_of(facts: Facts) -> ClusterModel:
    """The cluster model of this snapshot, built once and shared by every check and view."""
    return facts.memo("cluster-model", lambda: ClusterModel(facts))


__all__ = ["ClusterModel", "model_of"]
