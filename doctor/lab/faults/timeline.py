"""Timeline faults: a former leader that forked off the new leader's timeline, without pg_rewind
(timeline-diverged) or with a pg_rewind that fails (rewind-failed)."""

from __future__ import annotations

import signal
import time

from .. import cluster, configs, procs
from ..layout import LabError, Node
from .helpers import (
    leader,
    patch_config,
    reclone,
    restore_configs,
    restore_dynamic_config,
    roles,
    sql,
    try_on_leader,
    wait_until,
)
from .logs import patroni_logs, postgres_logs, symptom
from .registry import Ctx, fault, healer


def _require_leader(ctx: Ctx) -> Node:
    old = ctx.node
    if roles(ctx.lay).get(old.name) not in ("primary", "master"):
        raise LabError(f"{old.name} is not the leader; this fault needs --node to be the leader")
    return old


def fork_timeline(ctx: Ctx, old: Node) -> Node:
    """Crash the leader ``old`` with writes its replicas never received (its WAL senders SIGSTOPped),
    wait for another member to promote and write there too; ``old`` is left stopped, forked off the
    new timeline. Returns the new leader."""
    lay = ctx.lay
    pm = cluster.postgres_pid(old)
    senders = [p for p in procs.descendants(pm) if "walsender" in procs.cmdline(p)]
    if not senders:
        raise LabError(f"no walsender found under {old.name}'s postmaster")
    for p in senders:
        procs.signal_pid(p, signal.SIGSTOP)
    sql(old, "CREATE TABLE IF NOT EXISTS lab_diverged (id int, note text)")
    sql(old, "INSERT INTO lab_diverged SELECT g, 'only on the old leader' FROM generate_series(1, 1000) g")
    ppid = cluster.patroni_pid(old)
    kids = procs.descendants(pm)
    procs.signal_pid(ppid, signal.SIGKILL)
    procs.signal_pid(pm, signal.SIGKILL)
    for k in kids:
        procs.signal_pid(k, signal.SIGKILL)
    procs.wait_gone(pm, str(old.data_dir), 10)
    others = [n for n in lay.nodes if n.name != old.name]
    wait_until(lambda: any(roles(lay).get(n.name) in ("primary", "master") for n in others),
               configs.TTL + 30, "another member to take over")
    new = leader(lay)
    wait_until(lambda: (cluster.member_status(new) or {}).get("timeline", 1) >= 2, 30,
               f"{new.name} to reach a new timeline")
    sql(new, "CREATE TABLE IF NOT EXISTS lab_diverged (id int, note text)")
    sql(new, "INSERT INTO lab_diverged SELECT g, 'written on the new leader' FROM generate_series(1, 1000) g")
    sql(new, "CHECKPOINT")
    ctx.details.update(old_leader=old.name, new_leader=new.name, stopped_walsenders=senders, killed=[ppid, pm])
    return new


@fault("timeline-diverged", "pg_rewind off; the leader's walsenders SIGSTOPped, writes on it, it "
       "is SIGKILLed; another member promotes; the old leader comes back on a forked timeline",
       target="leader")
def _b_timeline(ctx: Ctx) -> None:
    lay = ctx.lay
    old = _require_leader(ctx)
    patch_config(lay, {"postgresql": {"use_pg_rewind": False,
                                      "remove_data_directory_on_rewind_failure": False,
                                      "remove_data_directory_on_diverged_timelines": False}})
    for n in lay.nodes:
        configs.write(lay, n, configs.NodeOptions(use_pg_rewind=False))
        cluster.reload_patroni(n)
    time.sleep(2 * configs.LOOP_WAIT + 1)
    fork_timeline(ctx, old)
    cluster.start_patroni(lay, old)
    symptom(ctx, r"forked off current database system timeline", postgres_logs(old), 60)


@healer("timeline-diverged")
def _h_timeline(ctx: Ctx) -> str:
    lay = ctx.lay
    action = reclone(lay, ctx.node)
    restore_configs(lay)
    restore_dynamic_config(lay)
    try_on_leader(lay, "DROP TABLE IF EXISTS lab_diverged")
    return f"{action} from the new leader, use_pg_rewind back on"


# A dedicated rewind user made by hand, without the EXECUTE grants on pg_ls_dir, pg_stat_file and
# pg_read_binary_file that pg_rewind needs (Patroni grants them only to a rewind user it creates at bootstrap).
REWIND_USER = "rewinder"
REWIND_PASSWORD = "lab-rewind-secret"


@fault("rewind-failed", "a rewind user without the grants pg_rewind needs set in the leader's config "
       "(authentication.rewind); the leader crashes with writes its replicas never got, another member "
       "promotes, and the old leader's pg_rewind is refused: 'permission denied for function ...'",
       target="leader")
def _b_rewind(ctx: Ctx) -> None:
    lay = ctx.lay
    old = _require_leader(ctx)
    sql(old, f"CREATE ROLE {REWIND_USER} LOGIN PASSWORD '{REWIND_PASSWORD}'")
    for n in lay.nodes:
        if n.name != old.name:
            wait_until(lambda n=n: bool(sql(n, "SELECT 1 FROM pg_roles WHERE rolname = %s", (REWIND_USER,),
                                            fetch=True)), 20, f"role {REWIND_USER} on {n.name}")
    configs.write(lay, old, configs.NodeOptions(rewind_user=(REWIND_USER, REWIND_PASSWORD)))
    fork_timeline(ctx, old)
    cluster.start_patroni(lay, old)
    ctx.details.update(rewind_user=REWIND_USER, config=str(old.config))
    symptom(ctx, r"Failed to rewind from healthy|pg_rewind exit code=[1-9]", patroni_logs(old), 90)


@healer("rewind-failed")
def _h_rewind(ctx: Ctx) -> str:
    lay = ctx.lay
    action = reclone(lay, ctx.node, config=True)
    try_on_leader(lay, "DROP TABLE IF EXISTS lab_diverged")
    try_on_leader(lay, f"DROP ROLE IF EXISTS {REWIND_USER}")
    return f"{action} from the new leader, role {REWIND_USER} dropped"
