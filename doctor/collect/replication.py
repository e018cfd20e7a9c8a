"""Replication facts from every member's PostgreSQL, not just this node's.

Whether writes are protected and who could take over depends on the leader's
``pg_stat_replication`` and slots *and* on each replica's own receive/replay
position, WAL receiver and replay-pause state. So this collector connects to each
member the DCS lists (its ``conn_url``), as the superuser from this node's config,
concurrently, each within the ``call`` share of the deadline, once the DCS read
(``after=("dcs",)``) has named them. A member that cannot be reached is recorded with
the server's own error; the checks then fall back to the member data in the DCS.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

# psycopg (~130 ms to import) is imported where a connection is made: the collectors that use it run in
# a worker process of their own (doctor/collect/_worker.py), and the rest of a run never pays for it.
if TYPE_CHECKING:
    import psycopg

from doctor.collect import CollectContext, collector
from doctor.collect._parallel import parallel
from doctor.collect.postgres import conninfo, credentials, query_rows, server_error
from doctor.model.node import WILDCARDS, NodeView

SETTINGS = ("synchronous_standby_names", "synchronous_commit", "max_slot_wal_keep_size", "wal_keep_size",
            "max_wal_senders", "max_replication_slots", "primary_slot_name", "recovery_min_apply_delay",
            "hot_standby_feedback", "server_version_num")

# Seconds are float8 so JSON carries plain numbers; LSNs both as text (X/Y, as PostgreSQL prints
# them) and as bytes from 0/0 (as Patroni stores them in the DCS).
PRIMARY_SQL = """
SELECT pg_current_wal_lsn()::text AS current_lsn,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS current_lsn_bytes,
       pg_current_wal_flush_lsn()::text AS flush_lsn,
       pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint AS flush_lsn_bytes,
       ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline
"""

STAT_REPLICATION_SQL = """
SELECT pid, usename, application_name, client_addr::text AS client_addr, state, sync_state, sync_priority,
       sent_lsn::text AS sent_lsn, write_lsn::text AS write_lsn, flush_lsn::text AS flush_lsn,
       replay_lsn::text AS replay_lsn,
       pg_wal_lsn_diff(sent_lsn, '0/0')::bigint AS sent_lsn_bytes,
       pg_wal_lsn_diff(write_lsn, '0/0')::bigint AS write_lsn_bytes,
       pg_wal_lsn_diff(flush_lsn, '0/0')::bigint AS flush_lsn_bytes,
       pg_wal_lsn_diff(replay_lsn, '0/0')::bigint AS replay_lsn_bytes,
       extract(epoch FROM write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds,
       extract(epoch FROM now() - reply_time)::float8 AS reply_age_seconds,
       backend_start::text AS backend_start
FROM pg_stat_replication ORDER BY application_name
"""

SYNC_WAITERS_SQL = """
SELECT count(*)::int AS waiting,
       coalesce(extract(epoch FROM max(now() - query_start)), 0)::float8 AS longest_wait_seconds
FROM pg_stat_activity WHERE wait_event = 'SyncRep'
"""

REPLICA_SQL = """
SELECT pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint AS receive_lsn_bytes,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replay_lsn_bytes,
       pg_is_wal_replay_paused() AS replay_paused,
       pg_last_xact_replay_timestamp()::text AS last_replay_timestamp,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS last_replay_age_seconds
"""

WAL_RECEIVER_SQL = """
SELECT pid, status, received_tli, written_lsn::text AS written_lsn, flushed_lsn::text AS flushed_lsn,
       latest_end_lsn::text AS latest_end_lsn, slot_name, sender_host, sender_port,
       extract(epoch FROM now() - last_msg_receipt_time)::float8 AS last_msg_age_seconds
FROM pg_stat_wal_receiver
"""


def _slots_sql(version: int) -> str:
    """pg_replication_slots with the WAL each slot holds back; wal_status/safe_wal_size exist from PG 13."""
    cur = ("CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) "
           "ELSE pg_current_wal_lsn() END")
    extra = ", wal_status, safe_wal_size" if version >= 130000 else ""
    return (f"SELECT slot_name, slot_type, temporary, active, active_pid, restart_lsn::text AS restart_lsn{extra}, "
            f"pg_wal_lsn_diff({cur}, restart_lsn)::bigint AS retained_bytes "
            "FROM pg_replication_slots ORDER BY slot_name")


def _one(conn: psycopg.Connection, sql: str) -> dict[str, Any] | None:
    rows = query_rows(conn, sql)
    return rows[0] if rows else None


def _guarded(out: dict[str, Any], name: str, fn: Any) -> None:
    """Run one query; a failure is recorded under ``name`` and the others still run."""
    import psycopg
    try:
        out[name] = fn()
    except psycopg.Error as exc:
        out[name] = {"error": server_error(exc)}


def member_facts(conn: psycopg.Connection) -> dict[str, Any]:
    """What one server says about its replication, by role."""
    out: dict[str, Any] = {}
    head = _one(conn, "SELECT pg_is_in_recovery() AS in_recovery, now()::text AS server_time") or {}
    out.update(head)
    settings = query_rows(conn, "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),))
    out["settings"] = {s["name"]: s["setting"] for s in settings}
    out["setting_units"] = {s["name"]: s["unit"] for s in settings if s.get("unit")}
    version = int(out["settings"].get("server_version_num") or 0)
    # parameters changed in the config that this server applies only at its next restart
    _guarded(out, "pending_restart",
             lambda: query_rows(conn, "SELECT name, setting, unit FROM pg_settings WHERE pending_restart ORDER BY name"))
    if out.get("in_recovery"):
        _guarded(out, "position", lambda: _one(conn, REPLICA_SQL))
        _guarded(out, "wal_receiver", lambda: _one(conn, WAL_RECEIVER_SQL))
        if version >= 140000:
            _guarded(out, "replay_pause_state",
                     lambda: (_one(conn, "SELECT pg_get_wal_replay_pause_state() AS s") or {}).get("s"))
        wr = out.get("wal_receiver") if isinstance(out.get("wal_receiver"), dict) else None
        if wr and wr.get("received_tli"):
            out["timeline"] = wr["received_tli"]
        else:
            out["timeline"] = (_one(conn, "SELECT timeline_id FROM pg_control_checkpoint()") or {}).get("timeline_id")
    else:
        _guarded(out, "position", lambda: _one(conn, PRIMARY_SQL))
        pos = out.get("position") if isinstance(out.get("position"), dict) else {}
        out["timeline"] = pos.get("timeline")
        _guarded(out, "sync_waiters", lambda: _one(conn, SYNC_WAITERS_SQL))
    # A cascading replica has walsenders too, so every member reports its pg_stat_replication.
    _guarded(out, "stat_replication", lambda: query_rows(conn, STAT_REPLICATION_SQL))
    _guarded(out, "slots", lambda: query_rows(conn, _slots_sql(version)))
    return out


def _probe(name: str, host: str, port: int, user: str, password: str | None, timeout: float) -> dict[str, Any]:
    import psycopg
    out: dict[str, Any] = {"member": name, "host": host, "port": port, "user": user}
    t0 = time.monotonic()
    try:
        conn = psycopg.connect(conninfo(host, port, user, password, timeout,
                                        options=f"-c statement_timeout={int(timeout * 1000)}"), autocommit=True)
    except psycopg.Error as exc:
        out.update(reachable=False, error=server_error(exc), ms=round((time.monotonic() - t0) * 1000, 1))
        return out
    try:
        out["reachable"] = True
        out.update(member_facts(conn))
    except psycopg.Error as exc:
        out["query_error"] = server_error(exc)
    finally:
        conn.close()
    out["ms"] = round((time.monotonic() - t0) * 1000, 1)
    return out


def member_targets(node: NodeView, dcs: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """{member: (host, port)} from the DCS member keys; this node from its config when the DCS is silent."""
    targets: dict[str, tuple[str, int]] = {}
    for m in (dcs.get("members") or []) if isinstance(dcs, dict) else []:
        if isinstance(m, dict) and m.get("name") and m.get("conn_url"):
            u = urlparse(str(m["conn_url"]))
            if u.hostname:
                targets[str(m["name"])] = (u.hostname, u.port or 5432)
    if node.name and node.name not in targets:
        hosts = [h for h in node.pg_hosts if h not in WILDCARDS]
        host = (node.pg_connect or "").rpartition(":")[0] or (hosts[0] if hosts else "127.0.0.1")
        targets[node.name] = (host, node.pg_port)
    return targets


@collector("replication", profiles=("run", "replication", "bundle", "verify"), after=("dcs",), isolate=True)
def collect_replication(ctx: CollectContext) -> dict[str, Any]:
    node = NodeView(ctx.config or {}, ctx.config_path)
    dcs = ctx.upstream.result("dcs")
    targets = member_targets(node, dcs if isinstance(dcs, dict) else {})
    user, password = credentials(node, "superuser")
    per_member = ctx.deadline.share("call")
    calls = {name: (lambda n=name, hp=hp: _probe(n, hp[0], hp[1], user, password, per_member))
             for name, hp in targets.items()}
    got = parallel(calls, ctx.deadline.wait_budget(),
                   lambda name: {"member": name, "reachable": False, "error": ctx.deadline.timeout_error(
                       f"the connection to {name}")})
    members: dict[str, Any] = {}
    for name in sorted(got):
        v = got[name]
        if isinstance(v, Exception):
            host, port = targets[name]
            v = {"member": name, "host": host, "port": port, "reachable": False, "error": server_error(v)}
        members[name] = v
    return {"members": members, "source": "DCS member keys" if isinstance(dcs, dict) and dcs.get("members")
            else "this node's config (the DCS lists no members)", "as_user": user}
