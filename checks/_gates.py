"""Gates the checks share (``@check(..., gates=(...))``): judgements of the facts that answer for a check
before it runs, so that every check over the cluster says the same thing when its source is missing."""

from __future__ import annotations

from collections.abc import Callable

from doctor.engine import CheckContext, Verdict, skip
from doctor.model import model_of


def _dcs_error(ctx: CheckContext) -> str:
    err = ctx.facts.dcs_keys_error
    return f"{err.get('kind', 'unknown')}: {err.get('message', '')}"


def dcs_keys(ctx: CheckContext) -> Verdict | None:
    """Skip what only the DCS keys (member keys, leader, config) can tell."""
    if not ctx.facts.dcs_keys_read:
        return skip(f"the DCS keys could not be read ({_dcs_error(ctx)})")
    return None


def cluster_known(ctx: CheckContext) -> Verdict | None:
    """Skip when neither the DCS nor the REST API told us the cluster's members and settings."""
    if not ctx.facts.dcs_keys_read and ctx.facts.dict_at("patroni_api.cluster.body") is None:
        return skip(f"neither the DCS keys nor this node's REST /cluster could be read ({_dcs_error(ctx)})")
    return None


def dcs_working(what: str) -> Callable[[CheckContext], Verdict | None]:
    """Skip what only follows from a working DCS: without one, Patroni follows no leader and promotes
    nobody, so a replica not streaming or no failover candidate is the DCS outage, not its own problem
    (re-cloning a replica would not help)."""

    def gate(ctx: CheckContext) -> Verdict | None:
        down = model_of(ctx.facts).dcs_down
        if down:
            return skip(f"{down}: {what} cannot be judged while Patroni cannot use the DCS (see dcs-unreachable)")
        return None

    return gate
