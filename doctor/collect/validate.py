"""Patroni's own opinion of the config: ``patroni --validate-config --ignore-listen-port``.

It lands in ``facts["config"]["validate"]``. ``config.patroni`` fails on every objection it
makes about the config (quoted); what it says about this host at this moment (an unreachable
DCS host, the data directory's contents) stays evidence for the checks that judge those.

The validator starts a whole Python with Patroni (~0.3 s of CPU), longer than the rest of a
``run``. pgdoctor's schema (doctor/config_schema.py) is at least as strict as it
(tests/unit/test_config_corpus.py), so with ``CollectOptions.validate_when_clean`` off (``run``)
it runs only when the schema already objects, to quote Patroni's words next to pgdoctor's;
``preflight`` and ``bundle`` always run it.
"""

from __future__ import annotations

from typing import Any

from doctor.collect import CollectContext, collector
from doctor.collect.config import run_validate_config

CLEAN = "pgdoctor's schema finds no problem in the config, so Patroni's validator was not run (preflight runs it)"


@collector("config_validate", profiles=("run", "preflight", "bundle"))
def collect_validate(ctx: CollectContext) -> dict[str, Any] | None:
    if ctx.config is None or not ctx.options.validate_config or not ctx.config_path:
        return {"skipped": True}
    if not ctx.options.validate_when_clean:
        from doctor.config_schema import Host, config_problems

        if not config_problems(ctx.config, Host()):
            return {"skipped": True, "reason": CLEAN}
    return run_validate_config(ctx.config_path, ctx.deadline)
