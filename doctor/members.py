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


def merged(facts: Facts) -> list[dict[str, Any]]:
    """One row per member: name, host, role, state, timeline, LSNs, lag, sync, tags, pending restart."""
    leader = leader_name(facts)
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
        if name == leader or c.get("role") in ("leader", "standby_leader"):
            role = "Leader" if dcs_role != "standby_leader" else "Standby Leader"
        elif name in sync:
            role = "Sync Standby"
        else:
            role = "Replica"
        row["role"] = role
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
