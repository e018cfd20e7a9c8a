"""A real replication round trip: the one thing pgdoctor writes, and it touches no user data.

"Test data replicates to all nodes" is answered by doing it: on the leader, a WAL record that
touches no table — ``pg_logical_emit_message(false, 'pgdoctor', …)`` (a logical-decoding message,
ignored by every plugin that does not ask for the ``pgdoctor`` prefix), or, where that function
cannot run, a transaction that only takes an xid (``txid_current()``) — and its LSN noted. Then
every replica's ``pg_last_wal_replay_lsn()`` is watched until it passes that LSN, and the leader's
``pg_stat_replication`` until each synchronous standby's ``flush_lsn`` does (its acknowledgement).

Connections to every member are opened before the record is written, so the figures measure
replication, not connecting. The session writes with ``synchronous_commit = local``: the commit
never waits on a standby (a strict synchronous cluster without standbys cannot hold pgdoctor), and
the standbys' acknowledgement is observed instead. Everything is bounded by ``--round-trip-timeout``
and by the command's deadline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# psycopg (~130 ms to import) is imported where a connection is made: the collectors that use it run in
# a worker process of their own (doctor/collect/_worker.py), and the rest of a run never pays for it.
if TYPE_CHECKING:
    import psycopg

from doctor.collect import CollectContext, collector
from doctor.collect.postgres import conninfo, credentials, server_error
from doctor.collect.replication import member_targets
from doctor.model.node import NodeView

POLL_SECONDS = 0.005
MESSAGE_PREFIX = "pgdoctor"
DEFAULT_ROUND_TRIP_TIMEOUT = 5.0

XID_SQL = "SELECT txid_current() AS xid"
INSERT_LSN_SQL = "SELECT pg_current_wal_insert_lsn()::text AS lsn, " \
                 "pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint AS lsn_bytes"
REPLAY_SQL = "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replay, " \
             "pg_last_wal_replay_lsn()::text AS replay_lsn, pg_is_wal_replay_paused() AS paused"
SYNC_ACK_SQL = "SELECT application_name, sync_state, pg_wal_lsn_diff(flush_lsn, '0/0')::bigint AS flush " \
               "FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')"


def _connect(host: str, port: int, user: str, password: str | None, timeout: float) -> psycopg.Connection:
    import psycopg
    return psycopg.connect(conninfo(host, port, user, password, timeout,
                                    options=f"-c statement_timeout={max(1, int(timeout * 1000))}"),
                           autocommit=True)


def write_marker(conn: psycopg.Connection, note: str) -> dict[str, Any]:
    """Write the WAL record on the leader; return its LSN (text and bytes) and how it was written.

    A non-transactional message is not flushed by itself (the WAL writer would ship it within
    ``wal_writer_delay``, skewing the figures), so an xid-only transaction follows it: its commit
    flushes the WAL up to and past the message at once."""
    import psycopg
    conn.execute("SET synchronous_commit = local")
    try:
        row = conn.execute("SELECT pg_logical_emit_message(false, %s, %s)::text AS lsn",
                           (MESSAGE_PREFIX, note)).fetchone()
        lsn = row[0]
        lsn_bytes = conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, '0/0')::bigint", (lsn,)).fetchone()[0]
        conn.execute(XID_SQL)
        return {"method": "pg_logical_emit_message", "lsn": lsn, "lsn_bytes": int(lsn_bytes)}
    except psycopg.Error as exc:
        first = server_error(exc)
    conn.execute(XID_SQL)
    row = conn.execute(INSERT_LSN_SQL).fetchone()
    return {"method": "txid_current", "lsn": row[0], "lsn_bytes": int(row[1]), "message_error": first}


def wait_replay(conn: psycopg.Connection, target: int, started: float, until: float,
                clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll one replica until its replay LSN reaches ``target`` or ``until`` passes."""
    last: dict[str, Any] = {}
    while True:
        row = conn.execute(REPLAY_SQL).fetchone()
        now = clock()
        last = {"replay_lsn": row[1], "replay_lsn_bytes": row[0], "replay_paused": bool(row[2])}
        if row[0] is not None and int(row[0]) >= target:
            return {"arrived": True, "ms": round((now - started) * 1000, 1), **last}
        if now >= until:
            return {"arrived": False, "ms": None, **last}
        time.sleep(POLL_SECONDS)


def wait_sync_acks(conn: psycopg.Connection, target: int, started: float, until: float,
                   clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll the leader's ``pg_stat_replication`` until every synchronous standby has flushed ``target``."""
    acks: dict[str, Any] = {}
    while True:
        rows = conn.execute(SYNC_ACK_SQL).fetchall()
        now = clock()
        for name, state, flush in rows:
            if name not in acks or not acks[name]["acknowledged"]:
                done = flush is not None and int(flush) >= target
                acks[name] = {"sync_state": state, "acknowledged": done,
                              "ms": round((now - started) * 1000, 1) if done else None}
        if all(a["acknowledged"] for a in acks.values()) or now >= until:
            return acks
        time.sleep(POLL_SECONDS)


def round_trip(leader: str, targets: dict[str, tuple[str, int]], user: str, password: str | None,
               timeout: float, connect_timeout: float) -> dict[str, Any]:
    """The whole round trip; every failure becomes data in the result."""
    import psycopg
    out: dict[str, Any] = {"leader": leader, "timeout_seconds": timeout, "replicas": {}}
    conns: dict[str, psycopg.Connection] = {}
    try:
        for name, (host, port) in sorted(targets.items()):
            try:
                conns[name] = _connect(host, port, user, password, connect_timeout)
            except psycopg.Error as exc:
                if name == leader:
                    out["error"] = server_error(exc)
                    return out
                out["replicas"][name] = {"arrived": False, "reachable": False, "error": server_error(exc)}
        lconn = conns[leader]
        if lconn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            out["error"] = {"kind": "not-primary", "message": f"{leader} is in recovery; nothing was written"}
            return out
        replicas = {n: c for n, c in conns.items() if n != leader
                    and c.execute("SELECT pg_is_in_recovery()").fetchone()[0]}
        for n in conns:
            if n != leader and n not in replicas:
                out["replicas"][n] = {"arrived": False, "reachable": True, "not_in_recovery": True}
        note = f"replication round trip {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
        started = time.monotonic()
        out["marker"] = write_marker(lconn, note)
        until = started + timeout
        target = out["marker"]["lsn_bytes"]
        results: dict[str, Any] = {}

        def watch(name: str, conn: psycopg.Connection) -> None:
            try:
                results[name] = {"reachable": True, **wait_replay(conn, target, started, until)}
            except psycopg.Error as exc:
                results[name] = {"reachable": True, "arrived": False, "error": server_error(exc)}

        threads = [threading.Thread(target=watch, args=(n, c), daemon=True) for n, c in replicas.items()]
        for t in threads:
            t.start()
        try:
            out["sync_acks"] = wait_sync_acks(lconn, target, started, until)
        except psycopg.Error as exc:
            out["sync_acks_error"] = server_error(exc)
        for t in threads:
            t.join(max(0.0, until - time.monotonic()) + 1.0)
        for name in replicas:
            out["replicas"][name] = results.get(name) or {"reachable": True, "arrived": False,
                                                          "error": {"kind": "timeout", "message": "no answer"}}
        return out
    except psycopg.Error as exc:
        out["error"] = server_error(exc)
        return out
    finally:
        for c in conns.values():
            with contextlib.suppress(psycopg.Error):
                c.close()


@collector("roundtrip", profiles=("verify",), after=("dcs",), isolate=True)
def collect_roundtrip(ctx: CollectContext) -> dict[str, Any]:
    if ctx.options.round_trip_timeout is None:
        return {"skipped": "no round trip was asked for (nothing written)"}
    node = NodeView(ctx.config or {}, ctx.config_path)
    dcs = ctx.upstream.result("dcs")
    dcs = dcs if isinstance(dcs, dict) else {}
    leader = dcs.get("leader")
    if not leader:
        return {"error": {"kind": "no-leader", "message": "the DCS names no leader: nothing was written"}}
    targets = member_targets(node, dcs)
    if leader not in targets:
        return {"error": {"kind": "no-leader", "message": f"the leader {leader} has no conn_url in the DCS"}}
    user, password = credentials(node, "superuser")
    wanted = ctx.options.round_trip_timeout or DEFAULT_ROUND_TRIP_TIMEOUT
    budget = max(0.5, min(float(wanted), ctx.deadline.remaining() - ctx.deadline.share("call") - 0.5))
    out = round_trip(leader, targets, user, password, budget, ctx.deadline.share("member"))
    out["requested_timeout_seconds"] = float(wanted)
    return out
