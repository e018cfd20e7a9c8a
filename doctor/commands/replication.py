"""``pgdoctor replication``: who replicates from whom, how far behind, which are synchronous,
whether writes are protected or blocked, and what a failover would do right now."""

from __future__ import annotations

from typing import Optional

import typer

from doctor.cli import ConfigOpt, Format, TimeoutOpt, app, emit_report
from doctor.errors import UsageError


@app.command()
def replication(
    config: Optional[str] = ConfigOpt,
    format: Format = typer.Option(Format.text, "--format", "-f", help="text for people, json for scripts."),
    timeout: float = TimeoutOpt,
    max_lag_bytes: Optional[str] = typer.Option(None, "--max-lag-bytes", help="Warn when a replica lags more than this (e.g. 16MB)."),
    max_lag_seconds: Optional[float] = typer.Option(None, "--max-lag-seconds", help="Warn when a replica's replay lags more than this."),
    slot_retained: Optional[str] = typer.Option(None, "--slot-retained-bytes", help="Warn when an inactive slot (or any slot with max_slot_wal_keep_size unlimited) retains more WAL than this (default 1GB)."),
    expect_members: Optional[int] = typer.Option(None, "--expect-members", min=1, help="How many members the cluster should have; fewer is a warning (default: the members the DCS still knows of)."),
) -> None:
    """Replication of the whole cluster: settings, members, lag, sync state, and the verdicts on writes and failover.

    Examples:

      pgdoctor replication -c /etc/patroni/patroni.yml

      pgdoctor replication --format json | jq '.replication.members[] | {name, replay_lag_bytes}'
    """
    from doctor.collect import CollectOptions
    from doctor.pipeline import analyze, collect
    from doctor.units import parse_size

    if format == Format.html:
        raise UsageError("pgdoctor replication prints text or json; use `pgdoctor run --format html` for a report file")
    try:
        lag_bytes = parse_size(max_lag_bytes) if max_lag_bytes else None
        slot_bytes = parse_size(slot_retained) if slot_retained else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options = CollectOptions(config_path=config, timeout=timeout, read_logs=False, validate_config=False)
    facts, _ = collect(options, profile="replication")
    settings = {"max_lag_bytes": lag_bytes, "max_lag_seconds": max_lag_seconds, "slot_retained_bytes": slot_bytes,
                "expect_members": expect_members}
    facts.set("settings", {k: v for k, v in settings.items() if v is not None})
    report = analyze(facts, command="replication", profiles=("replication",))
    raise typer.Exit(emit_report(report, format, None))
