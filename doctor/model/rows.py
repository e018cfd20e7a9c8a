"""One replication row per member: positions, lag, WAL receiver and walsender, sync state, tags,
slot, and whether Patroni would promote it or make it synchronous.

The row is what ``pgdoctor replication --format json`` prints for each member: its fields are the
JSON keys (``docs/json-output.md``), every figure a number (bytes as integers, times as seconds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from doctor.facts import Facts
from doctor.model.health import rest_replication
from doctor.model.lsn import lsn_str, lsn_to_int
from doctor.model.member_states import is_down, running_says_streaming
from doctor.model.members import LeaderView, Member, rest_status, sync_names
from doctor.model.patroni_rules import ReplicationSettings, failover_exclusions, slot_name, sync_exclusions, tag_rules
from doctor.units import human_bytes

LEADER_ROLES = ("Leader", "Standby Leader")


@dataclass
class SlotState:
    """The member's physical slot on the leader (``exists`` None when the leader's slots are unknown)."""

    name: str
    exists: bool | None
    active: bool | None = None
    retained_bytes: int | None = None
    wal_status: str | None = None
    restart_lsn: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return d if self.exists else {"name": self.name, "exists": self.exists}


@dataclass(frozen=True)
class FailoverCandidacy:
    """Would Patroni promote this replica now (``candidate`` None: cannot be judged), and why not."""

    candidate: bool | None
    reasons: list[str]
    lag_bytes: int | None
    notes: list[str]


@dataclass(frozen=True)
class SyncCandidacy:
    """Could this replica be (or stay) a synchronous standby, and why not."""

    eligible: bool
    reasons: list[str]


@dataclass
class MemberRow:
    """One member of the replication table. The field order is the JSON key order."""

    name: str
    host: str | None = None
    port: int | None = None
    role: str = "—"
    state: str | None = None
    timeline: int | None = None
    in_dcs: bool = False
    source: str | None = None
    pg_reachable: bool = False
    pg_error: dict[str, Any] | None = None
    lsn: str | None = None
    lsn_bytes: int | None = None
    receive_lsn: str | None = None
    receive_lsn_bytes: int | None = None
    replay_lsn: str | None = None
    replay_lsn_bytes: int | None = None
    lsn_source: str | None = None
    receive_lag_bytes: int | None = None
    replay_lag_bytes: int | None = None
    failover_lag_bytes: int | None = None  # against max(received, replayed): what Patroni compares
    lag_source: str | None = None
    lag_seconds: float | None = None
    lag_seconds_source: str | None = None
    write_lag_seconds: float | None = None
    flush_lag_seconds: float | None = None
    replay_lag_seconds: float | None = None
    walsender_state: str | None = None
    walsender_source: str | None = None  # where the leader's walsender list was read, None: not read
    sync_state: str | None = None
    sync_priority: int | None = None
    in_sync_key: bool | None = None
    streaming: bool | None = None
    wal_receiver_status: str | None = None
    wal_receiver_sender: str | None = None
    wal_receiver_slot: str | None = None
    replay_paused: bool | None = None
    replay_pause_state: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    nofailover: bool = False
    nosync: bool = False
    failover_priority: int = 1
    slot: SlotState | None = None
    failover: FailoverCandidacy | None = None
    sync_candidate: SyncCandidacy | None = None
    synchronous_standby_names: str | None = None  # the leader's
    sync_waiters: dict[str, Any] | None = None  # the leader's sessions waiting on SyncRep
    role_note: str | None = None
    disagree: list[str] | None = None
    patroni_state: str | None = None  # Patroni's ``state`` of its PostgreSQL (running, stopped, start failed, ...)
    patroni_version: str | None = None

    @property
    def is_leader(self) -> bool:
        return self.role in LEADER_ROLES

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, SlotState):
                value = value.to_dict()
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            out[f.name] = value
        return out


def replicas(rows: list[MemberRow]) -> list[MemberRow]:
    return [r for r in rows if not r.is_leader]


def leader_row(rows: list[MemberRow]) -> MemberRow | None:
    return next((r for r in rows if r.is_leader), None)


_MEASURES = ("_bytes", "_seconds", "_ms")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def measured(d: dict[str, Any]) -> dict[str, Any]:
    """The object with every measurement (``*_bytes``, ``*_seconds``, ``*_ms``, ``timeline``) that is
    not a number set to None: the collector writes numbers, a tampered bundle may hold anything."""
    bad = [k for k, v in d.items() if v is not None and (k == "timeline" or k.endswith(_MEASURES)) and not _number(v)]
    return {**d, **dict.fromkeys(bad)} if bad else d


def _ok(d: Any) -> dict[str, Any]:
    """A collected object, or {} when it is missing or holds a collection error."""
    return measured(d) if isinstance(d, dict) and "error" not in d else {}


def dicts(d: Any) -> list[dict[str, Any]]:
    """The dict entries of a collected list (rows of a query), [] when it is not a list."""
    return [measured(x) for x in d if isinstance(x, dict)] if isinstance(d, list) else []


def leader_pg(facts: Facts, leader: str | None) -> dict[str, Any]:
    """The writable leader's PostgreSQL facts when it was reached and is not in recovery, else {}."""
    pg = facts.pg_members.get(leader or "") or {}
    return pg if pg.get("reachable") and pg.get("in_recovery") is False else {}


def reference_lsn(facts: Facts, lpg: dict[str, Any]) -> tuple[int | None, str]:
    """The leader's WAL position lag is measured against, and where it came from."""
    pos = _ok(lpg.get("position"))
    if pos.get("current_lsn_bytes") is not None:
        return int(pos["current_lsn_bytes"]), "pg_current_wal_lsn() on the leader"
    if facts.dcs_optime is not None:
        return facts.dcs_optime, "/status optime in the DCS"
    return None, "unknown"


def _rest_xlog(facts: Facts, name: str) -> dict[str, Any]:
    """The ``xlog`` object of a member's ``GET /patroni`` (received/replayed location, paused)."""
    xlog = (rest_status(facts.rest_answers.get(name)) or {}).get("xlog")
    return xlog if isinstance(xlog, dict) else {}


def _known_absent(facts: Facts, present: set[str], leader: str | None) -> list[str]:
    """Members with no key in the DCS now that the leader still keeps a slot for (``retain_slots``)."""
    names = [str(x) for x in facts.list_at("dcs.status.retain_slots")]
    present_slots = {slot_name(n) for n in present}
    return sorted(n for n in names if n not in present_slots and n != (slot_name(leader) if leader else None))


def _slot(name: str, s: dict[str, Any] | None, leader_known: bool) -> SlotState:
    if s is None:
        return SlotState(name=name, exists=False if leader_known else None)
    return SlotState(name=name, exists=True, active=s.get("active"), retained_bytes=s.get("retained_bytes"),
                     wal_status=s.get("wal_status"), restart_lsn=s.get("restart_lsn"))


def _apply_tags(row: MemberRow, tags: Any) -> None:
    t = tag_rules(tags)
    row.tags, row.nofailover, row.nosync, row.failover_priority = t.tags, t.nofailover, t.nosync, t.failover_priority


def build_rows(facts: Facts, members: list[Member], lv: LeaderView, cfg: ReplicationSettings,
               lpg: dict[str, Any], ref: int | None, ref_source: str) -> list[MemberRow]:
    """One row per member (plus members gone from the DCS whose slot the leader keeps)."""
    leader = lv.writable_leader
    pgm = facts.pg_members
    walsenders, ws_source = leader_walsenders(facts, leader, lpg)
    leader_slots = {s["slot_name"]: s for s in dicts(lpg.get("slots")) if isinstance(s.get("slot_name"), str)}
    sync_key = facts.dcs_sync
    in_sync = sync_names(facts)
    dcs_members = {m["name"]: m for m in facts.dcs_members}
    rows: list[MemberRow] = []
    leader_tl = None
    for b in members:
        if b.name == leader:
            leader_tl = _ok(lpg.get("position")).get("timeline") or b.timeline
    for b in members:
        pg = pgm.get(b.name) or {}
        role = "Quorum Standby" if b.role == "Sync Standby" and cfg.synchronous_mode == "quorum" else b.role
        row = MemberRow(name=b.name, host=b.host, port=b.port, role=role, state=b.state, timeline=b.timeline,
                        in_dcs=b.in_dcs, source=b.source, pg_reachable=bool(pg.get("reachable")),
                        role_note=b.role_note, disagree=list(b.disagree) or None, patroni_state=b.pg_state,
                        patroni_version=b.patroni_version)
        if pg and not pg.get("reachable"):
            row.pg_error = pg.get("error")
        if pg.get("reachable") and pg.get("timeline") is not None:
            row.timeline = pg["timeline"]
        _apply_tags(row, b.tags)
        if b.role in LEADER_ROLES:
            pos = _ok(pg.get("position"))
            lsn = pos.get("current_lsn_bytes") if pos else None
            if lsn is None:
                lsn = b.lsn if b.lsn is not None else (ref if ref_source.startswith("/status") else None)
            row.lsn_bytes, row.lsn, row.lsn_source = lsn, lsn_str(lsn), "PostgreSQL" if pos else "DCS"
            row.synchronous_standby_names = (pg.get("settings") or {}).get("synchronous_standby_names")
            row.sync_waiters = _ok(pg.get("sync_waiters")) or None
            rows.append(row)
            continue
        ws = walsenders.get(b.name)
        _replica_positions(row, b, pg, ws, dcs_members.get(b.name) or {}, ref, _rest_xlog(facts, b.name))
        row.walsender_source = ws_source
        if ws:
            row.walsender_state, row.sync_state, row.sync_priority = ws.get("state"), ws.get("sync_state"), ws.get("sync_priority")
            row.write_lag_seconds = ws.get("write_lag_seconds")
            row.flush_lag_seconds = ws.get("flush_lag_seconds")
            row.replay_lag_seconds = ws.get("replay_lag_seconds")
        row.in_sync_key = b.name in in_sync
        row.slot = _slot(slot_name(b.name), leader_slots.get(slot_name(b.name)), bool(lpg))
        rows.append(row)
    for name in _known_absent(facts, {r.name for r in rows}, leader):
        row = MemberRow(name=name, role="Replica", state="absent", in_dcs=False,
                        source="slot kept by the leader (/status retain_slots)", streaming=False,
                        in_sync_key=name in in_sync, slot=_slot(name, leader_slots.get(name), bool(lpg)))
        _apply_tags(row, {})
        rows.append(row)
    for row in replicas(rows):
        row.failover = _failover(row, cfg, sync_key.get("leader"), in_sync, leader_tl)
        why_not = sync_exclusions(row)
        row.sync_candidate = SyncCandidacy(eligible=not why_not, reasons=why_not)
    return rows


def leader_walsenders(facts: Facts, leader: str | None,
                      lpg: dict[str, Any]) -> tuple[dict[Any, dict[str, Any]], str | None]:
    """The leader's walsenders by application_name and where they were read: its pg_stat_replication when
    its PostgreSQL was queried, else its REST ``/patroni`` ``replication[]`` (state and sync_state, no LSNs);
    ({}, None) when neither was read."""
    if lpg and isinstance(lpg.get("stat_replication"), list):
        return ({r["application_name"]: r for r in dicts(lpg["stat_replication"]) if isinstance(r.get("application_name"), str)},
                f"pg_stat_replication on {leader}")
    rest = rest_replication(facts, leader)
    if rest is not None:
        return {r.get("application_name"): r for r in rest}, f"{leader}'s REST /patroni replication[]"
    return {}, None


def _failover(row: MemberRow, cfg: ReplicationSettings, sync_key_leader: Any, in_sync: set[str],
              leader_tl: Any) -> FailoverCandidacy:
    reasons = failover_exclusions(row, cfg, sync_key_leader, in_sync, leader_tl)
    lag = row.failover_lag_bytes
    notes = []
    if row.replay_paused:
        notes.append("WAL replay is paused")
    if (row.replay_lag_bytes or 0) > (lag or 0) and (row.replay_lag_bytes or 0) > 0:
        notes.append(f"{human_bytes(row.replay_lag_bytes)} received but not replayed")
    return FailoverCandidacy(candidate=not reasons, reasons=reasons, lag_bytes=lag, notes=notes)


def streaming_from_state(b: Member) -> bool | None:
    """Does the replica stream, as far as Patroni's own words tell (neither it nor the leader was queried):
    ``replication_state`` streaming / in archive recovery (Patroni >= 3.0.4); a PostgreSQL that is not running
    does not stream; plain ``running`` means not streaming only from 3.0.4 on (before, every replica says
    ``running``, see :mod:`doctor.model.member_states`)."""
    if b.replication_state == "streaming" or b.state == "streaming":
        return True
    if b.replication_state == "in archive recovery" or b.state == "in archive recovery":
        return False
    if is_down(b.pg_state) or b.pg_state in ("starting", "stopping", "restarting"):
        return False
    if b.pg_state == "running":
        return False if running_says_streaming(b.patroni_version) else None
    return None


def _replica_positions(row: MemberRow, b: Member, pg: dict[str, Any], ws: dict[str, Any] | None,
                       dcs_member: dict[str, Any], ref: int | None, rest_xlog: dict[str, Any]) -> None:
    """Receive/replay LSN from the replica itself, else the leader's walsender, else the DCS; lag against ``ref``."""
    in_recovery = bool(pg.get("reachable") and pg.get("in_recovery"))
    pos = _ok(pg.get("position")) if in_recovery else {}
    recv = replay = None
    source = None
    if pos:
        recv, replay, source = pos.get("receive_lsn_bytes"), pos.get("replay_lsn_bytes"), "PostgreSQL"
    elif ws and (ws.get("flush_lsn_bytes") is not None or ws.get("replay_lsn_bytes") is not None):
        recv, replay, source = ws.get("flush_lsn_bytes"), ws.get("replay_lsn_bytes"), "pg_stat_replication"
    if recv is None and replay is None:
        recv, replay = lsn_to_int(dcs_member.get("receive_lsn")), lsn_to_int(dcs_member.get("replay_lsn"))
        source = "DCS" if recv is not None or replay is not None else None
    if recv is None and replay is None:  # Patroni 3.x member keys carry no receive/replay LSN: its REST does
        recv, replay = lsn_to_int(rest_xlog.get("received_location")), lsn_to_int(rest_xlog.get("replayed_location"))
        source = "REST /patroni" if recv is not None or replay is not None else None
    if recv is None and replay is None and b.lsn is not None:
        recv, source = b.lsn, "DCS"
    row.receive_lsn_bytes, row.receive_lsn = recv, lsn_str(recv)
    row.replay_lsn_bytes, row.replay_lsn = replay, lsn_str(replay)
    row.lsn_source = source
    position = max([x for x in (recv, replay) if x is not None], default=None)
    row.receive_lag_bytes = max(0, ref - recv) if ref is not None and recv is not None else None
    row.replay_lag_bytes = max(0, ref - replay) if ref is not None and replay is not None else None
    row.failover_lag_bytes = max(0, ref - position) if ref is not None and position is not None else None
    row.lag_source = None if ref is None or source is None else (
        {"DCS": "DCS member key", "REST /patroni": "REST /patroni"}.get(source, "PostgreSQL"))
    wr = pg.get("wal_receiver") if in_recovery else None
    if in_recovery and isinstance(wr, dict) and "error" in wr:
        wr = None
        row.streaming = None
    elif in_recovery:
        row.streaming = bool(wr) and wr.get("status") == "streaming"
    elif ws:
        row.streaming = ws.get("state") == "streaming"
    else:
        row.streaming = streaming_from_state(b)
    wr = wr if isinstance(wr, dict) else {}
    row.wal_receiver_status = wr.get("status")
    row.wal_receiver_sender = f"{wr.get('sender_host')}:{wr.get('sender_port')}" if wr.get("sender_host") else None
    row.wal_receiver_slot = wr.get("slot_name")
    paused = pos.get("replay_paused") if pos else None
    if paused is None:
        paused = rest_xlog.get("paused")
    row.replay_paused = paused
    state = pg.get("replay_pause_state")
    row.replay_pause_state = state if isinstance(state, str) else None
    ages = [ws["replay_lag_seconds"]] if ws and ws.get("replay_lag_seconds") is not None else []
    if pos and (row.replay_lag_bytes or 0) > 0 and pos.get("last_replay_age_seconds") is not None:
        ages.append(pos["last_replay_age_seconds"])
    row.lag_seconds = round(max(ages), 3) if ages else None
    row.lag_seconds_source = None if not ages else (
        "age of the last replayed transaction (replica behind)" if (len(ages) > 1 and ages[-1] >= ages[0])
        or (not ws or ws.get("replay_lag_seconds") is None) else "pg_stat_replication.replay_lag")
