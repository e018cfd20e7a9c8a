"""Replication faults: synchronous mode without standbys, lag, slots, WAL senders, removed WAL."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

from .. import cluster, configs, procs
from ..layout import REPLICATION_PASSWORD, REPLICATION_USER, LabError, Node
from .helpers import (
    leader,
    member_names,
    patch_config,
    patronictl,
    pause_replay,
    reclone,
    resume,
    sql,
    try_on_leader,
    try_sql,
    wait_until,
)
from .logs import patroni_logs, postgres_logs, symptom
from .registry import Ctx, fault, healer


# ------------------------------------------------------------------------------------------
# sync-standby-unavailable
# ------------------------------------------------------------------------------------------
def probe_write(n: Node, wait: float = 3.0) -> dict:
    """INSERT one row on ``n`` and see whether the commit waits (on SyncRep); a waiting backend
    is cancelled with pg_cancel_backend() (statement_timeout does not end a SyncRep wait)."""
    import psycopg

    result: dict = {}

    def writer():
        try:
            with psycopg.connect(n.dsn(), autocommit=True) as conn:
                conn.execute("SET application_name = 'pgdoctor-lab-probe'")
                conn.execute("INSERT INTO lab_sync_probe VALUES (now())")
            result["returned"] = True
        except psycopg.Error as exc:
            result["returned"] = False
            result["error"] = str(exc).strip().splitlines()[0]

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    t.join(wait)
    if t.is_alive():
        rows = sql(n, "SELECT pid, wait_event_type, wait_event FROM pg_stat_activity "
                      "WHERE application_name = 'pgdoctor-lab-probe'", fetch=True)
        result["blocked"] = True
        result["wait_event"] = rows[0][2] if rows else None
        sql(n, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
               "WHERE application_name = 'pgdoctor-lab-probe'")
        result["cancelled"] = True  # the row stays committed locally (PostgreSQL warns so)
        t.join(10)
    else:
        result["blocked"] = False
    return result


@fault("sync-standby-unavailable", "synchronous_mode strict with synchronous_node_count 2, both "
       "replicas stopped: writes on the leader block", variant="strict", target="cluster")
@fault("sync-standby-unavailable", "synchronous_mode (not strict) with synchronous_node_count 2, both "
       "replicas stopped: the leader runs standalone", variant="nonstrict", target="cluster")
def _b_sync(ctx: Ctx) -> None:
    lay = ctx.lay
    strict = ctx.variant == "strict"
    ld = leader(lay)
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_sync_probe (at timestamptz)")
    patronictl(lay, "edit-config", "--force", "-s", "synchronous_mode=true",
               "-s", f"synchronous_mode_strict={'true' if strict else 'false'}",
               "-s", "synchronous_node_count=2")
    wait_until(lambda: any(m.get("role") == "sync_standby"
                           for m in (cluster.cluster_view(lay) or {}).get("members", [])),
               30, "a synchronous standby")
    reps = [n for n in lay.nodes if n.name != ld.name]
    for n in reps:
        cluster.stop_member(n)
    ctx.details.update(leader=ld.name, stopped=[n.name for n in reps], synchronous_node_count=2,
                       synchronous_mode_strict=strict)
    ctx.state["leader"] = ld.name
    ctx.save()
    if strict:
        symptom(ctx, r"No standbys available", patroni_logs(ld))
    else:
        symptom(ctx, r"Assigning synchronous standby status to \[\]", patroni_logs(ld), 20)
    if ctx.wait:
        ctx.details["write_probe"] = probe_write(ld)
    try:
        ctx.details["synchronous_standby_names"] = sql(ld, "SHOW synchronous_standby_names",
                                                       fetch=True)[0][0]
    except LabError as exc:
        ctx.details["synchronous_standby_names"] = str(exc)


@healer("sync-standby-unavailable.strict", "sync-standby-unavailable.nonstrict")
def _h_sync(ctx: Ctx) -> str:
    lay = ctx.lay
    if ctx.state.get("leader"):  # a write blocked on SyncRep would hold the leader; cancel such backends
        try_sql(lay.node(ctx.state["leader"]),
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
    cluster.up(lay, wait=False)
    wait_until(lambda: cluster.cluster_view(lay) is not None, 30, "a REST API")
    patronictl(lay, "edit-config", "--force", "-s", "synchronous_mode=false",
               "-s", "synchronous_mode_strict=false", "-s", "synchronous_node_count=1")
    try_on_leader(lay, "DROP TABLE IF EXISTS lab_sync_probe")
    return "synchronous mode off again, replicas started"


# ------------------------------------------------------------------------------------------
# replication-lag
# ------------------------------------------------------------------------------------------
@fault("replication-lag", "cluster paused, WAL replay paused on a replica, ~200k rows inserted "
       "on the leader")
def _b_lag(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    ld = pause_replay(ctx)
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_lag (id bigint, pad text)")
    sql(ld, "INSERT INTO lab_lag SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g",
        timeout=60)
    lsn = sql(ld, "SELECT pg_current_wal_lsn()::text", fetch=True)[0][0]
    replay = sql(n, "SELECT pg_last_wal_replay_lsn()::text", fetch=True)[0][0]
    lag = sql(ld, "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)::bigint", (lsn, replay),
              fetch=True)[0][0]
    ctx.details.update(leader=ld.name, lagging=n.name, leader_lsn=lsn, replay_lsn=replay,
                       lag_bytes=int(lag))
    if ctx.wait:
        time.sleep(configs.LOOP_WAIT + 1)  # let the members publish their LSNs
        ctx.details["patronictl_list"] = patronictl(lay, "list").rstrip().splitlines()
    ctx.state["leader"] = ld.name
    ctx.save()


@healer("replication-lag")
def _h_lag(ctx: Ctx) -> str:
    lay = ctx.lay
    try_sql(ctx.node, "SELECT pg_wal_replay_resume()")
    resume(lay)
    try_on_leader(lay, "DROP TABLE IF EXISTS lab_lag")
    return f"WAL replay resumed on {ctx.node.name}, patronictl resume, lab_lag dropped"


# ------------------------------------------------------------------------------------------
# replication-slot-problem
# ------------------------------------------------------------------------------------------
SLOT_WAL_BYTES = 200 * 1024 * 1024


@fault("replication-slot-problem", "a replica's Patroni and PostgreSQL stopped, then ~200 MB of WAL "
       "written on the leader: once its member key expires, its slot (kept by Patroni for "
       "member_slots_ttl) is inactive and retains all of it, past wal_keep_size")
def _b_slot(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    cluster.stop_member(n)

    def slot_row():
        rows = sql(ld, "SELECT active, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                       "FROM pg_replication_slots WHERE slot_name = %s", (n.name,), fetch=True)
        return rows[0] if rows else None

    wait_until(lambda: (slot_row() or (True,))[0] is False, 30, f"slot {n.name} on {ld.name} to go inactive")
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_slot (id bigint, pad text)")
    while (slot_row() or (None, None, 0))[2] < SLOT_WAL_BYTES:
        sql(ld, "INSERT INTO lab_slot SELECT g, repeat('s', 200) FROM generate_series(1, 50000) g", timeout=60)
    sql(ld, "SELECT pg_switch_wal()")
    sql(ld, "CHECKPOINT", timeout=60)
    active, wal_status, retained = slot_row()
    pg_wal = sql(ld, "SELECT sum(size)::bigint FROM pg_ls_waldir()", fetch=True)[0][0]
    keep = sql(ld, "SHOW wal_keep_size", fetch=True)[0][0]
    ctx.details.update(leader=ld.name, stopped=n.name, slot=n.name, slot_active=active, wal_status=wal_status,
                       retained_bytes=int(retained), pg_wal_bytes=int(pg_wal), wal_keep_size=keep)
    if active is not False or retained < SLOT_WAL_BYTES:
        ctx.details["warning"] = f"slot {n.name} is not an inactive slot retaining {SLOT_WAL_BYTES} bytes"
    ctx.state["leader"] = ld.name
    ctx.save()
    if ctx.wait:  # a replica down for a while: its member key has expired, its slot stays
        wait_until(lambda: n.name not in member_names(lay), configs.TTL + 15, f"{n.name}'s member key to expire")
        ctx.details["member_key_expired"] = True


@healer("replication-slot-problem")
def _h_slot(ctx: Ctx) -> str:
    try_on_leader(ctx.lay, "DROP TABLE IF EXISTS lab_slot")
    return f"lab_slot dropped, {ctx.node.name} started: it replays the WAL its slot kept"


# ------------------------------------------------------------------------------------------
# replica-not-streaming
# ------------------------------------------------------------------------------------------
WALSENDER_HOLD = "pgdoctor-lab-walsender-hold"
_HOLD_WALSENDERS = r'''
import sys, time, psycopg
held = []
while True:  # take every WAL sender slot that frees up on the leader, and keep it
    try:
        held.append(psycopg.connect(sys.argv[1], replication="true", autocommit=True))
    except psycopg.Error:
        time.sleep(0.005)
'''


@fault("replica-not-streaming", "every WAL sender on the leader taken by idle replication connections "
       "(as backup tools or stale pg_receivewal do), then a replica's walsender terminated: it is "
       "refused on reconnect ('exceeds max_wal_senders') while Patroni calls it running")
def _b_not_streaming(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    senders = int(sql(ld, "SHOW max_wal_senders", fetch=True)[0][0])
    dsn = (f"host={ld.address} port={ld.pg_port} user={REPLICATION_USER} dbname=postgres "
           f"application_name={WALSENDER_HOLD}")
    pid = procs.spawn([sys.executable, "-c", _HOLD_WALSENDERS, dsn, WALSENDER_HOLD],
                      lay.base_dir / "walsender-hold.log", None, as_postgres=False, cwd=lay.base_dir,
                      env={**os.environ, "PGPASSWORD": REPLICATION_PASSWORD})
    ctx.add_extra_pid(pid, WALSENDER_HOLD)

    def walsenders() -> list[tuple]:
        return sql(ld, "SELECT pid, application_name FROM pg_stat_replication", fetch=True)

    wait_until(lambda: len(walsenders()) >= senders, 20, f"all {senders} WAL senders on {ld.name} to be taken")
    terminated = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the holder and the replica race for the freed slot
        mine = [p for p, app in walsenders() if app == n.name]
        if not mine:
            time.sleep(1.0)
            if not [p for p, app in walsenders() if app == n.name]:
                break
            continue
        sql(ld, "SELECT pg_terminate_backend(%s)", (mine[0],))
        terminated += 1
        time.sleep(0.3)
    wait_until(lambda: not sql(n, "SELECT 1 FROM pg_stat_wal_receiver", fetch=True)
               and (cluster.member_status(n) or {}).get("replication_state") != "streaming",
               20, f"{n.name} to stop streaming")
    held = sum(1 for _, app in walsenders() if app == WALSENDER_HOLD)
    ctx.details.update(leader=ld.name, replica=n.name, max_wal_senders=senders, holder_pid=pid,
                       held_walsenders=held, terminated_walsenders=terminated,
                       patroni_state=(cluster.member_status(n) or {}).get("state"))
    ctx.state["leader"] = ld.name
    ctx.save()
    symptom(ctx, r"exceeds max_wal_senders", postgres_logs(n), 20)


@healer("replica-not-streaming")
def _h_not_streaming(ctx: Ctx) -> str:
    return (f"stopped the process holding the leader's WAL senders; {ctx.node.name} reconnects within "
            "wal_retrieve_retry_interval")


# ------------------------------------------------------------------------------------------
# wal-segment-removed
# ------------------------------------------------------------------------------------------
@fault("wal-segment-removed", "slots off and wal_keep_size 16MB, a replica stopped while the leader "
       "writes and checkpoints, then restarted: the WAL it needs is gone")
def _b_walgone(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    patch_config(lay, {"postgresql": {"use_slots": False, "parameters": {"wal_keep_size": "16MB"}}})
    wait_until(lambda: sql(ld, "SHOW wal_keep_size", fetch=True)[0][0] == "16MB", 30,
               "wal_keep_size = 16MB on the leader")
    cluster.stop_member(n)
    wait_until(lambda: not sql(ld, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                               (n.name,), fetch=True), 30, f"slot {n.name} to be dropped")
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_wal (id bigint, pad text)")
    for _ in range(6):
        sql(ld, "INSERT INTO lab_wal SELECT g, repeat('w', 200) FROM generate_series(1, 50000) g",
            timeout=60)
        sql(ld, "SELECT pg_switch_wal()")
    sql(ld, "CHECKPOINT")
    sql(ld, "SELECT pg_switch_wal()")
    sql(ld, "CHECKPOINT")
    cluster.start_patroni(lay, n)
    ctx.details.update(leader=ld.name, replica=n.name, use_slots=False, wal_keep_size="16MB")
    ctx.state["leader"] = ld.name
    ctx.save()
    symptom(ctx, r"has already been removed", postgres_logs(n) + patroni_logs(n), 40)


@healer("wal-segment-removed")
def _h_walgone(ctx: Ctx) -> str:
    lay = ctx.lay
    action = reclone(lay, ctx.node)
    with contextlib.suppress(LabError):
        patch_config(lay, {"postgresql": {"use_slots": True, "parameters": {"wal_keep_size": "128MB"}}})
    try_on_leader(lay, "DROP TABLE IF EXISTS lab_wal")
    return f"slots and wal_keep_size back, {action}"
