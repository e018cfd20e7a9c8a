"""Faults in a member's data directory."""

from __future__ import annotations

import os
import subprocess

from .. import cluster, procs
from .helpers import reclone, rm_data_dir, stop_extra_pids, wait_until
from .logs import patroni_logs, postgres_logs, symptom
from .registry import Ctx, fault, healer


@fault("datadir-permissions", "a stopped replica's data dir owned by root, then its Patroni started",
       variant="owner-root")
@fault("datadir-permissions", "a stopped replica's data dir set to 0755, then its Patroni started")
def _b_perms(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    if ctx.variant == "owner-root":
        os.chown(n.data_dir, 0, 0)
        os.chmod(n.data_dir, 0o700)
        ctx.details["change"] = f"chown root:root {n.data_dir}"
        pattern = r"PermissionError|Permission denied"
    else:
        os.chmod(n.data_dir, 0o755)
        ctx.details["change"] = f"chmod 0755 {n.data_dir}"
        pattern = r"has invalid permissions"
    cluster.start_patroni(ctx.lay, n)
    symptom(ctx, pattern, patroni_logs(n))


@healer("datadir-permissions", "datadir-permissions.owner-root")
def _h_perms(ctx: Ctx) -> str:
    n = ctx.node
    cluster.stop_member(n)
    uid, gid = cluster._postgres_ids()
    if n.data_dir.exists():
        os.chown(n.data_dir, uid, gid)
        os.chmod(n.data_dir, 0o700)
    return f"chown postgres, chmod 0700 {n.data_dir}, restarted Patroni"


@fault("datadir-not-empty", "a replica's data dir replaced by one with stray files and no "
       "PG_VERSION, then its Patroni started (clone blocked)")
def _b_notempty(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    rm_data_dir(n)
    n.data_dir.mkdir(mode=0o700)
    (n.data_dir / "lost+found").mkdir(mode=0o700)
    (n.data_dir / "restore-notes.txt").write_text("restored from backup host, see ticket\n")
    uid, gid = cluster._postgres_ids()
    for p in (n.data_dir, n.data_dir / "lost+found", n.data_dir / "restore-notes.txt"):
        os.chown(p, uid, gid)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(contents=["lost+found/", "restore-notes.txt"])
    symptom(ctx, r"data dir for the cluster is not empty", patroni_logs(n))


@fault("system-id-mismatch", "a replica's data dir replaced by a separately initdb'ed cluster, "
       "then its Patroni started")
def _b_sysid(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    cluster.stop_member(n)
    rm_data_dir(n)
    procs.run([os.path.join(lay.bins.pg_bin, "initdb"), "-D", str(n.data_dir), "-A", "trust",
               "-U", "postgres", "--locale", "C.UTF-8"], as_postgres=True, timeout=120)
    pid = cluster.start_patroni(lay, n)
    ctx.details.update(change=f"initdb -D {n.data_dir} (a different cluster)")
    symptom(ctx, r"system ID mismatch", patroni_logs(n))
    # Patroni exits after logging the mismatch: the fault is the state after that, not the instant before
    # (while it exits, its REST port is still open and the process table may or may not list it).
    wait_until(lambda: not procs.alive(pid, str(n.config)) and not procs.port_accepts(n.address, n.rest_port),
               30, f"{n.name}'s Patroni to exit after the system ID mismatch")


@healer("datadir-not-empty", "system-id-mismatch")
def _h_reclone(ctx: Ctx) -> str:
    return reclone(ctx.lay, ctx.node)


@fault("postmaster-pid-stale", "a member stopped with a postmaster.pid naming a live postgres-owned "
       "process, then Patroni started; Patroni logs 'Process N is not postmaster' and starts PostgreSQL "
       "anyway", variant="live-pid")
@fault("postmaster-pid-stale", "a member stopped with a postmaster.pid left behind naming a dead pid")
def _b_stale(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    pidfile = n.data_dir / "postmaster.pid"
    content = pidfile.read_text().splitlines()
    cluster.stop_member(n)
    if ctx.variant == "live-pid":
        pid = procs.spawn(["/bin/sleep", "infinity"], lay.base_dir / "sleep.log", None,
                          as_postgres=True, cwd=n.dir)
        ctx.add_extra_pid(pid, "sleep infinity")
    else:
        p = subprocess.Popen(["/bin/true"])
        p.wait()
        pid = p.pid
    content[0] = str(pid)
    pidfile.write_text("\n".join(content) + "\n")
    os.chmod(pidfile, 0o600)
    uid, gid = cluster._postgres_ids()
    os.chown(pidfile, uid, gid)
    ctx.details.update(postmaster_pid=str(pidfile), pid_in_file=pid,
                       pid_alive=procs.alive(pid))
    if ctx.variant == "live-pid":
        cluster.start_patroni(lay, n)
        symptom(ctx, r"is not postmaster|lock file \"postmaster.pid\" already exists",
                patroni_logs(n) + postgres_logs(n))


@healer("postmaster-pid-stale", "postmaster-pid-stale.live-pid")
def _h_stale(ctx: Ctx) -> str:
    n = ctx.node
    cluster.stop_member(n)
    stop_extra_pids(ctx.lay)
    pidfile = n.data_dir / "postmaster.pid"
    if pidfile.exists() and not cluster.postgres_pid(n):
        pidfile.unlink()
    return f"removed the stale {pidfile}, started Patroni"
