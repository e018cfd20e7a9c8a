"""Shared judgement about replication: the cluster's sync settings, one row per member with
positions, lag, sync state, tags and slot, and the three verdicts (writes, failover, what
``synchronous_node_count`` means here).

Used by the ``replication`` view and by checks/replication.py so the table a DBA reads and
the findings that fail a run are computed by the same code. Pure functions of the facts.

The rules follow Patroni's own code (4.x): a replica may be promoted automatically unless it
is tagged ``nofailover`` (or ``failover_priority`` <= 0), its WAL position (max of received and
replayed) is more than ``maximum_lag_on_failover`` behind the leader, or, in ``synchronous_mode:
on``, it is not listed in ``/sync``; sync candidates are running, streaming, untagged ``nosync``
and not cascading; with fewer candidates than ``synchronous_node_count`` Patroni lowers the
count, and in strict mode with none it sets ``synchronous_standby_names = '*'``: commits block.
"""

from __future__ import annotations

import re
from typing import Any

from doctor.facts import Facts
from doctor.members import dcs_down, lsn_str, lsn_to_int, merged, primary_view
from doctor.units import human_bytes, human_seconds

DEFAULT_MAX_LAG_ON_FAILOVER = 1048576
DEFAULT_SLOT_RETAINED_BYTES = 1024**3
RUNNING_STATES = ("running", "streaming", "in archive recovery")
TAG_NAMES = ("nofailover", "failover_priority", "nosync", "sync_priority", "noloadbalance", "clonefrom",
             "replicatefrom", "nostream")


def slot_name(member: str) -> str:
    """Patroni's ``slot_name_from_member_name``: the physical slot a member streams from."""
    def repl(m: re.Match) -> str:
        c = m.group(0)
        return "_" if c in "-." else f"u{ord(c):04d}"
    return re.sub("[^a-z0-9_]", repl, member.lower())[:63]


def truthy(value: Any) -> bool:
    """Patroni's reading of a YAML/JSON boolean-ish setting."""
    if isinstance(value, str):
        return value.strip().lower() in ("on", "true", "yes", "1", "quorum")
    return bool(value)


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------- settings


def settings(facts: Facts) -> dict[str, Any]:
    """The replication settings as live in the DCS ``/config`` (REST ``/config`` as a fallback)."""
    cfg = facts.get("dcs.config")
    prefix = facts.get("dcs.prefix") or "/service/<scope>/"
    source = f"{prefix}config in the DCS"
    if not isinstance(cfg, dict):
        cfg = facts.get("patroni_api.config.body")
        source = f"{facts.get('patroni_api.url') or 'this node'}/config (REST)"
    known = isinstance(cfg, dict)
    cfg = cfg if known else {}
    raw_mode = cfg.get("synchronous_mode")
    mode = "quorum" if str(raw_mode).lower() == "quorum" else ("on" if truthy(raw_mode) else "off")
    pg = cfg.get("postgresql") if isinstance(cfg.get("postgresql"), dict) else {}
    return {
        "known": known,
        "source": source if known else "unknown (neither the DCS nor the REST /config could be read)",
        "synchronous_mode": mode,
        "synchronous_mode_strict": truthy(cfg.get("synchronous_mode_strict")),
        "synchronous_node_count": max(1, _int(cfg.get("synchronous_node_count"), 1) or 1),
        "maximum_lag_on_failover": _int(cfg.get("maximum_lag_on_failover"), DEFAULT_MAX_LAG_ON_FAILOVER),
        "maximum_lag_on_syncnode": _int(cfg.get("maximum_lag_on_syncnode"), -1),
        "check_timeline": truthy(cfg.get("check_timeline")),
        "pause": truthy(cfg.get("pause")),
        "use_slots": truthy(pg.get("use_slots", True)),
        "permanent_slots": sorted((cfg.get("slots") or {}).keys()) if isinstance(cfg.get("slots"), dict) else [],
        "standby_cluster": bool(cfg.get("standby_cluster")),
    }


def set_command(name: str, value: Any) -> str:
    """The ``-s`` argument of ``patronictl edit-config`` for one setting."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"--set {name}={value}"


# --------------------------------------------------------------------------- members


def _pg_members(facts: Facts) -> dict[str, dict[str, Any]]:
    m = facts.get("replication.members")
    return m if isinstance(m, dict) else {}


def _ok(d: Any) -> dict[str, Any]:
    return d if isinstance(d, dict) and "error" not in d else {}


def _list(d: Any) -> list[dict[str, Any]]:
    return [x for x in d if isinstance(x, dict)] if isinstance(d, list) else []


def leader_name(facts: Facts) -> str | None:
    """The writable leader: the DCS leader key unless it is stale or its holder says it is a replica."""
    return primary_view(facts)["leader"]


def leader_pg(facts: Facts) -> dict[str, Any]:
    """The leader's PostgreSQL facts when it was reached and is not in recovery, else {}."""
    leader = leader_name(facts)
    pg = _pg_members(facts).get(leader or "") or {}
    return pg if pg.get("reachable") and pg.get("in_recovery") is False else {}


def reference_lsn(facts: Facts) -> tuple[int | None, str]:
    """The leader's WAL position lag is measured against, and where it came from."""
    pos = _ok(leader_pg(facts).get("position"))
    if pos.get("current_lsn_bytes") is not None:
        return int(pos["current_lsn_bytes"]), "pg_current_wal_lsn() on the leader"
    optime = facts.get("dcs.status.optime")
    if isinstance(optime, int):
        return optime, "/status optime in the DCS"
    return None, "unknown"


def _tags(row_tags: Any) -> dict[str, Any]:
    tags = row_tags if isinstance(row_tags, dict) else {}
    nofailover = tags.get("nofailover")
    prio = _int(tags.get("failover_priority"))
    eff_nofailover = bool(nofailover) if nofailover is not None else (prio is not None and prio <= 0)
    nosync = tags.get("nosync")
    sprio = _int(tags.get("sync_priority"))
    eff_nosync = bool(nosync) if nosync is not None else (sprio is not None and sprio <= 0)
    return {"tags": {k: tags[k] for k in tags}, "nofailover": eff_nofailover, "nosync": eff_nosync,
            "failover_priority": 0 if nofailover else (prio if prio is not None else 1)}


def _rest_xlog(facts: Facts, name: str) -> dict[str, Any]:
    """The ``xlog`` object of a member's ``GET /patroni`` (received/replayed location, paused)."""
    answer = (facts.get("patroni_api.members") or {}).get(name) if isinstance(facts.get("patroni_api.members"), dict) else None
    body = answer.get("body") if isinstance(answer, dict) and answer.get("status") == 200 else None
    xlog = body.get("xlog") if isinstance(body, dict) else None
    return xlog if isinstance(xlog, dict) else {}


def _known_absent(facts: Facts, present: set[str]) -> list[str]:
    """Members with no key in the DCS now that the leader still keeps a slot for (``retain_slots``)."""
    retain = facts.get("dcs.status.retain_slots")
    names = [str(x) for x in retain] if isinstance(retain, list) else []
    leader = leader_name(facts)
    present_slots = {slot_name(n) for n in present}
    return sorted(n for n in names if n not in present_slots and n != (slot_name(leader) if leader else None))


def members(facts: Facts) -> list[dict[str, Any]]:
    """One row per member (plus members gone from the DCS whose slot the leader keeps)."""
    cfg = settings(facts)
    leader = leader_name(facts)
    pgm = _pg_members(facts)
    lpg = leader_pg(facts)
    walsenders = {r.get("application_name"): r for r in _list(lpg.get("stat_replication"))}
    leader_slots = {s.get("slot_name"): s for s in _list(lpg.get("slots"))}
    ref, ref_source = reference_lsn(facts)
    sync_key = facts.get("dcs.sync") if isinstance(facts.get("dcs.sync"), dict) else {}
    sync_names = {s.strip() for s in str(sync_key.get("sync_standby") or "").split(",") if s.strip()}
    dcs_members = {m.get("name"): m for m in facts.get("dcs.members") or [] if isinstance(m, dict)}
    base = merged(facts)
    rows: list[dict[str, Any]] = []
    leader_tl = None
    for b in base:
        if b["name"] == leader:
            leader_tl = _ok(lpg.get("position")).get("timeline") or b.get("timeline")
    for b in base:
        name = b["name"]
        pg = pgm.get(name) or {}
        is_leader = b["role"] in ("Leader", "Standby Leader")
        role = b["role"]
        if role == "Sync Standby" and cfg["synchronous_mode"] == "quorum":
            role = "Quorum Standby"
        row: dict[str, Any] = {"name": name, "host": b.get("host"), "port": b.get("port"), "role": role,
                               "state": b.get("state"), "timeline": b.get("timeline"), "in_dcs": b.get("in_dcs"),
                               "source": b.get("source"), "pg_reachable": bool(pg.get("reachable")),
                               "role_note": b.get("role_note"), "disagree": b.get("disagree")}
        if pg and not pg.get("reachable"):
            row["pg_error"] = pg.get("error")
        if pg.get("reachable") and pg.get("timeline") is not None:
            row["timeline"] = pg["timeline"]
        row.update(_tags(b.get("tags")))
        if is_leader:
            pos = _ok(pg.get("position"))
            lsn = pos.get("current_lsn_bytes") if pos else None
            if lsn is None:
                lsn = b.get("lsn") if b.get("lsn") is not None else (ref if ref_source.startswith("/status") else None)
            row.update(receive_lsn_bytes=None, replay_lsn_bytes=None, lsn_bytes=lsn, lsn=lsn_str(lsn),
                       lsn_source="PostgreSQL" if pos else "DCS",
                       synchronous_standby_names=(pg.get("settings") or {}).get("synchronous_standby_names"),
                       sync_waiters=_ok(pg.get("sync_waiters")) or None)
            rows.append(row)
            continue
        _replica_positions(row, b, pg, walsenders.get(name), dcs_members.get(name) or {}, ref, _rest_xlog(facts, name))
        ws = walsenders.get(name)
        row["walsender_state"] = ws.get("state") if ws else None
        row["sync_state"] = ws.get("sync_state") if ws else None
        row["sync_priority"] = ws.get("sync_priority") if ws else None
        for k in ("write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds"):
            row[k] = ws.get(k) if ws else None
        row["in_sync_key"] = name in sync_names
        s = leader_slots.get(slot_name(name))
        row["slot"] = _slot_row(slot_name(name), s, bool(lpg))
        rows.append(row)
    present = {r["name"] for r in rows}
    for name in _known_absent(facts, present):
        s = leader_slots.get(name)
        rows.append({"name": name, "host": None, "port": None, "role": "Replica", "state": "absent",
                     "timeline": None, "in_dcs": False, "source": "slot kept by the leader (/status retain_slots)",
                     "pg_reachable": False, **_tags({}), "receive_lsn": None, "receive_lsn_bytes": None,
                     "replay_lsn": None, "replay_lsn_bytes": None, "lsn_source": None,
                     "receive_lag_bytes": None, "replay_lag_bytes": None, "failover_lag_bytes": None,
                     "lag_source": None, "streaming": False, "wal_receiver_status": None, "replay_paused": None,
                     "replay_pause_state": None, "lag_seconds": None, "walsender_state": None, "sync_state": None,
                     "sync_priority": None, "write_lag_seconds": None, "flush_lag_seconds": None,
                     "replay_lag_seconds": None, "in_sync_key": name in sync_names,
                     "slot": _slot_row(name, s, bool(lpg))})
    for row in rows:
        if row["role"] in ("Leader", "Standby Leader"):
            row["failover"] = None
            row["sync_candidate"] = None
            continue
        row["failover"] = _failover_row(row, cfg, sync_key, sync_names, leader_tl)
        row["sync_candidate"] = _sync_candidate(row, cfg)
    return rows


def _replica_positions(row: dict[str, Any], b: dict[str, Any], pg: dict[str, Any], ws: dict[str, Any] | None,
                       dcs_member: dict[str, Any], ref: int | None, rest_xlog: dict[str, Any]) -> None:
    """Receive/replay LSN from the replica itself, else the leader's walsender, else the DCS; lag against ``ref``."""
    pos = _ok(pg.get("position")) if pg.get("reachable") and pg.get("in_recovery") else {}
    recv = replay = None
    source = None
    if pos:
        recv, replay, source = pos.get("receive_lsn_bytes"), pos.get("replay_lsn_bytes"), "PostgreSQL"
    elif ws:
        recv, replay, source = ws.get("flush_lsn_bytes"), ws.get("replay_lsn_bytes"), "pg_stat_replication"
    if recv is None and replay is None:
        recv, replay = lsn_to_int(dcs_member.get("receive_lsn")), lsn_to_int(dcs_member.get("replay_lsn"))
        if recv is None and replay is None and b.get("lsn") is not None:
            recv = b.get("lsn")
        source = "DCS" if recv is not None or replay is not None else None
    row.update(receive_lsn_bytes=recv, receive_lsn=lsn_str(recv), replay_lsn_bytes=replay, replay_lsn=lsn_str(replay),
               lsn_source=source)
    position = max([x for x in (recv, replay) if x is not None], default=None)
    row["receive_lag_bytes"] = max(0, ref - recv) if ref is not None and recv is not None else None
    row["replay_lag_bytes"] = max(0, ref - replay) if ref is not None and replay is not None else None
    row["failover_lag_bytes"] = max(0, ref - position) if ref is not None and position is not None else None
    row["lag_source"] = None if ref is None or source is None else (
        "PostgreSQL" if source != "DCS" else "DCS member key")
    wr = pg.get("wal_receiver") if pg.get("reachable") and pg.get("in_recovery") else None
    if pg.get("reachable") and pg.get("in_recovery") and isinstance(wr, dict) and "error" in wr:
        wr = None
        row["streaming"] = None
    elif pg.get("reachable") and pg.get("in_recovery"):
        row["streaming"] = bool(wr) and wr.get("status") == "streaming"
    elif ws:
        row["streaming"] = ws.get("state") == "streaming"
    elif b.get("state") in ("streaming",):
        row["streaming"] = True
    elif b.get("state") in ("running", "in archive recovery", "stopped", "crashed", "starting"):
        row["streaming"] = False
    else:
        row["streaming"] = None
    row["wal_receiver_status"] = wr.get("status") if isinstance(wr, dict) else None
    row["wal_receiver_sender"] = (f"{wr.get('sender_host')}:{wr.get('sender_port')}"
                                  if isinstance(wr, dict) and wr.get("sender_host") else None)
    row["wal_receiver_slot"] = wr.get("slot_name") if isinstance(wr, dict) else None
    paused = pos.get("replay_paused") if pos else None
    if paused is None:
        paused = rest_xlog.get("paused")
    row["replay_paused"] = paused
    state = pg.get("replay_pause_state")
    row["replay_pause_state"] = state if isinstance(state, str) else None
    ages = [ws.get("replay_lag_seconds")] if ws and ws.get("replay_lag_seconds") is not None else []
    if pos and (row["replay_lag_bytes"] or 0) > 0 and pos.get("last_replay_age_seconds") is not None:
        ages.append(pos["last_replay_age_seconds"])
    row["lag_seconds"] = round(max(ages), 3) if ages else None
    row["lag_seconds_source"] = None if not ages else (
        "age of the last replayed transaction (replica behind)" if len(ages) > 1 and ages[-1] >= ages[0]
        or (not ws or ws.get("replay_lag_seconds") is None) else "pg_stat_replication.replay_lag")


def _slot_row(name: str, s: dict[str, Any] | None, leader_known: bool) -> dict[str, Any]:
    if s is None:
        return {"name": name, "exists": False if leader_known else None}
    return {"name": name, "exists": True, "active": s.get("active"), "retained_bytes": s.get("retained_bytes"),
            "wal_status": s.get("wal_status"), "restart_lsn": s.get("restart_lsn")}


def _failover_row(row: dict[str, Any], cfg: dict[str, Any], sync_key: dict[str, Any], sync_names: set[str],
                  leader_tl: Any) -> dict[str, Any]:
    """Would Patroni let this replica win the leader race now, and if not, why (ha.py rules)."""
    reasons: list[str] = []
    if not row.get("in_dcs"):
        reasons.append("no member key in the DCS (Patroni is not running there)")
    elif row.get("state") not in RUNNING_STATES:
        reasons.append(f"PostgreSQL is {row.get('state') or 'in an unknown state'}")
    if row.get("nofailover"):
        tags = row.get("tags") or {}
        reasons.append("tagged nofailover" if tags.get("nofailover") else
                       f"failover_priority {tags.get('failover_priority')}")
    lag, limit = row.get("failover_lag_bytes"), cfg["maximum_lag_on_failover"]
    if row.get("in_dcs") and row.get("state") in RUNNING_STATES:
        if lag is None:
            reasons.append("its WAL position is unknown")
        elif limit is not None and lag > limit:
            reasons.append(f"lag {human_bytes(lag)} > maximum_lag_on_failover {human_bytes(limit)}")
        if row.get("streaming") is False:
            reasons.append(f"not streaming (state {row.get('state')})")
    if cfg["synchronous_mode"] == "on" and sync_key.get("leader") and row["name"] not in sync_names \
            and row.get("in_dcs") and row.get("state") in RUNNING_STATES:
        reasons.append("not in /sync (in synchronous_mode only its members may be promoted; it lists "
                       + (", ".join(sorted(sync_names)) if sync_names else "none") + ")")
    if cfg["check_timeline"] and isinstance(leader_tl, int) and isinstance(row.get("timeline"), int) \
            and row["timeline"] < leader_tl:
        reasons.append(f"timeline {row['timeline']} behind the cluster's {leader_tl} (check_timeline)")
    notes = []
    if row.get("replay_paused"):
        notes.append("WAL replay is paused")
    if (row.get("replay_lag_bytes") or 0) > (lag or 0) and (row.get("replay_lag_bytes") or 0) > 0:
        notes.append(f"{human_bytes(row['replay_lag_bytes'])} received but not replayed")
    return {"candidate": not reasons, "reasons": reasons, "lag_bytes": lag, "notes": notes}


def _sync_candidate(row: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Could this replica be (or stay) a synchronous standby: Patroni's _ReplicaList rules."""
    reasons: list[str] = []
    tags = row.get("tags") or {}
    if not row.get("in_dcs"):
        reasons.append("no member key in the DCS")
    elif row.get("state") not in RUNNING_STATES:
        reasons.append(f"PostgreSQL is {row.get('state') or 'in an unknown state'}")
    if row.get("nosync"):
        reasons.append("tagged nosync" if tags.get("nosync") else f"sync_priority {tags.get('sync_priority')}")
    if tags.get("nostream"):
        reasons.append("tagged nostream")
    if tags.get("replicatefrom"):
        reasons.append(f"cascades from {tags.get('replicatefrom')} (replicatefrom)")
    if row.get("in_dcs") and row.get("walsender_state") != "streaming" and row.get("streaming") is not True:
        reasons.append("not streaming from the leader")
    return {"eligible": not reasons, "reasons": reasons}


def replicas(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["role"] not in ("Leader", "Standby Leader")]


def leader_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in rows if r["role"] in ("Leader", "Standby Leader")), None)


# --------------------------------------------------------------------------- verdicts


def _names(rows: list[dict[str, Any]]) -> str:
    return ", ".join(r["name"] for r in rows) or "none"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else ("es" if word.endswith("s") else "s"))


def writes(facts: Facts, cfg: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Are commits on the leader protected by synchronous standbys, degraded, or blocked."""
    lead = leader_row(rows)
    reps = replicas(rows)
    eligible = [r for r in reps if (r.get("sync_candidate") or {}).get("eligible")]
    confirmed = [r for r in reps if r.get("sync_state") in ("sync", "quorum")]
    leader_seen = bool(leader_pg(facts))
    if not leader_seen:  # leader's PostgreSQL not reached: the /sync key is the best we know
        confirmed = [r for r in reps if r.get("in_sync_key")]
    ssn = (lead or {}).get("synchronous_standby_names")
    waiters = (lead or {}).get("sync_waiters") or {}
    waiting = int(waiters.get("waiting") or 0)
    longest = waiters.get("longest_wait_seconds")
    n, mode, strict = cfg["synchronous_node_count"], cfg["synchronous_mode"], cfg["synchronous_mode_strict"]
    out: dict[str, Any] = {"mode": mode, "strict": strict, "required": n if mode != "off" else 0,
                           "synchronous": [r["name"] for r in confirmed], "eligible": [r["name"] for r in eligible],
                           "synchronous_standby_names": ssn, "waiting_sessions": waiting,
                           "longest_wait_seconds": longest, "leader": (lead or {}).get("name"),
                           "leader_checked": leader_seen}
    wait_txt = (f"; {_plural(waiting, 'session')} on {(lead or {}).get('name')} waiting for a synchronous standby "
                f"(wait_event SyncRep) for up to {human_seconds(longest)}") if waiting else ""
    if lead is None:
        pv = primary_view(facts)
        if pv["no_writable_primary"]:
            says = "; ".join(f"{n}: {v['evidence']}" for n, v in pv["live"].items() if v["role"])
            out.update(status="blocked", text=(
                "BLOCKED: no writable primary: every member that answered is a replica (" + says + ")"
                + (f"; the DCS still names {pv['dcs_leader']} leader" if pv["dcs_leader"] else "")
                + (f" but {dcs_down(facts)}, so that key is stale" if dcs_down(facts) else "")))
        elif pv["keys_unread"]:
            says = "; ".join(f"{n}: {v['evidence']}" for n, v in pv["live"].items() if v["role"])
            out.update(status="unknown", text=(
                f"unknown: {dcs_down(facts) or 'the DCS keys cannot be read'}; of the members reached, none is a "
                f"writable primary ({says or 'none answered'})"))
        else:
            out.update(status="unknown", text="unknown: the cluster has no leader")
        return out
    if cfg["standby_cluster"]:
        out.update(status="async", text="standby cluster: synchronous_mode does not apply (Patroni ignores it)")
        return out
    if mode == "off":
        if ssn and ssn.strip():
            status = "protected" if confirmed else ("blocked" if waiting else "unprotected")
            out.update(status=status, text=(
                f"synchronous_mode is off but synchronous_standby_names = '{ssn}' is set outside Patroni: "
                + (f"acknowledged by {_names(confirmed)}" if confirmed else "no standby matches it") + wait_txt))
            return out
        out.update(status="async", text=(
            "asynchronous: commits are acknowledged by the leader alone (synchronous_mode off); a failover may lose "
            f"the last transactions (up to maximum_lag_on_failover {human_bytes(cfg['maximum_lag_on_failover'])})"
            + wait_txt))
        return out
    kind = "quorum" if mode == "quorum" else "synchronous"
    if not confirmed and not eligible:
        if strict or (ssn or "").strip() == "*":
            out.update(status="blocked", text=(
                f"BLOCKED: strict mode needs {_plural(n, kind + ' standby')}, "
                f"0 are streaming; every commit on {lead['name']} waits until one comes back"
                + (f" (synchronous_standby_names = '{ssn}')" if ssn else "") + wait_txt))
        else:
            out.update(status="unprotected", text=(
                "not protected: synchronous mode is on but no standby is synchronous; commits are acknowledged "
                f"by {lead['name']} alone (Patroni degraded to asynchronous because synchronous_mode_strict is off)"
                + wait_txt))
        return out
    if not confirmed:
        status = "blocked" if waiting else "unprotected"
        out.update(status=status, text=(
            f"not yet protected: {_names(eligible)} stream{'s' if len(eligible) == 1 else ''} but "
            f"{'is' if len(eligible) == 1 else 'are'} not synchronous yet (sync_state "
            f"{', '.join(str(r.get('sync_state')) for r in eligible)})" + wait_txt))
        return out
    word = "quorum standby" if mode == "quorum" else "synchronous standby"
    if len(confirmed) < n:
        out.update(status="degraded", text=(
            f"acknowledged by {_plural(len(confirmed), word)} ({_names(confirmed)}) while synchronous_node_count "
            f"is {n}: only {len(eligible)} eligible standby{'s' if len(eligible) != 1 else ''} streaming, so Patroni "
            "lowered the count" + (f"; if {_names(confirmed)} stops too, writes block (strict mode)"
                                   if strict else "; if none is left, writes go on unprotected") + wait_txt))
        return out
    if mode == "quorum":
        text = f"acknowledged by any {n} of {_plural(len(confirmed), word)} ({_names(confirmed)})"
    else:
        text = f"acknowledged by {_plural(len(confirmed), word)} ({_names(confirmed)})"
    out.update(status="protected", text=text + wait_txt)
    return out


def failover(facts: Facts, cfg: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What an automatic failover would do if the leader died now."""
    reps = replicas(rows)
    cands = [r for r in reps if (r.get("failover") or {}).get("candidate")]
    excluded = [r for r in reps if r not in cands]
    parts = []
    for r in cands:
        f = r["failover"]
        extra = f" — {'; '.join(f['notes'])}" if f.get("notes") else ""
        parts.append(f"{r['name']} (lag {human_bytes(f.get('lag_bytes'))}{extra})")
    excl = [f"{r['name']} excluded ({'; '.join(r['failover']['reasons'])})" for r in excluded]
    out: dict[str, Any] = {
        "candidates": [{"name": r["name"], "lag_bytes": r["failover"].get("lag_bytes"),
                        "failover_priority": r.get("failover_priority"), "notes": r["failover"].get("notes")}
                       for r in cands],
        "excluded": [{"name": r["name"], "reasons": r["failover"]["reasons"]} for r in excluded],
        "maximum_lag_on_failover": cfg["maximum_lag_on_failover"], "paused": cfg["pause"],
    }
    pv = primary_view(facts)
    down = dcs_down(facts)
    if down or (leader_row(rows) is None and not pv["trusted"]):
        out.update(candidates=[], excluded=[], status="unknown", text=(
            "unknown: " + (f"{down}: Patroni can hold no leader race and promote nobody until the DCS answers "
                           "with a quorum" if down else "the DCS leader key and the members disagree on the leader")
            + "; no candidate is judged from possibly stale member keys"))
        return out
    if leader_row(rows) is None:
        out.update(status="no-leader", text="no leader now: a leader race is due"
                   + (f"; candidates: {', '.join(parts)}" if parts else "; no member qualifies"))
        return out
    if not reps:
        out.update(status="none", text="no candidate: the cluster has no replica, automatic failover would not happen")
        return out
    if not cands:
        text = "no candidate: automatic failover would not happen (" + "; ".join(
            f"{r['name']}: {', '.join(r['failover']['reasons'])}" for r in excluded) + ")"
        status = "none"
    else:
        text = "candidates: " + ", ".join(parts + excl)
        status = "ok"
    if cfg["pause"]:
        text = "maintenance mode (paused): Patroni fails over to nobody until resumed; then " + text
        status = "paused" if status == "ok" else status
    out.update(status=status, text=text)
    return out


def node_count_meaning(cfg: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``synchronous_node_count`` means with the members this cluster has."""
    n, mode, strict = cfg["synchronous_node_count"], cfg["synchronous_mode"], cfg["synchronous_mode_strict"]
    reps = replicas(rows)
    eligible = [r for r in reps if not r.get("nosync") and not (r.get("tags") or {}).get("nostream")
                and not (r.get("tags") or {}).get("replicatefrom")]
    members_n = len(reps) + (1 if leader_row(rows) else 0)
    out: dict[str, Any] = {"synchronous_node_count": n, "members": members_n, "replicas": len(reps),
                           "eligible": len(eligible), "eligible_names": [r["name"] for r in eligible]}
    if mode == "off":
        out.update(satisfiable=True, text=f"synchronous_mode is off: synchronous_node_count ({n}) has no effect")
        return out
    if not eligible:
        why = "every replica is tagged nosync" if reps else "the cluster has no replica"
        out.update(satisfiable=False, text=(
            f"synchronous_node_count {n} can never be satisfied: {why}; "
            + ("writes block whenever strict mode applies" if strict else "commits always run unprotected")))
        return out
    if n >= members_n or n > len(eligible):
        out.update(satisfiable=False, text=(
            f"synchronous_node_count {n} can never be satisfied with {_plural(members_n, 'member')} "
            f"({len(eligible)} eligible replica{'s' if len(eligible) != 1 else ''}: {_names(eligible)}): at most "
            f"{len(eligible)} can be synchronous, so Patroni always runs with fewer than asked"))
        return out
    spare = len(eligible) - n
    if mode == "quorum":
        text = (f"each commit waits for any {n} of the {len(eligible)} eligible replicas ({_names(eligible)}); "
                f"{spare} may be lost without delaying commits")
    elif spare == 0:
        text = (f"{n} of {len(eligible)} eligible replicas must be synchronous: all of them ({_names(eligible)}); "
                "losing any one leaves fewer than asked, Patroni lowers the count and commits wait for the rest"
                + ("; losing all of them blocks writes (strict mode)" if strict else
                   "; losing all of them makes commits run unprotected (not strict)"))
    else:
        text = (f"{n} of {len(eligible)} eligible replicas ({_names(eligible)}) are synchronous; "
                f"{_plural(spare, 'spare')} can take over when a synchronous standby is lost")
    out.update(satisfiable=True, text=text)
    return out


def slot_problems(facts: Facts, cfg: dict[str, Any], rows: list[dict[str, Any]],
                  threshold: int = DEFAULT_SLOT_RETAINED_BYTES) -> list[dict[str, Any]]:
    """Slots on the leader that retain dangerous amounts of WAL, are lost, or are missing for a member."""
    lpg = leader_pg(facts)
    if not lpg:
        return []
    lead = leader_row(rows) or {}
    slots = _list(lpg.get("slots"))
    keep = str((lpg.get("settings") or {}).get("max_slot_wal_keep_size") or "")
    unlimited = keep.strip() in ("-1", "")
    member_slots = {slot_name(r["name"]): r["name"] for r in rows}
    out: list[dict[str, Any]] = []
    for s in slots:
        retained = s.get("retained_bytes") or 0
        owner = member_slots.get(s.get("slot_name"))
        base = {"slot": s.get("slot_name"), "retained_bytes": retained, "active": s.get("active"),
                "wal_status": s.get("wal_status"), "member": owner, "leader": lead.get("name"),
                "slot_type": s.get("slot_type"), "permanent": s.get("slot_name") in cfg["permanent_slots"]}
        if s.get("wal_status") == "lost":
            out.append({**base, "kind": "lost", "severity": "fail"})
        elif s.get("wal_status") == "unreserved":
            out.append({**base, "kind": "unreserved", "severity": "warn"})
        elif not s.get("active") and retained > threshold:
            out.append({**base, "kind": "inactive-retaining", "severity": "warn", "threshold": threshold})
    total = sum(s.get("retained_bytes") or 0 for s in slots)
    biggest = max(slots, key=lambda s: s.get("retained_bytes") or 0, default=None)
    if unlimited and biggest is not None and (biggest.get("retained_bytes") or 0) > threshold:
        out.append({"kind": "unlimited", "severity": "warn", "slot": biggest.get("slot_name"),
                    "retained_bytes": biggest.get("retained_bytes"), "total_retained_bytes": total,
                    "threshold": threshold, "leader": lead.get("name"), "member": member_slots.get(biggest.get("slot_name"))})
    if cfg["use_slots"]:
        for r in replicas(rows):
            tags = r.get("tags") or {}
            if not r.get("in_dcs") or r.get("state") not in RUNNING_STATES or tags.get("nostream") \
                    or tags.get("replicatefrom"):
                continue
            if (r.get("slot") or {}).get("exists") is False:
                out.append({"kind": "missing", "severity": "warn", "slot": slot_name(r["name"]), "member": r["name"],
                            "leader": lead.get("name"), "retained_bytes": None})
    return out


def lag_problems(cfg: dict[str, Any], rows: list[dict[str, Any]], max_lag_bytes: int | None,
                 max_lag_seconds: float | None) -> list[dict[str, Any]]:
    """Replicas past maximum_lag_on_failover or the user's thresholds, or with WAL replay paused."""
    out = []
    limit = cfg["maximum_lag_on_failover"]
    for r in replicas(rows):
        if not r.get("in_dcs"):
            continue
        reasons: list[str] = []
        replay, flag = r.get("replay_lag_bytes"), r.get("failover_lag_bytes")
        worst = max([x for x in (replay, flag) if x is not None], default=None)
        if worst is not None and limit is not None and worst > limit:
            reasons.append(f"{human_bytes(worst)} behind > maximum_lag_on_failover {human_bytes(limit)}")
        if max_lag_bytes is not None and worst is not None and worst > max_lag_bytes:
            reasons.append(f"{human_bytes(worst)} behind > --max-lag-bytes {human_bytes(max_lag_bytes)}")
        if max_lag_seconds is not None and r.get("lag_seconds") is not None and r["lag_seconds"] > max_lag_seconds:
            reasons.append(f"{human_seconds(r['lag_seconds'])} behind > --max-lag-seconds {max_lag_seconds:g} s")
        if r.get("replay_paused"):
            reasons.append("WAL replay is paused (pg_is_wal_replay_paused() = true)")
        if reasons:
            out.append({"member": r["name"], "reasons": reasons, "replay_lag_bytes": replay,
                        "receive_lag_bytes": r.get("receive_lag_bytes"), "failover_lag_bytes": flag,
                        "lag_seconds": r.get("lag_seconds"), "replay_paused": bool(r.get("replay_paused")),
                        "host": r.get("host"), "port": r.get("port"),
                        "excluded_from_failover": not (r.get("failover") or {}).get("candidate", False)})
    return out


def not_streaming(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replicas Patroni reports as running whose PostgreSQL does not stream (no WAL receiver, or not 'streaming')."""
    out = []
    for r in replicas(rows):
        if not r.get("in_dcs") or r.get("state") not in RUNNING_STATES or r.get("streaming") is not False:
            continue
        if (r.get("tags") or {}).get("nostream"):
            continue
        out.append(r)
    return out


def model(facts: Facts) -> dict[str, Any]:
    """Settings, member rows and the verdicts, computed once for a view or a check."""
    cfg = settings(facts)
    rows = members(facts)
    ref, ref_source = reference_lsn(facts)
    fo = failover(facts, cfg, rows)
    if fo["status"] == "unknown":  # judged from stale keys, a per-member verdict would mislead
        for r in replicas(rows):
            r["failover"] = {**(r.get("failover") or {}), "candidate": None, "reasons": [fo["text"]]}
    return {"settings": cfg, "members": rows, "reference_lsn_bytes": ref, "reference_lsn": lsn_str(ref),
            "reference_source": ref_source, "writes": writes(facts, cfg, rows), "failover": fo,
            "synchronous_node_count": node_count_meaning(cfg, rows)}
