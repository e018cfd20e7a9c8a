"""split-brain: a replica's PostgreSQL promoted behind Patroni's back.

The cluster is paused first (``patronictl pause``), so Patroni takes no action while a replica is
promoted with ``pg_promote()``: two writable primaries, only one holding the leader key. Healing
resumes the cluster and rebuilds the rogue member from the leader (``patronictl reinit``).
"""

from __future__ import annotations

from .. import cluster
from .helpers import leader, patronictl, resume, sql, wait_until
from .registry import Ctx, fault, healer


@fault("split-brain", "cluster paused, then a replica's PostgreSQL promoted with pg_promote(): two "
       "writable primaries, one holding the leader key")
def _b_split_brain(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    patronictl(lay, "pause", "--wait")
    sql(n, "SELECT pg_promote(true, 30)", timeout=40)
    wait_until(lambda: sql(n, "SELECT NOT pg_is_in_recovery()", fetch=True)[0][0], 30,
               f"{n.name} to leave recovery")
    ctx.details.update(leader=ld.name, rogue=n.name)
    ctx.state["leader"] = ld.name
    ctx.save()


@healer("split-brain")
def _h_split_brain(ctx: Ctx) -> str:
    lay, n = ctx.lay, ctx.node
    resume(lay)
    patronictl(lay, "reinit", lay.scope, n.name, "--force", "--wait", timeout=180)
    cluster.wait_healthy(lay)
    return f"patronictl resume; {n.name} rebuilt from the leader with patronictl reinit"
