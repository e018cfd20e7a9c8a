"""Patroni's own rules, mirrored so pgdoctor judges a cluster the way Patroni will act on it.

Each function names the Patroni code it mirrors (github.com/patroni/patroni, checked against 4.1). When Patroni
changes one of these, this is the one file to follow it in. Nothing here writes prose about the
whole cluster (that is :mod:`doctor.model.verdicts`); a rule returns the reasons it applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doctor.facts import Facts
from doctor.units import human_bytes

if TYPE_CHECKING:  # the rows are built from these rules; the rules only read them
    from doctor.model.rows import MemberRow

# patroni/global_config.py ``GlobalConfig.maximum_lag_on_failover``: "Assume 1048576 if it is not set or invalid".
DEFAULT_MAX_LAG_ON_FAILOVER = 1048576
# Member states in which a replica takes part in replication. Patroni's ``Member.is_running``
# (patroni/dcs/__init__.py) is ``state == 'running'``; since 3.0.4 a member publishes ``replication_state``
# ('streaming', 'in archive recovery') beside it, and the member table shows that instead.
RUNNING_STATES = ("running", "streaming", "in archive recovery")


def slot_name(member: str) -> str:
    """The physical slot a member streams from: patroni/dcs/__init__.py ``slot_name_from_member_name``
    (lower case, ``-`` and ``.`` to ``_``, other characters as ``u`` + code point, at most 63 characters)."""
    def repl(m: re.Match) -> str:
        c = m.group(0)
        return "_" if c in "-." else f"u{ord(c):04d}"
    return re.sub("[^a-z0-9_]", repl, member.lower())[:63]


def truthy(value: Any) -> bool:
    """A boolean-ish setting as patroni/utils.py ``parse_bool`` reads it ('on', 'true', 'yes', '1'),
    plus ``synchronous_mode: quorum`` (patroni/global_config.py ``is_quorum_commit_mode``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("on", "true", "yes", "1", "quorum")
    return bool(value)


def as_int(value: Any, default: int | None = None) -> int | None:
    """patroni/utils.py ``parse_int`` without units: the integer, or ``default``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------- tags


@dataclass(frozen=True)
class TagRules:
    """A member's tags and what they mean to Patroni."""

    tags: dict[str, Any] = field(default_factory=dict)
    nofailover: bool = False
    nosync: bool = False
    failover_priority: int = 1


def tag_rules(tags: Any) -> TagRules:
    """patroni/tags.py ``Tags``: ``nofailover``/``nosync`` win when set; otherwise ``failover_priority``/
    ``sync_priority`` <= 0 means the same (``_bool_tag``); a priority defaults to 1 and is 0 when the
    boolean tag is set (``_priority_tag``)."""
    tags = tags if isinstance(tags, dict) else {}
    nofailover = tags.get("nofailover")
    prio = as_int(tags.get("failover_priority"))
    nosync = tags.get("nosync")
    sprio = as_int(tags.get("sync_priority"))
    return TagRules(tags=dict(tags),
                    nofailover=bool(nofailover) if nofailover is not None else (prio is not None and prio <= 0),
                    nosync=bool(nosync) if nosync is not None else (sprio is not None and sprio <= 0),
                    failover_priority=0 if nofailover else (prio if prio is not None else 1))


# --------------------------------------------------------------------------- global configuration


@dataclass(frozen=True)
class ReplicationSettings:
    """The cluster-wide settings that decide replication, as Patroni's ``GlobalConfig`` reads them."""

    known: bool
    source: str
    synchronous_mode: str  # 'off', 'on' or 'quorum'
    synchronous_mode_strict: bool
    synchronous_node_count: int
    maximum_lag_on_failover: int | None
    maximum_lag_on_syncnode: int | None
    check_timeline: bool
    pause: bool
    use_slots: bool
    permanent_slots: list[str]
    standby_cluster: bool


def read_settings(facts: Facts) -> ReplicationSettings:
    """The dynamic configuration (DCS ``/config``, else REST ``/config``) read like patroni/global_config.py:
    ``is_synchronous_mode``/``is_quorum_commit_mode``, ``is_synchronous_mode_strict``,
    ``synchronous_node_count`` (default 1), ``maximum_lag_on_failover`` (default 1048576),
    ``maximum_lag_on_syncnode`` (default -1), ``is_paused``, ``use_slots`` (default on), ``permanent_slots``
    (the ``slots`` section) and ``is_standby_cluster``; ``check_timeline`` as patroni/ha.py reads it."""
    cfg = facts.dcs_config
    prefix = facts.dcs_prefix or "/service/<scope>/"
    source = f"{prefix}config in the DCS"
    if cfg is None:
        cfg = facts.dict_at("patroni_api.config.body")
        source = f"{facts.get('patroni_api.url') or 'this node'}/config (REST)"
    known = cfg is not None
    cfg = cfg or {}
    raw_mode = cfg.get("synchronous_mode")
    pg = cfg.get("postgresql") if isinstance(cfg.get("postgresql"), dict) else {}
    slots = cfg.get("slots")
    return ReplicationSettings(
        known=known,
        source=source if known else "unknown (neither the DCS nor the REST /config could be read)",
        synchronous_mode="quorum" if str(raw_mode).lower() == "quorum" else ("on" if truthy(raw_mode) else "off"),
        synchronous_mode_strict=truthy(cfg.get("synchronous_mode_strict")),
        synchronous_node_count=max(1, as_int(cfg.get("synchronous_node_count"), 1) or 1),
        maximum_lag_on_failover=as_int(cfg.get("maximum_lag_on_failover"), DEFAULT_MAX_LAG_ON_FAILOVER),
        maximum_lag_on_syncnode=as_int(cfg.get("maximum_lag_on_syncnode"), -1),
        check_timeline=truthy(cfg.get("check_timeline")),
        pause=truthy(cfg.get("pause")),
        use_slots=truthy(pg.get("use_slots", True)),
        permanent_slots=sorted(slots.keys()) if isinstance(slots, dict) else [],
        standby_cluster=bool(cfg.get("standby_cluster")),
    )


# --------------------------------------------------------------------------- failover


def failover_exclusions(row: MemberRow, cfg: ReplicationSettings, sync_key_leader: Any, sync_names: set[str],
                        leader_timeline: Any) -> list[str]:
    """Why Patroni would not promote this replica if the leader died now ([] = it would). Mirrors
    patroni/ha.py: ``Ha.get_failover_candidates`` (in synchronous mode only members in ``/sync``;
    no ``nofailover``), ``_MemberStatus.failover_limitation`` (reachable, not ``nofailover``),
    ``Ha.is_failover_possible`` / ``Ha.is_lagging`` (position = max(received, replayed) at most
    ``maximum_lag_on_failover`` behind the leader's last LSN) and ``Ha._is_healthiest_node``
    (``check_timeline``: not behind the cluster's timeline)."""
    reasons: list[str] = []
    running = row.in_dcs and row.state in RUNNING_STATES
    if not row.in_dcs:
        reasons.append("no member key in the DCS (Patroni is not running there)")
    elif row.state not in RUNNING_STATES:
        reasons.append(f"PostgreSQL is {row.state or 'in an unknown state'}")
    if row.nofailover:
        reasons.append("tagged nofailover" if row.tags.get("nofailover") else
                       f"failover_priority {row.tags.get('failover_priority')}")
    lag, limit = row.failover_lag_bytes, cfg.maximum_lag_on_failover
    if running:
        if lag is None:
            reasons.append("its WAL position is unknown")
        elif limit is not None and lag > limit:
            reasons.append(f"lag {human_bytes(lag)} > maximum_lag_on_failover {human_bytes(limit)}")
        if row.streaming is False:
            reasons.append(f"not streaming (state {row.state})")
    if cfg.synchronous_mode == "on" and sync_key_leader and row.name not in sync_names and running:
        reasons.append("not in /sync (in synchronous_mode only its members may be promoted; it lists "
                       + (", ".join(sorted(sync_names)) if sync_names else "none") + ")")
    if cfg.check_timeline and isinstance(leader_timeline, int) and isinstance(row.timeline, int) \
            and row.timeline < leader_timeline:
        reasons.append(f"timeline {row.timeline} behind the cluster's {leader_timeline} (check_timeline)")
    return reasons


# --------------------------------------------------------------------------- synchronous replication


def sync_exclusions(row: MemberRow) -> list[str]:
    """Why this replica cannot be (or stay) a synchronous standby ([] = it can). Mirrors
    patroni/postgresql/sync.py ``_ReplicaList``: members that are running, not tagged ``nosync``,
    streaming (a ``pg_stat_replication`` row with an LSN) and not cascading (``_should_cascade``,
    the ``replicatefrom`` tag); ``nostream`` members have no walsender on the leader at all."""
    reasons: list[str] = []
    if not row.in_dcs:
        reasons.append("no member key in the DCS")
    elif row.state not in RUNNING_STATES:
        reasons.append(f"PostgreSQL is {row.state or 'in an unknown state'}")
    if row.nosync:
        reasons.append("tagged nosync" if row.tags.get("nosync") else f"sync_priority {row.tags.get('sync_priority')}")
    if row.tags.get("nostream"):
        reasons.append("tagged nostream")
    if row.tags.get("replicatefrom"):
        reasons.append(f"cascades from {row.tags.get('replicatefrom')} (replicatefrom)")
    if row.in_dcs and row.walsender_state != "streaming" and row.streaming is not True:
        reasons.append("not streaming from the leader")
    return reasons


def may_be_synchronous(row: MemberRow) -> bool:
    """Could this replica ever count toward ``synchronous_node_count``, whatever its state now:
    the tag part of patroni/postgresql/sync.py ``_ReplicaList`` (no ``nosync``, ``nostream`` or ``replicatefrom``)."""
    return not row.nosync and not row.tags.get("nostream") and not row.tags.get("replicatefrom")


def expects_member_slot(row: MemberRow, cfg: ReplicationSettings) -> bool:
    """Should the leader keep a physical slot for this running replica: patroni/dcs/__init__.py
    ``Cluster._get_members_slots`` (``use_slots`` on; no slot for ``nostream`` members nor, on the
    leader, for members cascading from another member through ``replicatefrom``)."""
    return (cfg.use_slots and row.in_dcs and row.state in RUNNING_STATES
            and not row.tags.get("nostream") and not row.tags.get("replicatefrom"))
