"""Is Patroni itself running for this config."""

from __future__ import annotations

from doctor.engine import CheckContext, Verdict, check, fail, ok
from doctor.procs import describe, node_patroni


@check("processes.patroni", "Patroni runs for this config", "patroni-not-running",
       profiles=("run",), needs=("system.processes",))
def patroni_running(ctx: CheckContext) -> Verdict:
    ours = node_patroni(ctx.facts, ctx.node)
    if ours:
        p = ours[0]
        return ok(f"Patroni pid {p['pid']} runs {ctx.node.config_path}")
    others = ctx.facts.get("system.processes.patroni") or []
    evidence = [f"other Patroni: {describe(p)}" for p in others]
    return fail(f"no Patroni process runs {ctx.node.config_path} on this host"
                + (f" ({len(others)} other Patroni process{'es' if len(others) != 1 else ''} run other configs)" if others else ""),
                evidence=evidence)
