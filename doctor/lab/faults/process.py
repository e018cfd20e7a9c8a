"""Faults of the processes on one member: Patroni killed or hung, PostgreSQL that will not start."""

from __future__ import annotations

import signal

from .. import cluster, configs, procs
from .helpers import leader_among, member_names, sigcont_patroni, wait_until
from .logs import patroni_logs, symptom
from .registry import Ctx, fault, healer


@fault("patroni-not-running", "a replica's Patroni SIGKILLed: its PostgreSQL keeps running "
       "without Patroni and the member key expires")
def _b_patroni_dead(ctx: Ctx) -> None:
    n = ctx.node
    pid = cluster.patroni_pid(n)
    procs.signal_pid(pid, signal.SIGKILL)
    procs.wait_gone(pid, str(n.config), 10)
    ctx.details.update(killed_patroni=pid, postgres_pid=cluster.postgres_pid(n))
    if ctx.wait:
        wait_until(lambda: n.name not in member_names(ctx.lay), configs.TTL + 15,
                   f"{n.name}'s member key to expire")
        ctx.details["member_key_expired"] = True


@fault("rest-api-unreachable", "a replica's Patroni SIGSTOPped: its REST API accepts connections "
       "but never answers; PostgreSQL keeps streaming")
def _b_rest_stopped(ctx: Ctx) -> None:
    import requests

    n = ctx.node
    pid = cluster.patroni_pid(n)
    procs.signal_pid(pid, signal.SIGSTOP)
    ctx.details.update(stopped_patroni=pid)
    try:
        requests.get(f"{n.rest_url}/patroni", timeout=2)
        ctx.details["rest_probe"] = "answered"
    except requests.RequestException as exc:
        ctx.details["rest_probe"] = type(exc).__name__


@healer("rest-api-unreachable")
def _h_rest_stopped(ctx: Ctx) -> str:
    sigcont_patroni(ctx.node)
    return f"SIGCONT to {ctx.node.name}'s Patroni"


@fault("leader-lock-lost", "the leader's Patroni SIGSTOPped longer than ttl (as a hung process "
       "or a long GC/VM pause), then resumed: another member holds the lock", target="leader")
def _b_lock_lost(ctx: Ctx) -> None:
    lay, old = ctx.lay, ctx.node
    pid = cluster.patroni_pid(old)
    procs.signal_pid(pid, signal.SIGSTOP)
    others = [n for n in lay.nodes if n.name != old.name]
    try:
        wait_until(lambda: leader_among(lay, others) is not None, configs.TTL + 30, "another member to take over")
    finally:
        procs.signal_pid(pid, signal.SIGCONT)
    ctx.details.update(old_leader=old.name, new_leader=leader_among(lay, others), paused_patroni=pid)
    symptom(ctx, r"[Dd]emot|failed to update leader lock", patroni_logs(old), 30)


@healer("leader-lock-lost")
def _h_lock_lost(ctx: Ctx) -> str:
    sigcont_patroni(ctx.node)
    return f"nothing to undo; waited for {ctx.node.name} to rejoin (pg_rewind)"


MISSING_LIBRARY = "pg_lab_missing"


@fault("postgres-start-failed", f"shared_preload_libraries = '{MISSING_LIBRARY}' (a library not installed on "
       "this host) in a replica's patroni.yml, Patroni restarted: PostgreSQL exits at every start",
       variant="missing-library")
def _b_missing_library(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    configs.write(ctx.lay, n, configs.NodeOptions(parameters={"shared_preload_libraries": MISSING_LIBRARY}))
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(change=f"postgresql.parameters.shared_preload_libraries = {MISSING_LIBRARY!r}")
    # PostgreSQL's FATAL (on Patroni's stderr) comes first; the symptom is Patroni giving up on this start
    symptom(ctx, r"failed to start postgres", [n.patroni_log], 40)


@healer("postgres-start-failed.missing-library")
def _h_missing_library(ctx: Ctx) -> str:
    cluster.stop_member(ctx.node)
    configs.write(ctx.lay, ctx.node)
    return f"removed shared_preload_libraries from {ctx.node.config}, restarted Patroni"
