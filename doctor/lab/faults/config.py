"""Faults in patroni.yml and in the dynamic configuration."""

from __future__ import annotations

from .. import cluster, configs
from .helpers import patch_config, restore_dynamic_config
from .logs import patroni_logs, symptom
from .registry import Ctx, fault, healer


@fault("config-invalid-yaml", "a tab in a node's patroni.yml; its Patroni is restarted and exits "
       "with a yaml ScannerError")
def _b_yaml(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    text = configs.render(ctx.lay, n)
    broken = text.replace(f"\n  listen: {n.address}:{n.rest_port}\n",
                          f"\n\tlisten: {n.address}:{n.rest_port}\n", 1)
    assert broken != text
    configs.write(ctx.lay, n, text=broken)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(config=str(n.config), change="restapi.listen indented with a tab")
    symptom(ctx, r"^yaml\.scanner\.ScannerError|^found character", patroni_logs(n), 20)


@healer("config-invalid-yaml")
def _h_yaml(ctx: Ctx) -> str:
    cluster.stop_member(ctx.node)
    configs.write(ctx.lay, ctx.node)
    return f"rewrote {ctx.node.config} and restarted Patroni"


TIMING = {"loop_wait": 10, "retry_timeout": 10}


@fault("config-invalid", "loop_wait 10 and retry_timeout 10 with ttl 20 in the dynamic configuration "
       "(patronictl edit-config would do the same): the rule loop_wait + 2*retry_timeout <= ttl is "
       "broken and every Patroni says so", variant="timing", target="cluster")
def _b_timing(ctx: Ctx) -> None:
    patch_config(ctx.lay, TIMING)
    ctx.details.update(change=f"{TIMING} with ttl {configs.TTL}")
    symptom(ctx, r'Violated the rule "loop_wait \+ 2\*retry_timeout <= ttl"', patroni_logs(ctx.lay.nodes[0]), 30)


@healer("config-invalid.timing")
def _h_timing(ctx: Ctx) -> str:
    restore_dynamic_config(ctx.lay)
    return "ttl, loop_wait and retry_timeout back to the lab's values"
