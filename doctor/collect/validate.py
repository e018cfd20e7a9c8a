"""Patroni's own opinion of the config: ``patroni --validate-config --ignore-listen-port``.

Kept as evidence for the config checks, not as a verdict: the validator rejects loopback
connect addresses and unreachable DCS hosts, which are judged by pgdoctor's own checks.
It lands in ``facts["config"]["validate"]``.
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
