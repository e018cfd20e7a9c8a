"""Faults on a member's listening ports: a foreign listener, a PostgreSQL Patroni did not start."""

from __future__ import annotations

import os
from pathlib import Path

from .. import cluster, procs
from .helpers import start_foreign_listener, stop_extra_pids
from .logs import patroni_logs, postgres_logs, symptom
from .registry import Ctx, fault, healer


def _foreign_listener_then_patroni(ctx: Ctx, port: int, symptom_re: str, logs: list[Path]) -> None:
    """Stop the member, put a foreign listener on one of its ports, start Patroni and wait for ``symptom_re``."""
    n = ctx.node
    cluster.stop_member(n)
    pid = start_foreign_listener(ctx, n, port)
    cluster.start_patroni(ctx.lay, n, check_ports=False)
    ctx.details.update(listener_pid=pid, port=f"{n.address}:{port}")
    symptom(ctx, symptom_re, logs)


@fault("port-in-use", "a foreign listener (python3 -m http.server) on a member's PostgreSQL "
       "address:port while its Patroni is stopped, then Patroni started", variant="pg")
def _b_port_pg(ctx: Ctx) -> None:
    n = ctx.node
    _foreign_listener_then_patroni(ctx, n.pg_port, r"could not bind|Address already in use",
                                   patroni_logs(n) + postgres_logs(n))


@fault("port-in-use", "a foreign listener (python3 -m http.server) on a member's REST "
       "address:port while its Patroni is stopped, then Patroni started", variant="rest")
def _b_port_rest(ctx: Ctx) -> None:
    n = ctx.node
    _foreign_listener_then_patroni(ctx, n.rest_port, r"there is already a node named|Address already in use",
                                   patroni_logs(n))


@healer("port-in-use.pg", "port-in-use.rest")
def _h_port(ctx: Ctx) -> str:
    cluster.stop_member(ctx.node)
    stop_extra_pids(ctx.lay)
    return f"stopped the foreign listener, restarted Patroni on {ctx.node.name}"


@fault("postgres-outside-patroni", "a member's Patroni stopped and its PostgreSQL started "
       "directly with pg_ctl as postgres")
def _b_outside(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    cluster.stop_member(n)
    pg_ctl = os.path.join(lay.bins.pg_bin, "pg_ctl")
    opts = f"-c listen_addresses={n.address} -c port={n.pg_port}"
    procs.run([pg_ctl, "-D", str(n.data_dir), "-l", str(n.dir / "pg_ctl.log"), "-o", opts,
               "-w", "-t", "30", "start"], as_postgres=True, timeout=40)
    ctx.details.update(command=f"pg_ctl -D {n.data_dir} -o '{opts}' start",
                       postgres_pid=cluster.postgres_pid(n), patroni_running=False)
    symptom(ctx, r"database system is ready to accept", postgres_logs(n), 20)


@healer("postgres-outside-patroni")
def _h_outside(ctx: Ctx) -> str:
    n = ctx.node
    pg_ctl = os.path.join(ctx.lay.bins.pg_bin, "pg_ctl")
    if cluster.postgres_pid(n):
        procs.run([pg_ctl, "-D", str(n.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                  as_postgres=True, timeout=40, check=False)
    cluster.stop_postgres(n)
    return f"stopped the pg_ctl-started PostgreSQL on {n.name}, started Patroni"
