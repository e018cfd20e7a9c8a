"""What the replication checks report per member or slot: slots that are lost, hoard WAL or are
missing, replicas past a lag threshold or paused, replicas that say they run but do not stream."""

from __future__ import annotations

from dataclasses import dataclass, field

from doctor.model.patroni_rules import RUNNING_STATES, expects_member_slot, slot_name
from doctor.model.replication import ReplicationState
from doctor.model.rows import MemberRow, dicts, replicas
from doctor.units import human_bytes, human_seconds

DEFAULT_SLOT_RETAINED_BYTES = 1024**3  # an inactive slot holding more WAL than this is worth a warning


@dataclass(frozen=True)
class SlotProblem:
    kind: str  # lost, unreserved, inactive-retaining, unlimited, missing
    severity: str
    slot: str | None
    member: str | None
    leader: str | None
    retained_bytes: int | None
    active: bool | None = None
    wal_status: str | None = None
    slot_type: str | None = None
    permanent: bool = False
    threshold: int | None = None
    total_retained_bytes: int | None = None


def slot_problems(state: ReplicationState, threshold: int = DEFAULT_SLOT_RETAINED_BYTES) -> list[SlotProblem]:
    """Slots on the leader that retain dangerous amounts of WAL, are lost, or are missing for a member."""
    lpg = state.leader_pg
    if not lpg:
        return []
    lead = state.leader_row()
    leader = lead.name if lead else None
    slots = dicts(lpg.get("slots"))
    keep = str((lpg.get("settings") or {}).get("max_slot_wal_keep_size") or "")
    member_slots = {slot_name(r.name): r.name for r in state.members}
    out: list[SlotProblem] = []
    for s in slots:
        retained = s.get("retained_bytes") or 0
        common = {"slot": s.get("slot_name"), "retained_bytes": retained, "active": s.get("active"),
                      "wal_status": s.get("wal_status"), "member": member_slots.get(s.get("slot_name")), "leader": leader,
                      "slot_type": s.get("slot_type"), "permanent": s.get("slot_name") in state.settings.permanent_slots}
        if s.get("wal_status") == "lost":
            out.append(SlotProblem(kind="lost", severity="fail", **common))
        elif s.get("wal_status") == "unreserved":
            out.append(SlotProblem(kind="unreserved", severity="warn", **common))
        elif not s.get("active") and retained > threshold:
            out.append(SlotProblem(kind="inactive-retaining", severity="warn", threshold=threshold, **common))
    biggest = max(slots, key=lambda s: s.get("retained_bytes") or 0, default=None)
    if keep.strip() in ("-1", "") and biggest is not None and (biggest.get("retained_bytes") or 0) > threshold:
        out.append(SlotProblem(kind="unlimited", severity="warn", slot=biggest.get("slot_name"),
                               retained_bytes=biggest.get("retained_bytes"),
                               total_retained_bytes=sum(s.get("retained_bytes") or 0 for s in slots),
                               threshold=threshold, leader=leader, member=member_slots.get(biggest.get("slot_name"))))
    for r in replicas(state.members):
        if expects_member_slot(r, state.settings) and r.slot is not None and r.slot.exists is False:
            out.append(SlotProblem(kind="missing", severity="warn", slot=slot_name(r.name), member=r.name,
                                   leader=leader, retained_bytes=None))
    return out


@dataclass(frozen=True)
class LagProblem:
    member: str
    reasons: list[str]
    replay_lag_bytes: int | None
    receive_lag_bytes: int | None
    failover_lag_bytes: int | None
    lag_seconds: float | None
    replay_paused: bool
    host: str | None
    port: int | None
    excluded_from_failover: bool
    row: MemberRow = field(repr=False, compare=False)


def lag_problems(state: ReplicationState, max_lag_bytes: int | None,
                 max_lag_seconds: float | None) -> list[LagProblem]:
    """Replicas past maximum_lag_on_failover or the user's thresholds, or with WAL replay paused."""
    out = []
    limit = state.settings.maximum_lag_on_failover
    for r in replicas(state.members):
        if not r.in_dcs:
            continue
        reasons: list[str] = []
        replay, flag = r.replay_lag_bytes, r.failover_lag_bytes
        worst = max([x for x in (replay, flag) if x is not None], default=None)
        if worst is not None and limit is not None and worst > limit:
            reasons.append(f"{human_bytes(worst)} behind > maximum_lag_on_failover {human_bytes(limit)}")
        if max_lag_bytes is not None and worst is not None and worst > max_lag_bytes:
            reasons.append(f"{human_bytes(worst)} behind > --max-lag-bytes {human_bytes(max_lag_bytes)}")
        if max_lag_seconds is not None and r.lag_seconds is not None and r.lag_seconds > max_lag_seconds:
            reasons.append(f"{human_seconds(r.lag_seconds)} behind > --max-lag-seconds {max_lag_seconds:g} s")
        if r.replay_paused:
            reasons.append("WAL replay is paused (pg_is_wal_replay_paused() = true)")
        if reasons:
            out.append(LagProblem(member=r.name, reasons=reasons, replay_lag_bytes=replay,
                                  receive_lag_bytes=r.receive_lag_bytes, failover_lag_bytes=flag,
                                  lag_seconds=r.lag_seconds, replay_paused=bool(r.replay_paused), host=r.host,
                                  port=r.port, excluded_from_failover=not (r.failover and r.failover.candidate),
                                  row=r))
    return out


def not_streaming(rows: list[MemberRow]) -> list[MemberRow]:
    """Replicas Patroni reports as running whose PostgreSQL does not stream (no WAL receiver, or not 'streaming')."""
    return [r for r in replicas(rows) if r.in_dcs and r.state in RUNNING_STATES and r.streaming is False
            and not r.tags.get("nostream")]
