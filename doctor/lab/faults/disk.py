"""A member's filesystem running full."""

from __future__ import annotations

import os
import time

from .. import cluster, configs, procs
from ..layout import LabError
from .helpers import leader, leader_among, patronictl, reclone, sql, wait_until
from .logs import patroni_logs, postgres_logs, symptom
from .registry import Ctx, fault, healer


@fault("disk-full", "a 128 MB tmpfs as a replica's data dir; it re-clones, becomes leader by "
       "switchover and rows are inserted until PostgreSQL runs out of space")
def _b_diskfull(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    old = leader(lay)
    reclone(lay, n)
    n.data_dir.mkdir(mode=0o700)
    procs.run(["mount", "-t", "tmpfs", "-o", "size=128m,mode=0700", "tmpfs", str(n.data_dir)])
    uid, gid = cluster._postgres_ids()
    os.chown(n.data_dir, uid, gid)
    cluster.start_patroni(lay, n)
    wait_until(lambda: (cluster.member_status(n) or {}).get("replication_state") == "streaming",
               60, f"{n.name} to clone into the tmpfs")
    time.sleep(configs.LOOP_WAIT + 1)
    patronictl(lay, "switchover", "--leader", old.name, "--candidate", n.name, "--force")
    wait_until(lambda: (cluster.member_status(n) or {}).get("role") in ("primary", "master")
               and not (cluster.member_status(n) or {}).get("pending_restart", False), 60,
               f"{n.name} to become leader")
    wait_until(lambda: sql(n, "SELECT NOT pg_is_in_recovery()", fetch=True)[0][0], 30,
               f"{n.name} to leave recovery")
    sql(n, "CREATE TABLE IF NOT EXISTS lab_fill (id bigint, pad text)")
    error = None
    for _ in range(200):
        try:
            sql(n, "INSERT INTO lab_fill SELECT g, repeat('f', 1000) FROM generate_series(1, 20000) g",
                timeout=30)
        except LabError as exc:
            error = str(exc)
            break
    try:
        sql(n, "CHECKPOINT", timeout=30)
    except LabError as exc:
        error = error or str(exc)
    ctx.details.update(mount=f"tmpfs size=128m on {n.data_dir}", switched_over_from=old.name,
                       insert_error=error)
    symptom(ctx, r"No space left on device|could not extend file", postgres_logs(n) + patroni_logs(n), 30)


@healer("disk-full")
def _h_diskfull(ctx: Ctx) -> str:
    lay, n = ctx.lay, ctx.node
    action = reclone(lay, n) + f" after unmounting the tmpfs on {n.data_dir}"
    others = [m for m in lay.nodes if m.name != n.name]
    # The crashed leader wrote WAL the others never received, so they stay replicas ("My wal
    # position exceeds maximum replication lag"); a manual failover is the operator's way out.
    deadline = time.monotonic() + configs.TTL + 10
    while time.monotonic() < deadline and not leader_among(lay, others):
        view = cluster.cluster_view(lay) or {}
        if view.get("members") and not any(m.get("role") == "leader" for m in view["members"]):
            try:
                patronictl(lay, "failover", "--candidate", others[0].name, "--force")
            except LabError as exc:
                # a member took the lock on its own between the look and the command: nothing to do
                if "already the leader" not in str(exc):
                    raise
                break
            wait_until(lambda: leader_among(lay, others) is not None, 30, "the failover")
            action += f"; failover to {others[0].name} (the others lagged too far to promote)"
            break
        time.sleep(1)
    return action
