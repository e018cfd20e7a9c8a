"""``pgdoctor replication``: who replicates from whom, how far behind, which are synchronous,
whether writes are protected or blocked, and what a failover would do right now."""

from __future__ import annotations

from pathlib import Path

import typer

from doctor.commands.options import (
    ConfigOpt,
    ExpectMembersOpt,
    Format,
    FormatOpt,
    MaxLagBytesOpt,
    MaxLagSecondsOpt,
    OutputOpt,
    SlotRetainedOpt,
    TimeoutOpt,
    thresholds,
)


def replication(
    config: str | None = ConfigOpt,
    format: Format = FormatOpt,
    output: Path | None = OutputOpt,
    timeout: float = TimeoutOpt,
    max_lag_bytes: str | None = MaxLagBytesOpt,
    max_lag_seconds: float | None = MaxLagSecondsOpt,
    slot_retained: str | None = SlotRetainedOpt,
    expect_members: int | None = ExpectMembersOpt,
) -> None:
    """Replication of the whole cluster: settings, members, lag, sync state, and the verdicts on writes and failover.

    Examples:

      pgdoctor replication -c /etc/patroni/patroni.yml

      pgdoctor replication --format json | jq '.replication.members[] | {name, replay_lag_bytes}'
    """
    from doctor.collect import CollectOptions
    from doctor.pipeline import analyze, collect
    from doctor.render.emit import emit_report

    settings = thresholds(max_lag_bytes, max_lag_seconds, slot_retained, expect_members)
    options = CollectOptions(config_path=config, timeout=timeout, read_logs=False, validate_config=False)
    facts, _ = collect(options, profile="replication", settings=settings)
    report = analyze(facts, command="replication", profiles=("replication",))
    raise typer.Exit(emit_report(report, format, output))
