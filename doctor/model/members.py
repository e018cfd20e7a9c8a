"""The cluster's members as patronictl would list them, merged from the DCS keys and the REST
answers, with the source of each value noted when the two disagree; and who leads.

Two leaders, never to be confused:

- ``dcs_leader``: the member named by the ``/leader`` key as it was read. A key read from a
  quorum-less etcd member, or one whose holder has since demoted itself, promises nothing.
- ``writable_leader``: the member that is actually a writable primary: the DCS leader when the keys
  are current and the member agrees, otherwise the one member that says so itself (REST role,
  ``pg_is_in_recovery()``), otherwise nobody.

Pure functions of the facts; built once per snapshot through :func:`doctor.model.model_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from doctor.facts import Facts
from doctor.model.lsn import lsn_to_int

PRIMARY_ROLES = ("primary", "master")


@dataclass(frozen=True)
class LiveRole:
    """A member's role in its own words, and the evidence for it."""

    role: str | None  # 'primary', 'replica', 'standby_leader', 'uninitialized' or None (nothing answered)
    evidence: str


@dataclass(frozen=True)
class LeaderView:
    """Who leads: the DCS key's word against the members' own."""

    dcs_leader: str | None
    writable_leader: str | None
    stale: bool  # keys read from one etcd member's local copy: etcd had no quorum
    keys_unread: bool
    disagree: bool  # the DCS leader says it is a replica
    trusted: bool  # the DCS view can be taken at its word
    primaries: list[str]
    known: list[str]  # members whose role is known from themselves
    live: dict[str, LiveRole]
    no_writable_primary: bool


@dataclass(frozen=True)
class Member:
    """One row of the member table: the DCS member key and the member's REST answer, merged."""

    name: str
    in_dcs: bool
    rest: bool  # its REST /patroni answered with a status
    host: str | None
    port: int | None
    api_url: str | None
    role: str  # as patronictl shows it: 'Leader', 'Sync Standby', 'Replica', ... or '—'
    live_role: str | None
    dcs_role: str | None
    state: str | None
    timeline: int | None
    receive_lsn: int | None
    replay_lsn: int | None
    lsn: int | None
    tags: dict[str, Any]
    pending_restart: bool
    system_identifier: str | None
    source: str  # 'DCS+REST', 'DCS', 'REST' or 'REST /cluster'
    rest_error: dict[str, Any] | None = None
    lag_bytes: int | None = None  # against /status optime, for members other than the leader
    replay_lag_bytes: int | None = None
    role_note: str | None = None
    disagree: tuple[str, ...] = field(default_factory=tuple)
    # Patroni's own word for its PostgreSQL (``state``: running, stopped, start failed, ...), not the
    # ``replication_state`` that /cluster and patronictl show for replicas; and where it was read
    pg_state: str | None = None
    pg_state_source: str | None = None
    replication_state: str | None = None
    patroni_version: str | None = None
    pending_restart_reason: dict[str, Any] = field(default_factory=dict)  # {parameter: {old_value, new_value}}
    scheduled_restart: dict[str, Any] | None = None  # {'schedule': iso time, ...}


def sync_names(facts: Facts) -> set[str]:
    """The members the ``/sync`` key lists (Patroni's ``SyncState.voters``, patroni/dcs/__init__.py)."""
    standby = facts.dcs_sync.get("sync_standby")
    return {s.strip() for s in str(standby).split(",") if s.strip()} if standby else set()


def rest_status(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    """The body of a member's ``GET /patroni`` when it answered 200 with JSON, else None."""
    if not isinstance(answer, dict) or answer.get("status") != 200 or not isinstance(answer.get("body"), dict):
        return None
    return answer["body"]


def dcs_stale(facts: Facts) -> bool:
    """The keys were read from one etcd member's local (serializable) copy: etcd had no quorum."""
    return facts.get("dcs.keys_consistency") == "serializable"


def dcs_down(facts: Facts) -> str | None:
    """Why Patroni cannot use the DCS now (no quorum, nothing answers, keys unreadable), or None."""
    err = facts.dict_at("dcs.error")
    if err and err.get("kind") == "not-configured":
        return None
    q = facts.dict_at("dcs.quorum")
    if q and not q.get("has_quorum"):
        return (f"etcd has no quorum ({q.get('healthy', 0)} of {q.get('total')} members healthy, "
                f"{q.get('needed')} needed)")
    if facts.has("dcs") and not facts.dcs_keys_read:
        e = facts.dcs_keys_error
        return f"the DCS keys cannot be read ({e.get('kind', 'unknown')}: {e.get('message', '')})"
    return None


def live_role(facts: Facts, name: str) -> LiveRole:
    """'primary', 'replica' or 'standby_leader' as the member itself says (its REST ``/patroni`` role,
    confirmed by ``pg_is_in_recovery()`` when its PostgreSQL was reached), and the evidence."""
    body = rest_status(facts.rest_answers.get(name))
    pg = facts.pg_members.get(name) or {}
    rest_role = str(body.get("role")) if body and body.get("role") else None
    in_rec = pg.get("in_recovery") if pg.get("reachable") else None
    bits = []
    if rest_role:
        bits.append(f"REST role {rest_role}")
    if in_rec is not None:
        bits.append(f"pg_is_in_recovery() = {str(in_rec).lower()}")
    where = ", ".join(bits)
    if rest_role == "standby_leader":
        return LiveRole("standby_leader", where)
    if in_rec is not None:
        return LiveRole("replica" if in_rec else "primary", where)
    if rest_role in PRIMARY_ROLES:
        # A primary Patroni is demoting or restarting keeps its role while PostgreSQL is stopping or starting:
        # it says "primary" but accepts no writes, so it is no writable primary (and no split brain).
        state = body.get("state") if body else None
        if state not in (None, "running"):
            return LiveRole(None, f"{where}, REST state {state}")
        return LiveRole("primary", where)
    if rest_role in ("replica", "uninitialized"):
        return LiveRole(rest_role, where)
    return LiveRole(None, where)


def leader_view(facts: Facts) -> LeaderView:
    """Who is the writable primary. The DCS leader key when the keys are current and the leader itself
    agrees; otherwise the members' own word (REST role, pg_is_in_recovery), since a leader key read
    from a quorum-less etcd member, or one whose holder demoted itself, promises nothing."""
    dcs_leader = facts.dcs_leader
    names = sorted({m["name"] for m in facts.dcs_members} | set(facts.rest_answers) | set(facts.pg_members))
    live = {n: live_role(facts, n) for n in names}
    primaries = [n for n, lr in live.items() if lr.role in ("primary", "standby_leader")]
    known = [n for n, lr in live.items() if lr.role]
    stale = dcs_stale(facts)
    leader_says = live[dcs_leader].role if dcs_leader in live else None
    disagree = bool(dcs_leader) and leader_says in ("replica", "uninitialized")
    if dcs_leader and (leader_says in ("primary", "standby_leader") or (leader_says is None and not stale)):
        writable = dcs_leader
    elif (stale or disagree) and len(primaries) == 1:
        writable = primaries[0]
    else:
        writable = None
    unread = facts.has("dcs") and not facts.dcs_keys_read
    if unread and not dcs_leader:  # REST /cluster then only echoes Patroni's cached, possibly stale, view
        writable = primaries[0] if len(primaries) == 1 else None
    return LeaderView(dcs_leader=dcs_leader, writable_leader=writable, stale=stale, keys_unread=unread,
                      disagree=disagree, trusted=not stale and not disagree and not unread, primaries=primaries,
                      known=known, live=live, no_writable_primary=(stale or disagree) and not primaries and bool(known))


def _role(name: str, lv: LeaderView, d: dict[str, Any], r: dict[str, Any] | None, c: dict[str, Any],
          in_sync: bool, keys_read: bool) -> str:
    """The role patronictl would show, corrected by what the member says of itself."""
    dcs_role = d.get("role") or c.get("role")
    live = lv.live[name].role if name in lv.live else None
    rest_leader = c.get("role") in ("leader", "standby_leader") and lv.trusted
    if name == lv.writable_leader or rest_leader:
        return "Leader" if dcs_role != "standby_leader" and live != "standby_leader" else "Standby Leader"
    if in_sync and lv.trusted:
        return "Sync Standby"
    if live == "replica" or (live is None and dcs_role in ("replica", "sync_standby", "quorum_standby")):
        return "Replica"
    if live == "uninitialized" or (live is None and dcs_role == "uninitialized") \
            or "uninitialized" in (d.get("state"), (r or {}).get("state")):
        return "uninitialized"
    if not d and keys_read:
        return "not in DCS"
    if live == "primary":
        return "primary (not leader)"
    return "—"


def members(facts: Facts, lv: LeaderView) -> list[Member]:
    """One row per member: name, host, role, state, timeline, LSNs, lag, sync, tags, pending restart."""
    leader = lv.writable_leader
    sync = sync_names(facts)
    optime = facts.dcs_optime
    keys_read = facts.dcs_keys_read
    dcs_members = {m["name"]: m for m in facts.dcs_members}
    rest = facts.rest_answers
    rest_cluster = {m.get("name"): m for m in facts.dicts_at("patroni_api.cluster.body.members")}
    names = sorted(set(dcs_members) | set(rest) | (set(rest_cluster) if not keys_read else set()))
    rows = []
    for name in names:
        d = dcs_members.get(name) or {}
        r = rest_status(rest.get(name))
        c = rest_cluster.get(name) or {}
        conn = urlparse(str(d.get("conn_url") or "")) if d.get("conn_url") else None
        rest_error = None
        if rest.get(name) is not None and r is None:
            rest_error = rest[name].get("error") or {"kind": "http", "message": f"HTTP {rest[name].get('status')}"}
        live = lv.live.get(name) or LiveRole(None, "")
        role = _role(name, lv, d, r, c, name in sync, keys_read)
        state_dcs = d.get("replication_state") if name != leader and d.get("replication_state") else d.get("state")
        state_rest = None
        if r is not None:
            state_rest = r.get("replication_state") if role != "Leader" and r.get("replication_state") else r.get("state")
        tl_dcs, tl_rest = d.get("timeline"), (r or {}).get("timeline")
        xlog = (r or {}).get("xlog") or {}
        recv = lsn_to_int(xlog.get("received_location")) if r else None
        replay = lsn_to_int(xlog.get("replayed_location")) if r else None
        location = lsn_to_int(xlog.get("location")) if r else None
        if recv is None:
            recv = lsn_to_int(d.get("receive_lsn"))
        if replay is None:
            replay = lsn_to_int(d.get("replay_lsn"))
        lsn = location if location is not None else (
            max(x for x in (recv, replay) if x is not None) if recv is not None or replay is not None
            else lsn_to_int(d.get("xlog_location")))
        lag_bytes = replay_lag_bytes = None
        if role != "Leader" and optime is not None:
            base = recv if recv is not None else lsn
            lag_bytes = max(0, optime - base) if base is not None else None
            replay_lag_bytes = max(0, optime - replay) if replay is not None else None
        role_note = None
        disagree = []
        if name == lv.dcs_leader and name != leader and live.role:
            role_note = "DCS: Leader" + (", stale" if lv.stale else "")
            disagree.append(f"role: DCS leader key names it, but it says {live.evidence}"
                            + (" (DCS read from a quorum-less etcd member, possibly stale)" if lv.stale else ""))
        elif live.role == "primary" and name != leader:
            role_note = "no leader key"
            disagree.append(f"role: {live.evidence}, but it does not hold the leader key")
        if r is not None and d:
            if state_rest and state_dcs and state_rest != state_dcs:
                disagree.append(f"state: DCS {state_dcs}, REST {state_rest}")
            if tl_rest is not None and tl_dcs is not None and tl_rest != tl_dcs:
                disagree.append(f"timeline: DCS {tl_dcs}, REST {tl_rest}")
        rows.append(Member(
            name=name, in_dcs=bool(d), rest=r is not None,
            host=(conn.hostname if conn else None) or c.get("host"),
            port=(conn.port if conn else None) or c.get("port"),
            api_url=d.get("api_url") or c.get("api_url") or (rest.get(name) or {}).get("api_url"),
            rest_error=rest_error, role=role, live_role=live.role, dcs_role=d.get("role"),
            state=state_rest or state_dcs or c.get("state"), timeline=tl_rest if tl_rest is not None else tl_dcs,
            receive_lsn=recv, replay_lsn=replay, lsn=lsn, lag_bytes=lag_bytes, replay_lag_bytes=replay_lag_bytes,
            tags=(r or {}).get("tags") or d.get("tags") or c.get("tags") or {},
            pending_restart=bool((r or {}).get("pending_restart") or d.get("pending_restart") or c.get("pending_restart")),
            system_identifier=(r or {}).get("database_system_identifier"),
            source="DCS+REST" if (d and r is not None) else ("DCS" if d else ("REST" if r is not None else "REST /cluster")),
            role_note=role_note, disagree=tuple(disagree), **_patroni_words(name, d, r, c, rest.get(name))))
    return rows


def _patroni_words(name: str, d: dict[str, Any], r: dict[str, Any] | None, c: dict[str, Any],
                   answer: dict[str, Any] | None) -> dict[str, Any]:
    """What Patroni itself says of the member: its PostgreSQL state (REST ``/patroni`` first, the fresher
    source, then the member key, then this node's ``/cluster``, whose ``state`` is the replication state for
    replicas), replication state, version, pending restart reasons and scheduled restart."""
    if r is not None and r.get("state"):
        pg_state, where = str(r["state"]), f"REST {(answer or {}).get('url') or name + ' /patroni'}"
    elif d.get("state"):
        pg_state, where = str(d["state"]), "DCS member key"
    elif c.get("state"):
        pg_state, where = str(c["state"]), "REST /cluster"
    else:
        pg_state, where = None, None
    if pg_state in ("streaming", "in archive recovery"):  # /cluster shows replication_state in place of state
        pg_state = "running"
    version = ((r or {}).get("patroni") or {}).get("version") if isinstance((r or {}).get("patroni"), dict) else None
    reason = (r or {}).get("pending_restart_reason") or d.get("pending_restart_reason") or c.get("pending_restart_reason")
    sched = (r or {}).get("scheduled_restart") or d.get("scheduled_restart") or c.get("scheduled_restart")
    repl = (r or {}).get("replication_state") or d.get("replication_state") or (
        c.get("state") if c.get("state") in ("streaming", "in archive recovery") else None)
    return {"pg_state": pg_state, "pg_state_source": where, "replication_state": repl,
            "patroni_version": str(version or d.get("version") or "") or None,
            "pending_restart_reason": reason if isinstance(reason, dict) else {},
            "scheduled_restart": sched if isinstance(sched, dict) and sched.get("schedule") else None}


def history(facts: Facts) -> list[list[Any]]:
    """The /history rows (``[tl, switch_lsn, reason, ts, new_leader]``), from the DCS or REST."""
    h = facts.get("dcs.history")
    if not isinstance(h, list):
        h = facts.list_at("patroni_api.history.body")
    return [row for row in h if isinstance(row, list) and len(row) >= 2]
