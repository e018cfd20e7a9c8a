"""``pgdoctor run``: diagnose this node — collect every domain, run every check, print the diagnoses."""

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
    PgUserOpt,
    PlaybooksOpt,
    SlotRetainedOpt,
    TimeoutOpt,
    progress_status,
    split_ids,
    thresholds,
)
from doctor.errors import UsageError


def run(
    config: str | None = ConfigOpt,
    format: Format = FormatOpt,
    output: Path | None = OutputOpt,
    only: list[str] | None = typer.Option(None, "--only", help="Run only these checks or problem ids (repeat or comma-separate)."),
    skip: list[str] | None = typer.Option(None, "--skip", help="Skip these checks or problem ids."),
    timeout: float = TimeoutOpt,
    since: str = typer.Option("2h", "--since", help="How far back to read logs (e.g. 30m, 2h, 1d)."),
    pg_user: str | None = PgUserOpt,
    logs: bool = typer.Option(True, "--logs/--no-logs", help="Read this node's logs for known problems."),
    log_file: list[str] | None = typer.Option(None, "--log-file", help="Also read this log file (repeatable)."),
    max_lag_bytes: str | None = MaxLagBytesOpt,
    max_lag_seconds: float | None = MaxLagSecondsOpt,
    slot_retained: str | None = SlotRetainedOpt,
    expect_members: int | None = ExpectMembersOpt,
    playbooks: list[str] | None = PlaybooksOpt,
    cluster: bool = typer.Option(False, "--cluster", help="Judge the whole cluster from here: every member's "
                                 "REST API (/patroni, /config, /history, /cluster) beside this node's own facts; "
                                 "findings name their member."),
) -> None:
    """Diagnose this node: collect facts, run every check, print diagnoses with filled-in fixes.

    Examples:

      pgdoctor run -c /etc/patroni/patroni.yml

      pgdoctor run --format json | jq -r '.diagnoses[0].id'

      pgdoctor run --format html -o report.html

      pgdoctor run --cluster -c /etc/patroni/patroni.yml
    """
    from doctor.collect import CollectOptions
    from doctor.engine import load_checks, unknown_ids
    from doctor.pipeline import FULL_PROFILES, analyze, collect
    from doctor.render.emit import emit_report
    from doctor.units import parse_duration

    only_ids, skip_ids = split_ids(only), split_ids(skip)
    bad = unknown_ids(load_checks(), only_ids + skip_ids)
    if bad:
        raise UsageError(f"unknown check or problem id: {', '.join(bad)} (see: pgdoctor checks)")
    try:
        parse_duration(since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = thresholds(max_lag_bytes, max_lag_seconds, slot_retained, expect_members)
    options = CollectOptions(config_path=config, timeout=timeout, since=since, pg_user=pg_user,
                             read_logs=logs, log_files=list(log_file or []), playbook_dirs=list(playbooks or []),
                             validate_when_clean=False)
    with progress_status(format == Format.text):
        facts, _ = collect(options, profile="cluster" if cluster else "run", settings=settings)
    if cluster:
        from doctor.collect.fleet import from_node
        from doctor.pipeline import analyze_cluster

        raise typer.Exit(emit_report(analyze_cluster(from_node(facts), playbook_dirs=playbooks, settings=settings,
                                                     only=only_ids, skip_ids=skip_ids), format, output))
    report = analyze(facts, command="run", profiles=FULL_PROFILES, only=only_ids, skip_ids=skip_ids,
                     playbook_dirs=playbooks)
    raise typer.Exit(emit_report(report, format, output))
