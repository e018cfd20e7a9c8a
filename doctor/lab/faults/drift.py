"""Config drift: one member's patroni.yml written apart from the others' (a hand edit, a config
management run that reached only some hosts). Patroni reads its file only at start and on reload, so the
running cluster stays healthy; what differs is the file, as a bundle of that member shows it."""

from __future__ import annotations

from .. import configs
from .registry import Ctx, fault, healer

DRIFTED_PARAMETER = {"wal_keep_size": "256MB"}  # the dynamic configuration says 128MB


@fault("config-drift", "one member's patroni.yml lists only two of the three etcd hosts (the others "
       "list all three); Patroni is not reloaded, so the cluster keeps running")
def _b_hosts(ctx: Ctx) -> None:
    n = ctx.node
    text = configs.render(ctx.lay, n)
    dropped = ctx.lay.etcd_hosts[-1]
    drifted = text.replace(f"    - {dropped}\n", "", 1)
    assert drifted != text
    configs.write(ctx.lay, n, text=drifted)
    ctx.details.update(config=str(n.config), change=f"etcd3.hosts without {dropped}")


@fault("parameter-drift", "one member's patroni.yml sets postgresql.parameters.wal_keep_size 256MB, "
       "the dynamic configuration 128MB; Patroni is not reloaded")
def _b_param(ctx: Ctx) -> None:
    n = ctx.node
    configs.write(ctx.lay, n, configs.NodeOptions(parameters=dict(DRIFTED_PARAMETER)))
    ctx.details.update(config=str(n.config), change=f"postgresql.parameters {DRIFTED_PARAMETER}")


@healer("config-drift", "parameter-drift")
def _h_drift(ctx: Ctx) -> str:
    configs.write(ctx.lay, ctx.node)
    return f"rewrote {ctx.node.config} as the other members' (Patroni was never reloaded with the drift)"
