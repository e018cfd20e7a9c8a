"""Faults in how replicas log in to the leader."""

from __future__ import annotations

import time

from .. import cluster, configs
from .helpers import leader, reclone, restore_configs, rm_data_dir, wait_until
from .logs import patroni_logs, postgres_logs, symptom
from .registry import Ctx, fault, healer


@fault("replication-auth-failed", "wrong replication password in a replica's config, its data dir "
       "removed and Patroni restarted: pg_basebackup fails in a loop")
def _b_replauth(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    configs.write(ctx.lay, n, configs.NodeOptions(replication_password="not-the-password"))
    rm_data_dir(n)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(change="postgresql.authentication.replication.password is wrong",
                       removed=str(n.data_dir))
    symptom(ctx, r'password authentication failed for user "replicator"', patroni_logs(n))


@healer("replication-auth-failed")
def _h_replauth(ctx: Ctx) -> str:
    return reclone(ctx.lay, ctx.node, config=True)


@fault("pg-hba-replication-missing", "the replication line removed from the leader's pg_hba "
       "(its patroni.yml, reloaded), then a replica (--node) re-clones and is refused")
def _b_hba(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    hba = [line for line in configs.default_pg_hba(lay) if " replication " not in line]
    configs.write(lay, ld, configs.NodeOptions(pg_hba=hba))
    cluster.reload_patroni(ld)
    hba_file = ld.data_dir / "pg_hba.conf"
    wait_until(lambda: "replication" not in
               "".join(x for x in hba_file.read_text().splitlines(True) if not x.startswith("#")),
               20, f"Patroni to rewrite {hba_file}")
    time.sleep(1.0)  # let PostgreSQL reload it
    cluster.stop_member(n)
    rm_data_dir(n)
    cluster.start_patroni(lay, n)
    ctx.details.update(leader=ld.name, leader_config=str(ld.config), pg_hba=hba,
                       recloning=n.name)
    ctx.state["leader"] = ld.name
    ctx.save()
    symptom(ctx, r"no pg_hba.conf entry for replication connection", patroni_logs(n) + postgres_logs(ld))


@healer("pg-hba-replication-missing")
def _h_hba(ctx: Ctx) -> str:
    restore_configs(ctx.lay)
    return "restored pg_hba in the leader's config and reloaded; the replica re-cloned"
