"""Is Patroni itself running for this config."""

from __future__ import annotations

from doctor.engine import CheckContext, Verdict, check, fail, ok
from doctor.model.processes import describe, node_patroni, node_postmasters, postmaster_is_patroni_managed


def _same_cluster(ctx: CheckContext, procs: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """Split other Patroni processes into this cluster's (same scope and namespace, a shared etcd
    endpoint), other clusters' and those whose config could not be read."""
    known = {p.get("pid"): p for p in ctx.facts.get("patroni_api.local_patronis") or [] if isinstance(p, dict)}
    ours = set(ctx.node.etcd_endpoints)
    same, foreign, unknown = [], [], []
    for p in procs:
        k = known.get(p.get("pid")) or {}
        if "scope" not in k:
            unknown.append(p)
        elif k.get("scope") == ctx.node.scope and k.get("namespace") == ctx.node.namespace \
                and (not ours or not k.get("dcs_endpoints") or ours & set(k["dcs_endpoints"])):
            same.append(p)
        else:
            foreign.append(p)
    return same, foreign, unknown


@check("processes.patroni", "Patroni runs for this config", playbook="patroni-not-running",
       profiles=("run",), needs=("system.processes",))
def patroni_running(ctx: CheckContext) -> Verdict:
    ours = node_patroni(ctx.facts, ctx.node)
    if ours:
        p = ours[0]
        return ok(f"Patroni pid {p['pid']} runs {ctx.node.config_path}")
    others = ctx.facts.get("system.processes.patroni") or []
    same, foreign, unknown = _same_cluster(ctx, others)
    evidence = [f"Patroni of the same cluster (scope {ctx.node.scope}): {describe(p)}" for p in same]
    evidence += [f"Patroni whose config could not be read: {describe(p)}" for p in unknown]
    if foreign:
        evidence.append(f"{len(foreign)} Patroni process{'es' if len(foreign) != 1 else ''} of other clusters "
                        f"run{'s' if len(foreign) == 1 else ''} here (pids {', '.join(str(p.get('pid')) for p in foreign)})")
    # A PostgreSQL that Patroni started and that outlived it (Patroni killed or crashed) keeps serving
    # with nobody renewing the leader key or following a new leader: say so, it changes the urgency.
    orphans = [pm for pm in node_postmasters(ctx.facts, ctx.node) if postmaster_is_patroni_managed(pm)]
    orphan = orphans[0] if orphans else None
    if orphan:
        evidence.insert(0, f"PostgreSQL started by Patroni still runs: {describe(orphan)}")
    return fail(f"no Patroni process runs {ctx.node.config_path} on this host"
                + (f"; the PostgreSQL it started (pid {orphan['pid']}, {ctx.node.data_dir}) still runs without it: "
                   "no member key, no failover, no following a new leader" if orphan else "")
                + (f" ({len(same)} Patroni process{'es' if len(same) != 1 else ''} of the same cluster run other "
                   "configs here)" if same else ""),
                evidence=evidence,
                values={"postgres_pid": orphan["pid"] if orphan else None, "postgres_orphaned": bool(orphan)})
