"""``pgdoctor bundle`` (collect and pack for support) and ``pgdoctor analyze`` (diagnose a bundle anywhere)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import typer

from doctor.commands.options import (
    ConfigOpt,
    DeadlineOpt,
    Format,
    FormatOpt,
    OutputOpt,
    PgUserOpt,
    PlaybooksOpt,
    TimeoutOpt,
)
from doctor.errors import UsageError
from doctor.filekind import refuse_special
from doctor.logscan.deadline import deadline_after


def bundle(
    config: str | None = ConfigOpt,
    output: str | None = typer.Option(None, "-o", "--output", help="Bundle file (or a directory for it); "
                                         "default: ./pgdoctor-bundle-<scope>-<member>-<time>.tar.gz"),
    since: str = typer.Option("24h", "--since", help="Logs written within this time (e.g. 2h, 1d)."),
    max_log_mb: float = typer.Option(40, "--max-log-mb", min=0, help="Cap on the logs kept, in MB before "
                                     "compression; the newest lines are kept."),
    timeout: float = TimeoutOpt,
    pg_user: str | None = PgUserOpt,
    log_file: list[str] | None = typer.Option(None, "--log-file", help="Also include this log file (repeatable)."),
    deadline: float = DeadlineOpt,
) -> None:
    """Write a support bundle: facts, report, redacted config, logs, DCS, REST API, PostgreSQL and system facts.

    Secrets (passwords, tokens, private keys, .pgpass entries) are replaced with
    [REDACTED:kind:id] tokens in every file; manifest.json says what was removed
    where, and what could not be collected and why.

    Examples:

      pgdoctor bundle -c /etc/patroni/patroni.yml -o /tmp/

      pgdoctor analyze /tmp/pgdoctor-bundle-main-db1-20250101T030000Z.tar.gz
    """
    from doctor.bundle import BundleError
    from doctor.bundle.writer import BundleOptions, write_bundle
    from doctor.render.console import make_console
    from doctor.units import human_bytes, parse_duration

    try:
        since_seconds = parse_duration(since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for path in log_file or []:
        refuse_special(path, "--log-file", allow_dir=True)  # a FIFO would block the bundle forever
    opts = BundleOptions(config_path=config, output=output, since=since, since_seconds=since_seconds,
                         max_log_bytes=int(max_log_mb * 1024 * 1024), timeout=timeout, pg_user=pg_user,
                         log_files=list(log_file or []), deadline=deadline_after(deadline))
    console = make_console(stderr=True)
    try:
        if sys.stderr.isatty():
            with console.status("collecting…") as status:
                result = write_bundle(opts, progress=lambda msg: status.update(msg + "…"))
        else:
            result = write_bundle(opts)
    except BundleError as exc:
        raise UsageError(str(exc)) from None
    diag = ", ".join(result.diagnoses) or "no problem found"
    console.print(f"wrote {result.path} ({human_bytes(result.size)}, {result.files} files, "
                  f"{result.redactions} secrets redacted, {result.not_collected} things not collected) "
                  f"in {result.seconds:.1f}s; verdict {result.verdict}: {diag}")
    console.print(f"analyze it anywhere with: pgdoctor analyze {result.path}")
    sys.stdout.write(result.path + "\n")


def analyze(
    bundle_paths: list[str] = typer.Argument(..., metavar="BUNDLE...", help="Bundles written by `pgdoctor "
                                             "bundle` (or facts.json files), or a directory of them; several "
                                             "bundles are one cluster's members."),
    format: Format = FormatOpt,
    output: Path | None = OutputOpt,
    playbooks: list[str] | None = PlaybooksOpt,
    deadline: float = DeadlineOpt,
    clock_skew: float = typer.Option(60, "--clock-skew", min=0, help="Seconds between members' collection "
                                     "times beyond which their clocks or collection are suspect (several bundles)."),
) -> None:
    """Diagnose bundles on any machine: the same checks and playbooks, from the bundles alone.

    One bundle: that member's report. Several bundles (or a directory of them): one cluster report with
    each member's diagnoses attributed to it, plus what only the members side by side show (config drift,
    version skew, clock skew) and their log events on one timeline. Never touches the system it runs on
    beyond reading the bundles.

    Examples:

      pgdoctor analyze bundle.tar.gz

      pgdoctor analyze bundle.tar.gz --format html -o report.html

      pgdoctor analyze db1.tar.gz db2.tar.gz db3.tar.gz

      pgdoctor analyze bundles/ --format json
    """
    from doctor.bundle import BundleError
    from doctor.bundle.reader import bundles_in, open_bundle
    from doctor.model.fleet import is_cluster
    from doctor.pipeline import FULL_PROFILES, analyze_cluster
    from doctor.pipeline import analyze as analyze_facts
    from doctor.render.emit import emit_report

    until = deadline_after(deadline)
    try:
        paths: list[str] = []
        for path in bundle_paths:
            st = refuse_special(path, "bundle", allow_dir=True)
            paths += bundles_in(path) if st is not None and stat.S_ISDIR(st.st_mode) else [path]
        opened = [open_bundle(p, deadline=until) for p in paths]
    except BundleError as exc:
        raise UsageError(str(exc)) from None
    if len(opened) == 1 and is_cluster(opened[0].facts):  # a cluster snapshot saved as JSON
        report = analyze_cluster(opened[0].facts, playbook_dirs=playbooks, settings={"clock_skew_seconds": clock_skew},
                                 source={"bundles": [Path(opened[0].path).name]})
    elif len(opened) == 1 and len(bundle_paths) == 1 and not os.path.isdir(bundle_paths[0]):
        report = analyze_facts(opened[0].facts, command="analyze", profiles=FULL_PROFILES, playbook_dirs=playbooks,
                               source=bundle_source(opened[0]))
    else:
        from doctor.collect.fleet import from_bundles

        facts = from_bundles([(b.facts, bundle_source(b)) for b in opened])
        report = analyze_cluster(facts, playbook_dirs=playbooks, settings={"clock_skew_seconds": clock_skew},
                                 source={"bundles": [Path(b.path).name for b in opened]})
    raise typer.Exit(emit_report(report, format, output))


def bundle_source(opened) -> dict:
    """Where an analyzed snapshot came from: the bundle's file name, the node and host, when it was collected."""
    manifest = opened.manifest or {}
    node = manifest.get("node") if isinstance(manifest.get("node"), dict) else {}
    return {"bundle": Path(opened.path).name, "host": manifest.get("host") or opened.facts.get("host"),
            "member": node.get("name") or (opened.facts.get("config.data") or {}).get("name"),
            "scope": node.get("scope") or (opened.facts.get("config.data") or {}).get("scope"),
            "collected_at": manifest.get("collected_at") or opened.facts.get("collected_at"),
            "created_at": manifest.get("created_at"), **({"notes": opened.notes} if opened.notes else {})}


