"""Faults in cloning a replica with pg_basebackup (other than logging in: see ``auth``)."""

from __future__ import annotations

from .. import cluster, configs
from .helpers import reclone, rm_data_dir
from .logs import patroni_logs, symptom
from .registry import Ctx, fault, healer

# An operator who means 10 MB/s writes `max-rate: 10`; pg_basebackup reads kB/s and accepts 32 kB/s at least.
BASEBACKUP = [{"max-rate": "10"}]


@fault("basebackup-failed", f"postgresql.basebackup {BASEBACKUP} (a rate below pg_basebackup's minimum) in a "
       "replica's patroni.yml, its data dir removed and Patroni restarted: every clone attempt fails")
def _b_basebackup(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    configs.write(ctx.lay, n, configs.NodeOptions(extra_local_postgresql={"basebackup": BASEBACKUP}))
    rm_data_dir(n)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(change=f"postgresql.basebackup = {BASEBACKUP}", removed=str(n.data_dir))
    symptom(ctx, r"pg_basebackup: error: ", patroni_logs(n), 40)


@healer("basebackup-failed")
def _h_basebackup(ctx: Ctx) -> str:
    return reclone(ctx.lay, ctx.node, config=True)
