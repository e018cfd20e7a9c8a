"""Is Patroni itself running for this config."""

from __future__ import annotations

from doctor.engine import CheckContext, Verdict, check, fail, ok
from doctor.procs import describe, node_patroni, node_postmasters, postmaster_is_patroni_managed


@check("processes.patroni", "Patroni runs for this config", "patroni-not-running",
       profiles=("run",), needs=("system.processes",))
def patroni_running(ctx: CheckContext) -> Verdict:
    ours = node_patroni(ctx.facts, ctx.node)
    if ours:
        p = ours[0]
        return ok(f"Patroni pid {p['pid']} runs {ctx.node.config_path}")
    others = ctx.facts.get("system.processes.patroni") or []
    evidence = [f"other Patroni: {describe(p)}" for p in others]
    # A PostgreSQL that Patroni started and that outlived it (Patroni killed or crashed) keeps serving
    # with nobody renewing the leader key or following a new leader: say so, it changes the urgency.
    orphans = [pm for pm in node_postmasters(ctx.facts, ctx.node) if postmaster_is_patroni_managed(pm)]
    orphan = orphans[0] if orphans else None
    if orphan:
        evidence.insert(0, f"PostgreSQL started by Patroni still runs: {describe(orphan)}")
    return fail(f"no Patroni process runs {ctx.node.config_path} on this host"
                + (f"; the PostgreSQL it started (pid {orphan['pid']}, {ctx.node.data_dir}) still runs without it: "
                   "no member key, no failover, no following a new leader" if orphan else "")
                + (f" ({len(others)} other Patroni process{'es' if len(others) != 1 else ''} run other configs)" if others else ""),
                evidence=evidence,
                values={"postgres_pid": orphan["pid"] if orphan else None, "postgres_orphaned": bool(orphan)})
