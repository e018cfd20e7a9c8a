"""Faults in WAL archiving on the leader."""

from __future__ import annotations

from .helpers import leader, patch_config, patronictl, sql
from .logs import postgres_logs, symptom
from .registry import Ctx, fault, healer

FAILING_COMMAND = "false"


def _restart_postgres(ctx: Ctx) -> None:
    """archive_mode takes effect only at a restart; Patroni's own restart keeps the member in the cluster."""
    patronictl(ctx.lay, "restart", ctx.lay.scope, ctx.node.name, "--force", timeout=90)


@fault("archive-command-failed", f"archive_mode on with archive_command '{FAILING_COMMAND}' in the dynamic "
       "configuration (patronictl edit-config would do the same), the leader restarted, a write and "
       "pg_switch_wal(): the archiver fails on every segment", target="leader")
def _b_archive(ctx: Ctx) -> None:
    n = ctx.node
    patch_config(ctx.lay, {"postgresql": {"parameters": {"archive_mode": "on", "archive_command": FAILING_COMMAND}}})
    _restart_postgres(ctx)
    sql(n, "CREATE TABLE IF NOT EXISTS lab_archive_probe (id int)")
    sql(n, "INSERT INTO lab_archive_probe SELECT generate_series(1, 1000)")
    segment = sql(n, "SELECT pg_walfile_name(pg_switch_wal())", fetch=True)[0][0]
    ctx.details.update(change=f"archive_mode on, archive_command {FAILING_COMMAND!r}", segment=segment,
                       leader=n.name)
    symptom(ctx, r"archive command failed with exit code 1", postgres_logs(n), 30)


@healer("archive-command-failed")
def _h_archive(ctx: Ctx) -> str:
    patch_config(ctx.lay, {"postgresql": {"parameters": {"archive_mode": None, "archive_command": None}}})
    ctx.target = leader(ctx.lay)
    _restart_postgres(ctx)
    sql(ctx.node, "DROP TABLE IF EXISTS lab_archive_probe")
    return "archive_mode and archive_command removed from the dynamic configuration; the leader restarted"
