"""The cluster's members as patronictl would list them, merged from the DCS keys and
the REST answers, with the source of each value noted when the two disagree.

Shared by the cluster view and the cluster checks (timelines, REST reachability), so
both judge the same table. Pure functions of the facts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from doctor.facts import Facts


def lsn_to_int(value: Any) -> int | None:
    """'0/404B328' or 67416872 -> 67416872."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    if "/" in text:
        hi, _, lo = text.partition("/")
        try:
            return (int(hi, 16) << 32) + int(lo, 16)
        except ValueError:
            return None
    return int(text) if text.isdigit() else None


def lsn_str(value: int | None) -> str | None:
    return None if value is None else f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def keys_read(facts: Facts) -> bool:
    return bool(facts.get("dcs.keys_read"))


def leader_name(facts: Facts) -> str | None:
    v = facts.get("dcs.leader")
    return str(v) if v else None


def _sync_names(facts: Facts) -> set[str]:
    sync = facts.get("dcs.sync")
    if not isinstance(sync, dict) or not sync.get("sync_standby"):
        return set()
    return {s.strip() for s in str(sync["sync_standby"]).split(",") if s.strip()}


def rest_answers(facts: Facts) -> dict[str, dict[str, Any]]:
    """{member: REST fetch result} for this node and every member probed."""
    members = facts.get("patroni_api.members")
    return members if isinstance(members, dict) else {}


def _rest_status(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(answer, dict) or answer.get("status") != 200 or not isinstance(answer.get("body"), dict):
        return None
    return answer["body"]


PRIMARY_ROLES = ("primary", "master")


def dcs_stale(facts: Facts) -> bool:
    """The keys were read from one etcd member's local (serializable) copy: etcd had no quorum."""
    return facts.get("dcs.keys_consistency") == "serializable"


def dcs_down(facts: Facts) -> str | None:
    """Why Patroni cannot use the DCS now (no quorum, nothing answers, keys unreadable), or None."""
    err = facts.get("dcs.error")
    if isinstance(err, dict) and err.get("kind") == "not-configured":
        return None
    q = facts.get("dcs.quorum")
    if isinstance(q, dict) and q and not q.get("has_quorum"):
        return (f"etcd has no quorum ({q.get('healthy', 0)} of {q.get('total')} members healthy, "
                f"{q.get('needed')} needed)")
    if facts.has("dcs") and not keys_read(facts):
        e = facts.get("dcs.keys_error") or err or {}
        return f"the DCS keys cannot be read ({e.get('kind', 'unknown')}: {e.get('message', '')})"
    return None


def live_role(facts: Facts, name: str) -> tuple[str | None, str]:
    """'primary', 'replica' or 'standby_leader' as the member itself says (its REST ``/patroni`` role,
    confirmed by ``pg_is_in_recovery()`` when its PostgreSQL was reached), and the evidence."""
    body = _rest_status(rest_answers(facts).get(name))
    pg = (facts.get("replication.members") or {}).get(name) if isinstance(facts.get("replication.members"), dict) else None
    rest_role = str(body.get("role")) if body and body.get("role") else None
    in_rec = pg.get("in_recovery") if isinstance(pg, dict) and pg.get("reachable") else None
    bits = []
    if rest_role:
        bits.append(f"REST role {rest_role}")
    if in_rec is not None:
        bits.append(f"pg_is_in_recovery() = {str(in_rec).lower()}")
    where = ", ".join(bits)
    if rest_role == "standby_leader":
        return "standby_leader", where
    if in_rec is not None:
        return ("replica" if in_rec else "primary"), where
    if rest_role in PRIMARY_ROLES:
        return "primary", where
    if rest_role in ("replica", "uninitialized"):
        return rest_role, where
    return None, where


def primary_view(facts: Facts) -> dict[str, Any]:
    """Who is the writable primary. The DCS leader key when the keys are current and the leader itself
    agrees; otherwise the members' own word (REST role, pg_is_in_recovery), since a leader key read
    from a quorum-less etcd member, or one whose holder demoted itself, promises nothing."""
    dcs_leader = leader_name(facts)
    names = sorted({m.get("name") for m in facts.get("dcs.members") or [] if isinstance(m, dict) and m.get("name")}
                   | set(rest_answers(facts)) | set((facts.get("replication.members") or {})
                                                   if isinstance(facts.get("replication.members"), dict) else ()))
    live = {n: live_role(facts, n) for n in names}
    primaries = [n for n, (r, _) in live.items() if r in ("primary", "standby_leader")]
    known = [n for n, (r, _) in live.items() if r]
    stale = dcs_stale(facts)
    leader_says = live.get(dcs_leader or "", (None, ""))[0]
    disagree = bool(dcs_leader) and leader_says in ("replica", "uninitialized")
    if dcs_leader and (leader_says in ("primary", "standby_leader") or (leader_says is None and not stale)):
        leader = dcs_leader
    elif (stale or disagree) and len(primaries) == 1:
        leader = primaries[0]
    else:
        leader = None
    unread = facts.has("dcs") and not keys_read(facts)
    if unread and not dcs_leader:  # REST /cluster then only echoes Patroni's cached, possibly stale, view
        leader = primaries[0] if len(primaries) == 1 else None
    trusted = not stale and not disagree and not unread
    return {"dcs_leader": dcs_leader, "leader": leader, "stale": stale, "keys_unread": unread,
            "disagree": disagree, "trusted": trusted, "primaries": primaries, "known": known,
            "live": {n: {"role": r, "evidence": w} for n, (r, w) in live.items()},
            "no_writable_primary": (stale or disagree) and not primaries and bool(known)}


def merged(facts: Facts) -> list[dict[str, Any]]:
    """One row per member: name, host, role, state, timeline, LSNs, lag, sync, tags, pending restart."""
    pv = primary_view(facts)
    leader = pv["leader"]
    sync = _sync_names(facts)
    optime = facts.get("dcs.status.optime") if isinstance(facts.get("dcs.status"), dict) else None
    dcs_members = {m["name"]: m for m in facts.get("dcs.members") or [] if isinstance(m, dict) and m.get("name")}
    rest = rest_answers(facts)
    cluster_rest = facts.get("patroni_api.cluster.body.members") or []
    rest_cluster = {m.get("name"): m for m in cluster_rest if isinstance(m, dict)}
    names = sorted(set(dcs_members) | set(rest) | (set(rest_cluster) if not keys_read(facts) else set()))
    rows = []
    for name in names:
        d = dcs_members.get(name) or {}
        r = _rest_status(rest.get(name))
        c = rest_cluster.get(name) or {}
        conn = urlparse(str(d.get("conn_url") or "")) if d.get("conn_url") else None
        row: dict[str, Any] = {"name": name, "in_dcs": bool(d), "rest": r is not None,
                               "host": (conn.hostname if conn else None) or c.get("host"),
                               "port": (conn.port if conn else None) or c.get("port"),
                               "api_url": d.get("api_url") or c.get("api_url") or (rest.get(name) or {}).get("api_url")}
        if rest.get(name) is not None and r is None:
            row["rest_error"] = (rest[name].get("error") or {"kind": "http", "message": f"HTTP {rest[name].get('status')}"})
        dcs_role = d.get("role") or c.get("role")
        live, live_where = (pv["live"].get(name) or {}).get("role"), (pv["live"].get(name) or {}).get("evidence")
        rest_leader = c.get("role") in ("leader", "standby_leader") and pv["trusted"]
        if name == leader or rest_leader:
            role = "Leader" if dcs_role != "standby_leader" and live != "standby_leader" else "Standby Leader"
        elif name in sync and pv["trusted"]:
            role = "Sync Standby"
        elif live == "replica" or (live is None and dcs_role in ("replica", "sync_standby", "quorum_standby")):
            role = "Replica"
        elif live == "uninitialized" or (live is None and dcs_role == "uninitialized") \
                or "uninitialized" in (d.get("state"), (r or {}).get("state")):
            role = "uninitialized"
        elif not d and keys_read(facts):
            role = "not in DCS"
        elif live == "primary":
            role = "primary (not leader)"
        else:
            role = "—"
        row["role"] = role
        row["live_role"] = live
        row["dcs_role"] = d.get("role")
        state_dcs = d.get("replication_state") if name != leader and d.get("replication_state") else d.get("state")
        state_rest = None
        if r is not None:
            state_rest = r.get("replication_state") if role != "Leader" and r.get("replication_state") else r.get("state")
        row["state"] = state_rest or state_dcs or c.get("state")
        tl_dcs, tl_rest = d.get("timeline"), (r or {}).get("timeline")
        row["timeline"] = tl_rest if tl_rest is not None else tl_dcs
        xlog = (r or {}).get("xlog") or {}
        recv = lsn_to_int(xlog.get("received_location")) if r else None
        replay = lsn_to_int(xlog.get("replayed_location")) if r else None
        location = lsn_to_int(xlog.get("location")) if r else None
        if recv is None:
            recv = lsn_to_int(d.get("receive_lsn"))
        if replay is None:
            replay = lsn_to_int(d.get("replay_lsn"))
        row["receive_lsn"], row["replay_lsn"] = recv, replay
        row["lsn"] = location if location is not None else (
            max(x for x in (recv, replay) if x is not None) if recv is not None or replay is not None
            else lsn_to_int(d.get("xlog_location")))
        if role != "Leader" and isinstance(optime, int):
            base = recv if recv is not None else row["lsn"]
            row["lag_bytes"] = max(0, optime - base) if base is not None else None
            row["replay_lag_bytes"] = max(0, optime - replay) if replay is not None else None
        row["tags"] = (r or {}).get("tags") or d.get("tags") or c.get("tags") or {}
        row["pending_restart"] = bool((r or {}).get("pending_restart") or d.get("pending_restart"))
        row["system_identifier"] = (r or {}).get("database_system_identifier")
        disagree = []
        if name == pv["dcs_leader"] and name != leader and live:
            row["role_note"] = "DCS: Leader" + (", stale" if pv["stale"] else "")
            disagree.append(f"role: DCS leader key names it, but it says {live_where}"
                            + (" (DCS read from a quorum-less etcd member, possibly stale)" if pv["stale"] else ""))
        elif live == "primary" and name != leader:
            row["role_note"] = "no leader key"
            disagree.append(f"role: {live_where}, but it does not hold the leader key")
        if r is not None and d:
            if state_rest and state_dcs and state_rest != state_dcs:
                disagree.append(f"state: DCS {state_dcs}, REST {state_rest}")
            if tl_rest is not None and tl_dcs is not None and tl_rest != tl_dcs:
                disagree.append(f"timeline: DCS {tl_dcs}, REST {tl_rest}")
        row["source"] = "DCS+REST" if (d and r is not None) else ("DCS" if d else ("REST" if r is not None else "REST /cluster"))
        if disagree:
            row["disagree"] = disagree
        rows.append(row)
    return rows


def history(facts: Facts) -> list[list[Any]]:
    """The /history rows (``[tl, switch_lsn, reason, ts, new_leader]``), from the DCS or REST."""
    h = facts.get("dcs.history")
    if not isinstance(h, list):
        h = facts.get("patroni_api.history.body")
    return [row for row in h or [] if isinstance(row, list) and len(row) >= 2]
