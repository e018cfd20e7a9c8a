"""Faults of Patroni's watchdog."""

from __future__ import annotations

from .. import cluster, configs
from .helpers import restore_configs
from .logs import patroni_logs, symptom
from .registry import Ctx, fault, healer

MISSING_DEVICE = "/dev/pgdoctor-lab-no-watchdog"


@fault("watchdog-unavailable", f"watchdog mode 'required' with device {MISSING_DEVICE} (no such device) in every "
       "member's patroni.yml, Patroni reloaded: the leader demotes itself and no member may promote",
       target="leader")
def _b_watchdog(ctx: Ctx) -> None:
    watchdog = {"mode": "required", "device": MISSING_DEVICE}
    for n in ctx.lay.nodes:
        configs.write(ctx.lay, n, configs.NodeOptions(watchdog=watchdog))
        cluster.reload_patroni(n)
    ctx.details.update(change=f"watchdog: {watchdog} in every patroni.yml", device=MISSING_DEVICE,
                       leader_before=ctx.node.name)
    symptom(ctx, r"Demoting self because watchdog could not be activated", patroni_logs(ctx.node), 30)


@healer("watchdog-unavailable")
def _h_watchdog(ctx: Ctx) -> str:
    restore_configs(ctx.lay)
    return "watchdog section removed from every patroni.yml, Patroni reloaded"
