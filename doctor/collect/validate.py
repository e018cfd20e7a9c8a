"""Patroni's own opinion of the config: ``patroni --validate-config --ignore-listen-port``.

It lands in ``facts["config"]["validate"]``. ``config.patroni`` fails on every objection it
makes about the config (quoted); what it says about this host at this moment (an unreachable
DCS host, the data directory's contents) stays evidence for the checks that judge those.
"""

from __future__ import annotations

from typing import Any

from doctor.collect import CollectContext, collector
from doctor.collect.config import run_validate_config


@collector("config_validate", profiles=("run", "preflight", "bundle"))
def collect_validate(ctx: CollectContext) -> dict[str, Any] | None:
    if ctx.config is None or not ctx.options.validate_config or not ctx.config_path:
        return {"skipped": True}
    return run_validate_config(ctx.config_path, ctx.deadline)
