"""What the members' states say about the cluster's health: members whose PostgreSQL is down, a
leader key held over a PostgreSQL that does not run, a standby leader that does not replicate,
pending restarts, scheduled switchovers and restarts, and fewer members than the cluster should have.

Pure functions of the facts and the member list (:mod:`doctor.model.members`); the states' meanings
come from :mod:`doctor.model.member_states`. Every ``evidence`` line names where its value was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doctor.facts import Facts
from doctor.model.member_states import (
    BOOTSTRAP,
    DOWN,
    FAILED,
    TRANSIENT,
    UP,
    is_down,
    running_says_streaming,
    state_info,
)
from doctor.model.members import LeaderView, Member, history, rest_status
from doctor.model.patroni_rules import slot_name

# A connection failure that says the server does not accept connections (not one about who we are).
NOT_ACCEPTING = ("refused", "timeout", "starting")
LEADER_ROLES = ("Leader", "Standby Leader")


def pg_connection(facts: Facts, name: str) -> tuple[bool | None, str]:
    """Did a real connection to the member's PostgreSQL work (None: not tried or not conclusive), and the
    evidence line that says what was read."""
    pg = facts.pg_members.get(name)
    if not isinstance(pg, dict) or not pg:
        return None, f"{name}'s PostgreSQL: not read (no connection was tried)"
    where = f"{pg.get('host')}:{pg.get('port')}"
    if pg.get("reachable"):
        rec = pg.get("in_recovery")
        return True, (f"a connection to {name}'s PostgreSQL at {where} worked"
                      + (f" (pg_is_in_recovery() = {str(rec).lower()})" if rec is not None else ""))
    err = pg.get("error") or {}
    text = f"{err.get('kind') or 'error'}: {err.get('server_message') or err.get('message') or 'no message'}"
    if err.get("kind") in NOT_ACCEPTING:
        return False, f"a connection to {name}'s PostgreSQL at {where} failed ({text})"
    return None, f"{name}'s PostgreSQL at {where}: not read ({text})"


# --------------------------------------------------------------------------- members down


@dataclass(frozen=True)
class DownMember:
    name: str
    state: str
    kind: str  # member_states kind: down or failed
    meaning: str
    source: str
    host: str | None
    port: int | None
    in_sync_key: bool
    evidence: list[str]


def down_members(facts: Facts, members: list[Member], lv: LeaderView, sync: set[str]) -> list[DownMember]:
    """Members other than the leader key's holder whose PostgreSQL Patroni reports as not running
    (``stopped``, ``crashed``) or failed (``start failed``, ``restart failed``, ...)."""
    out = []
    leaders = {lv.dcs_leader, lv.writable_leader}
    for m in members:
        if m.name in leaders or m.role in LEADER_ROLES:
            continue
        info = state_info(m.pg_state)
        conn, line = pg_connection(facts, m.name)
        # 'starting'/'restarting'/'stopping' is normal for a moment; with its server refusing connections it is down
        if not is_down(m.pg_state) and not (info.kind == TRANSIENT and conn is False):
            continue
        evidence = [f"Patroni state of {m.name}: '{m.pg_state}' ({m.pg_state_source}"
                    + (f", Patroni {m.patroni_version}" if m.patroni_version else "") + f"): {info.meaning}"]
        meaning = info.meaning
        if m.rest_error and m.pg_state_source == "DCS member key":
            meaning += (f"; its Patroni does not answer either (REST {m.rest_error.get('kind')}): the key keeps what "
                        "it wrote last until it expires")
            evidence.append(f"GET {m.api_url}: {m.rest_error.get('kind')}: {m.rest_error.get('message')}")
        evidence.append(line)
        out.append(DownMember(name=m.name, state=str(m.pg_state), kind=info.kind, meaning=meaning,
                              source=str(m.pg_state_source), host=m.host, port=m.port, in_sync_key=m.name in sync,
                              evidence=evidence))
    return out


# --------------------------------------------------------------------------- the leader's PostgreSQL


@dataclass(frozen=True)
class LeaderPostgres:
    """The leader key's holder and whether its PostgreSQL runs and accepts connections."""

    leader: str
    down: bool
    state: str | None
    state_kind: str | None
    connection: bool | None  # a real connection worked / failed / was not conclusive
    standby: bool
    paused: bool
    evidence: list[str] = field(default_factory=list)
    why: str = ""


def leader_postgres(facts: Facts, members: list[Member], lv: LeaderView, paused: bool) -> LeaderPostgres | None:
    """None when no member holds the leader key (or the key cannot be trusted: stale keys)."""
    name = lv.dcs_leader
    if not name or lv.stale or lv.keys_unread:
        return None
    m = next((x for x in members if x.name == name), None)
    state = m.pg_state if m else None
    info = state_info(state) if state else None
    conn, conn_line = pg_connection(facts, name)
    evidence = [f"{facts.dcs_prefix or '/<namespace>/<scope>/'}leader = {name} (DCS)"]
    if m and state:
        evidence.append(f"Patroni state of {name}: '{state}' ({m.pg_state_source})")
    elif m and m.rest_error:
        evidence.append(f"Patroni state of {name}: not read (REST: {m.rest_error.get('kind')}: "
                        f"{m.rest_error.get('message')}; no state in its member key)")
    evidence.append(conn_line)
    reasons = []
    if info and info.kind in (DOWN, FAILED, TRANSIENT, BOOTSTRAP):
        reasons.append(f"Patroni reports its PostgreSQL as '{state}' ({info.meaning})")
    if conn is False:
        reasons.append("its PostgreSQL does not accept connections")
    if conn is True and (facts.pg_members.get(name) or {}).get("in_recovery") is True and m \
            and m.role == "Leader" and m.live_role != "standby_leader" and not lv.disagree:
        reasons.append("its PostgreSQL is in recovery (read-only): it does not accept writes")
    standby = bool(m and (m.role == "Standby Leader" or m.dcs_role == "standby_leader"))
    return LeaderPostgres(leader=name, down=bool(reasons), state=state, state_kind=info.kind if info else None,
                          connection=conn, standby=standby, paused=paused, evidence=evidence,
                          why="; ".join(reasons))


# --------------------------------------------------------------------------- standby leader


@dataclass(frozen=True)
class StandbyLeaderReplication:
    leader: str
    streaming: bool | None  # None: cannot be told
    how: str
    source: dict[str, Any]  # the standby_cluster section (host, port, restore_command, ...)
    evidence: list[str]


def standby_leader_replication(facts: Facts, members: list[Member], lv: LeaderView,
                               standby_cfg: Any) -> StandbyLeaderReplication | None:
    """Is a standby cluster's leader replicating from its source? None when there is no standby leader
    or its PostgreSQL is down (that is the leader's PostgreSQL problem)."""
    m = next((x for x in members if x.name == lv.dcs_leader), None)
    if m is None or not (m.role == "Standby Leader" or m.dcs_role == "standby_leader" or m.live_role == "standby_leader"):
        return None
    if state_info(m.pg_state).kind != UP:
        return None
    cfg = standby_cfg if isinstance(standby_cfg, dict) else {}
    src = (f"{cfg.get('host')}:{cfg.get('port') or 5432}" if cfg.get("host") else
           ("restore_command only" if cfg.get("restore_command") else "its source"))
    evidence = [f"standby_cluster: host {cfg.get('host')}, port {cfg.get('port')}, restore_command "
                + ("set" if cfg.get("restore_command") else "not set") if cfg else
                "standby_cluster section: not read (no /config)"]
    pg = facts.pg_members.get(m.name) or {}
    wr = pg.get("wal_receiver") if pg.get("reachable") else None
    if isinstance(wr, dict) and "error" not in wr:
        evidence.append(f"pg_stat_wal_receiver on {m.name}: status {wr.get('status') or 'none'}"
                        + (f", from {wr.get('sender_host')}:{wr.get('sender_port')}" if wr.get("sender_host") else ""))
        if wr.get("status") == "streaming":
            return StandbyLeaderReplication(m.name, True, f"streams from {wr.get('sender_host')}", cfg, evidence)
        how = (f"its WAL receiver is '{wr.get('status')}'" if wr.get("status") else
               "it has no WAL receiver (pg_stat_wal_receiver is empty)")
        return StandbyLeaderReplication(m.name, False, how, cfg, evidence)
    if pg.get("reachable") is True and pg.get("in_recovery") and wr is None:
        evidence.append(f"pg_stat_wal_receiver on {m.name}: no row")
        return StandbyLeaderReplication(m.name, False, "it has no WAL receiver (pg_stat_wal_receiver is empty)",
                                        cfg, evidence)
    if not pg.get("reachable"):
        evidence.append(f"pg_stat_wal_receiver on {m.name}: not read — {pg_connection(facts, m.name)[1]}")
    rs = m.replication_state
    says = running_says_streaming(m.patroni_version)
    evidence.append(f"replication_state of {m.name}: {rs or 'none'} (Patroni {m.patroni_version or 'version unknown'})")
    if rs == "streaming":
        return StandbyLeaderReplication(m.name, True, f"streams from {src}", cfg, evidence)
    if rs == "in archive recovery":
        return StandbyLeaderReplication(m.name, False, f"it is in archive recovery: it replays WAL from the archive "
                                        f"(restore_command) but does not stream from {src}", cfg, evidence)
    if says:
        return StandbyLeaderReplication(m.name, False, f"Patroni {m.patroni_version} reports no replication_state: "
                                        f"neither streaming from {src} nor restoring from an archive", cfg, evidence)
    return StandbyLeaderReplication(m.name, None, "Patroni before 3.0.4 does not say whether it streams", cfg, evidence)


# --------------------------------------------------------------------------- pending restart


@dataclass(frozen=True)
class PendingRestart:
    member: str
    parameters: dict[str, str]  # name -> 'old → new' or the new setting
    source: str
    evidence: list[str]


def pending_restarts(facts: Facts, members: list[Member], here: str | None) -> list[PendingRestart]:
    """Members whose PostgreSQL needs a restart for a changed parameter, and which parameters: Patroni's
    ``pending_restart_reason`` (3.3+), else ``pg_settings.pending_restart`` on that member."""
    out = []
    for m in members:
        pg = facts.pg_members.get(m.name) or {}
        rows = pg.get("pending_restart") if pg.get("reachable") else None
        if rows is None and m.name == here:
            rows = facts.get("postgres.pending_restart")
        pg_rows = [r for r in rows if isinstance(r, dict) and r.get("name")] if isinstance(rows, list) else []
        if not m.pending_restart and not pg_rows:
            continue
        params: dict[str, str] = {}
        evidence = []
        if m.pending_restart_reason:
            for k, v in sorted(m.pending_restart_reason.items()):
                v = v if isinstance(v, dict) else {}
                params[str(k)] = f"{v.get('old_value')} → {v.get('new_value')}"
            source = "Patroni pending_restart_reason"
            evidence.append(f"{m.name}: pending_restart_reason ({m.pg_state_source or 'Patroni'}): "
                            + ", ".join(f"{k} {v}" for k, v in params.items()))
        elif pg_rows:
            params = {str(r["name"]): str(r.get("setting")) for r in pg_rows}
            source = "pg_settings.pending_restart"
            evidence.append(f"pg_settings on {m.name} where pending_restart: "
                            + ", ".join(f"{k} = {v}" for k, v in params.items()))
        else:
            source = "Patroni pending_restart"
            evidence.append(f"{m.name}: pending_restart_reason: not read (Patroni "
                            f"{m.patroni_version or 'version unknown'} does not publish it before 4.0); "
                            f"pg_settings on {m.name}: " + ("not read" if not pg.get("reachable") else "no row"))
        if m.pending_restart:
            evidence.insert(0, f"{m.name}: pending_restart true ({m.pg_state_source or 'Patroni'})")
        out.append(PendingRestart(member=m.name, parameters=params, source=source, evidence=evidence))
    return out


# --------------------------------------------------------------------------- scheduled actions


@dataclass(frozen=True)
class ScheduledAction:
    kind: str  # switchover, restart
    at: str
    member: str | None  # the member restarted, or the switchover's candidate
    from_member: str | None
    source: str
    overdue_seconds: float | None  # how long past its time at collection (None: not past, or unknown)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "member": self.member, "from": self.from_member,
                "source": self.source, "overdue_seconds": self.overdue_seconds, "text": self.text()}

    def text(self) -> str:
        if self.kind == "switchover":
            return (f"switchover scheduled at {self.at}" + (f" from {self.from_member}" if self.from_member else "")
                    + (f" to {self.member}" if self.member else " to the best candidate"))
        return f"restart of {self.member} scheduled at {self.at}"


def _parse_time(value: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else None


def scheduled_actions(facts: Facts, members: list[Member]) -> list[ScheduledAction]:
    """A scheduled switchover (the ``/failover`` key with ``scheduled_at``, or ``/cluster``'s
    ``scheduled_switchover``) and scheduled restarts (a member's ``scheduled_restart``)."""
    now = _parse_time(facts.get("collected_at"))

    def overdue(at: Any) -> float | None:
        t = _parse_time(at)
        if t is None or now is None:
            return None
        past = (now - t).total_seconds()
        return past if past > 0 else None

    out = []
    fo = facts.dict_at("dcs.failover") or {}
    cl = facts.dict_at("patroni_api.cluster.body.scheduled_switchover") or {}
    if fo.get("scheduled_at"):
        out.append(ScheduledAction("switchover", str(fo["scheduled_at"]), fo.get("member") or fo.get("candidate"),
                                   fo.get("leader"), f"{facts.dcs_prefix or '/'}failover in the DCS",
                                   overdue(fo["scheduled_at"])))
    elif cl.get("at"):
        out.append(ScheduledAction("switchover", str(cl["at"]), cl.get("to"), cl.get("from"),
                                   "scheduled_switchover in REST /cluster", overdue(cl["at"])))
    for m in members:
        if m.scheduled_restart:
            at = m.scheduled_restart.get("schedule")
            out.append(ScheduledAction("restart", str(at), m.name, None,
                                       f"scheduled_restart of {m.name} ({m.pg_state_source or 'Patroni'})", overdue(at)))
    return out


# --------------------------------------------------------------------------- member count


@dataclass(frozen=True)
class MemberCount:
    present: list[str]
    expected: int | None
    expected_source: str | None
    missing: list[str]  # names known to be members that have no key now
    evidence: list[str]


def member_count(facts: Facts, members: list[Member], expect: int | None) -> MemberCount:
    """The members with a key in the DCS against ``--expect-members`` or, without it, the members the
    DCS still knows of: ``/history`` leaders and the slots the leader keeps for members (``retain_slots``)."""
    present = sorted(m.name for m in members if m.in_dcs)
    present_slots = {slot_name(n) for n in present}
    known: dict[str, str] = {}
    for row in history(facts):
        if len(row) >= 5 and row[4] and str(row[4]) not in present:
            known.setdefault(str(row[4]), f"/history (leader of timeline {row[0] + 1 if isinstance(row[0], int) else '?'})")
    for s in facts.list_at("dcs.status.retain_slots"):
        if str(s) not in present_slots and not any(slot_name(k) == str(s) for k in known):
            known.setdefault(str(s), "/status retain_slots (the leader keeps its slot)")
    evidence = [f"member keys in the DCS: {', '.join(present) or 'none'}"]
    evidence += [f"{n}: known from {w}, no member key now" for n, w in sorted(known.items())]
    if expect is not None:
        return MemberCount(present, expect, "--expect-members", sorted(known), evidence)
    if known:
        return MemberCount(present, len(present) + len(known), "the DCS history", sorted(known), evidence)
    return MemberCount(present, None, None, [], evidence)


def rest_replication(facts: Facts, leader: str | None) -> list[dict[str, Any]] | None:
    """The leader's ``GET /patroni`` ``replication[]``: its pg_stat_replication as Patroni read it (patroni/api.py
    ``get_postgresql_status``, omitted when empty). [] when Patroni's query ran on a primary (``xlog.location``
    present) and listed nobody; None when its REST API did not answer or its query did not run."""
    body = rest_status(facts.rest_answers.get(leader or ""))
    if body is None:
        return None
    rep = body.get("replication")
    if isinstance(rep, list):
        return [r for r in rep if isinstance(r, dict)]
    xlog = body.get("xlog")
    return [] if isinstance(xlog, dict) and xlog.get("location") is not None else None
