"""replication-round-trip: a replica that streams but does not replay, so a write on the leader
never reaches it (what ``pgdoctor verify``'s round trip must catch while ``patronictl list`` still
shows the member streaming)."""

from __future__ import annotations

from .helpers import pause_replay, resume, try_sql
from .registry import Ctx, fault, healer


@fault("replication-round-trip", "cluster paused (so Patroni leaves the replica alone), then WAL replay "
       "paused on a replica with pg_wal_replay_pause(); it keeps receiving WAL")
def _b_round_trip(ctx: Ctx) -> None:
    n = ctx.node
    ld = pause_replay(ctx)
    ctx.details.update(leader=ld.name, paused=n.name)
    ctx.state["leader"] = ld.name
    ctx.save()


@healer("replication-round-trip")
def _h_round_trip(ctx: Ctx) -> str:
    try_sql(ctx.node, "SELECT pg_wal_replay_resume()")
    resume(ctx.lay)
    return f"WAL replay resumed on {ctx.node.name}, patronictl resume"
