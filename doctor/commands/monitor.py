"""``pgdoctor monitor SERVICE``: one Nagios/Icinga line with perfdata and exit 0/1/2/3, for every
check_patroni service (same names, same thresholds) and ``pgdoctor`` (the whole diagnosis).

One collection (profile ``verify``, without the round trip unless ``--round-trip`` asks for it),
one analysis; the service reads that report (``doctor.monitor``). ``--format prometheus`` writes the
same report as a textfile for node_exporter instead of a Nagios line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from doctor.commands.options import ConfigOpt, OutputOpt, TimeoutOpt

SERVICE_HELP = ("cluster_config_has_changed, cluster_has_leader, cluster_has_replica, cluster_has_scheduled_action, "
                "cluster_is_in_maintenance, cluster_node_count, node_is_alive, node_is_leader, node_is_pending_restart, "
                "node_is_primary, node_is_replica, node_patroni_version, node_tl_has_changed, pgdoctor")


def monitor(
    service: str | None = typer.Argument(None, help=f"The service: {SERVICE_HELP}.", show_default=False),
    config: str | None = ConfigOpt,
    warning: str | None = typer.Option(None, "-w", "--warning", help="Warning range (Nagios syntax: 2:, @0:0, ~:5)."),
    critical: str | None = typer.Option(None, "--critical", help="Critical range (Nagios syntax). check_patroni's -c; "
                                           "here -c is the config file, as in every pgdoctor command."),
    healthy_warning: str | None = typer.Option(None, "--healthy-warning", help="cluster_node_count: warning range of healthy members."),
    healthy_critical: str | None = typer.Option(None, "--healthy-critical", help="cluster_node_count: critical range of healthy members."),
    sync_warning: str | None = typer.Option(None, "--sync-warning", help="cluster_has_replica: warning range of synchronous replicas."),
    sync_critical: str | None = typer.Option(None, "--sync-critical", help="cluster_has_replica: critical range of synchronous replicas."),
    sync_type: str = typer.Option("any", "--sync-type", help="any, sync or quorum: which standbys count as synchronous."),
    max_lag: str | None = typer.Option(None, "--max-lag", help="Lag above which a replica is unhealthy (1MB, 1048576)."),
    is_sync: bool = typer.Option(False, "--is-sync", help="node_is_replica: the node must be a synchronous standby."),
    is_async: bool = typer.Option(False, "--is-async", help="node_is_replica: the node must be an asynchronous replica."),
    is_standby_leader: bool = typer.Option(False, "--is-standby-leader", help="node_is_leader: a standby leader."),
    config_hash: str | None = typer.Option(None, "--hash", help="cluster_config_has_changed: the expected hash."),
    timeline: str | None = typer.Option(None, "--timeline", help="node_tl_has_changed: the expected timeline."),
    state_file: Path | None = typer.Option(None, "--state-file", help="Where a stateful service keeps the last hash "
                                              "or timeline (a file you name, as with check_patroni)."),
    save: bool = typer.Option(False, "--save", help="Store the current hash or timeline in --state-file."),
    patroni_version: str | None = typer.Option(None, "--patroni-version", help="node_patroni_version: the expected version."),
    round_trip: bool = typer.Option(False, "--round-trip", help="Also run verify's replication round trip (writes one "
                                    "WAL message on the leader); its figures go to the prometheus output."),
    format: str = typer.Option("nagios", "--format", "-f", help="nagios (one line, exit 0/1/2/3) or prometheus."),
    output: Path | None = OutputOpt,
    timeout: float = TimeoutOpt,
) -> None:
    """Monitoring: check_patroni's services (and 'pgdoctor', the whole diagnosis) as one Nagios line,
    or the report as a Prometheus textfile.

    Examples:

      pgdoctor monitor cluster_has_replica -c /etc/patroni/patroni.yml -w 2: --critical 1: --max-lag 1MB

      pgdoctor monitor node_tl_has_changed --state-file /var/lib/nagios/pgdoctor-tl.state --save

      pgdoctor monitor --format prometheus --round-trip -o /var/lib/node_exporter/textfile/pgdoctor.prom
    """
    from doctor.collect import CollectOptions
    from doctor.errors import UsageError
    from doctor.monitor import Args, evaluate
    from doctor.pipeline import FULL_PROFILES, analyze, collect
    from doctor.render.emit import emit_report, write_output

    if format not in ("nagios", "prometheus"):
        raise UsageError(f"--format {format}: monitor writes nagios or prometheus")
    if format == "nagios" and not service:
        raise UsageError(f"monitor needs a SERVICE: {SERVICE_HELP}")
    if sync_type not in ("any", "sync", "quorum"):
        raise UsageError("--sync-type: any, sync or quorum")
    args = Args(warning=warning, critical=critical, healthy_warning=healthy_warning, healthy_critical=healthy_critical,
                sync_warning=sync_warning, sync_critical=sync_critical, sync_type=sync_type, max_lag=max_lag,
                is_sync=is_sync, is_async=is_async, is_standby_leader=is_standby_leader, config_hash=config_hash,
                timeline=timeline, state_file=str(state_file) if state_file else None, save=save,
                patroni_version=patroni_version)
    if service:
        from doctor.monitor import SERVICES
        if service not in SERVICES:
            raise UsageError(f"unknown service {service!r}; services: {SERVICE_HELP}")
    options = CollectOptions(config_path=config, timeout=timeout, read_logs=False, validate_config=False,
                             round_trip_timeout=5.0 if round_trip else None)
    facts, _ = collect(options, profile="verify")
    report = analyze(facts, command="monitor", profiles=FULL_PROFILES + (("verify",) if round_trip else ()))
    if format == "prometheus":
        emit_report(report, "prometheus", output)
        raise typer.Exit(0)
    outcome = evaluate(service or "pgdoctor", report, args)
    write_output(outcome.line() + "\n", output)
    raise typer.Exit(outcome.state)
