"""``pgdoctor verify``: after bootstrap, and every day after, the cluster checklist a DBA ticks.

Collect (profile ``verify``: the cluster domains, a real replication round trip, the units that
start Patroni at boot), run the checks of profile ``verify`` and show the report's ``verify`` view
as a checklist in the course's order. Exit codes as ``run``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from doctor.commands.options import (
    ConfigOpt,
    ExpectMembersOpt,
    Format,
    FormatOpt,
    MaxLagBytesOpt,
    OutputOpt,
    RoundTripTimeoutOpt,
    TimeoutOpt,
    thresholds,
)

PROFILES = ("verify",)


def verify(
    config: str | None = ConfigOpt,
    format: Format = FormatOpt,
    output: Path | None = OutputOpt,
    timeout: float = TimeoutOpt,
    expect_members: int | None = ExpectMembersOpt,
    round_trip_timeout: float = RoundTripTimeoutOpt,
    max_lag_bytes: str | None = MaxLagBytesOpt,
) -> None:
    """The after-bootstrap checklist: members, timeline, lag, a real replication round trip, REST APIs,
    autostart, etcd — each ✓/!/✗ with its evidence and, when it fails, its fix.

    The round trip writes one WAL record on the leader (pg_logical_emit_message with prefix
    'pgdoctor'; no table is touched) and times its replay on every replica.

    Examples:

      pgdoctor verify -c /etc/patroni/patroni.yml

      pgdoctor verify --expect-members 3 --format json | jq '.verify.items[] | {check, status}'
    """
    from doctor.collect import CollectOptions
    from doctor.pipeline import analyze, collect
    from doctor.render.emit import emit_report

    settings = thresholds(max_lag_bytes, None, None)
    if expect_members:
        settings["expect_members"] = expect_members
    options = CollectOptions(config_path=config, timeout=max(timeout, round_trip_timeout), read_logs=False,
                             validate_config=False, round_trip_timeout=round_trip_timeout)
    facts, _ = collect(options, profile="verify", settings=settings)
    report = analyze(facts, command="verify", profiles=PROFILES)
    raise typer.Exit(emit_report(report, format, output))
