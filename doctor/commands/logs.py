"""``pgdoctor logs``: only the log analysis, for logs read here or pasted from another machine.

Files (plain, .gz, rotated), ``-`` for stdin, or ``--unit`` for the journal. The result has
the same diagnoses, evidence and events as ``pgdoctor run``; exit codes: 0 nothing found,
1 warnings only, 2 problems, 3 no input could be read.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import typer

from doctor.cli import Format, app
from doctor.errors import UsageError
from doctor.logscan.deadline import DEADLINE_HELP, DEFAULT_DEADLINE, deadline_after

ENGINES = ("auto", "hyperscan", "re")


def build_sources(files: list[str], units: list[str], since: float | None, until: float | None,
                  timeout: float) -> list:
    from doctor.logscan.discover import given_files
    from doctor.logscan.sources import JournalSource, StdinSource

    sources: list = []
    for f in files:
        sources += [StdinSource()] if f == "-" else given_files([f])
    for u in units:
        sources.append(JournalSource(u, since=since, until=until, timeout=timeout))
    return sources


def analyze_logs(sources: list, since: float | None = None, until: float | None = None, engine: str = "auto",
                 node_config: dict[str, Any] | None = None, config_path: str | None = None,
                 deadline: float | None = None):
    """Scan ``sources`` and judge the matches: a pipeline Report with only log diagnoses."""
    from doctor.facts import FACTS_VERSION, Facts
    from doctor.logscan import mark_ages, patterns_from
    from doctor.logscan.scan import Scanner
    from doctor.pipeline import analyze
    from doctor.model.node import NodeView
    from doctor.redact import Redactor, collect_secrets

    redactor = Redactor()
    for secret in collect_secrets(node_config or {}):
        redactor.remember(secret)
    scanner = Scanner(patterns_from(), engine=engine, since=since, until=until,
                      redact=lambda s: redactor.text(s, "logs"), deadline=deadline,
                      node_values=NodeView(node_config or {}).template_values())
    scanner.scan(sources)
    data: dict[str, Any] = {"version": FACTS_VERSION, "logs": scanner.facts()}
    mark_ages(data["logs"].get("matches") or [])
    if node_config is not None:
        data["config"] = {"path": config_path, "data": redactor.data(node_config, "config")}
    facts = Facts(data)
    report = analyze(facts, command="logs", profiles=("logs",))
    logs = facts.get("logs")
    report.extra["logs"] = {k: v for k, v in logs.items() if k != "events"}
    return report


def nothing_read(files: list[str], units: list[str], sources: list[dict[str, Any]]) -> str | None:
    """When no source gave a single line (missing journal, empty directory, unreadable files): one
    line saying what was tried, so that silence is never reported as a healthy cluster."""
    if any(s.get("lines") for s in sources):
        return None
    tried: list[str] = []
    for f in files:
        if f != "-" and os.path.isdir(f):
            tried.append(f"directory {f} has no log files" if not any(
                os.path.isfile(os.path.join(f, n)) for n in os.listdir(f)) else f"the files in {f} are empty")
    for s in sources:
        errors = [e.get("message", "") for e in s.get("errors", [])]
        label = str(s.get("label"))
        if errors:
            tried.extend(errors)
        elif label.startswith("journal:"):
            from doctor.logscan.discover import has_journal
            why = s["notes"][0] if s.get("notes") else ("" if has_journal() else "this host has no systemd journal")
            tried.append(f"{label}: no entries" + (f" ({why})" if why else ""))
        elif not any(label.startswith(d.rstrip("/") + "/") for d in files if os.path.isdir(d)):
            tried.append(f"{label}: empty")
    return "no log line to analyze: " + "; ".join(tried or ["no input"])


@app.command("logs")
def logs_command(
    files: Optional[list[str]] = typer.Argument(None, help="Log files (plain, .gz, rotated .1), directories, or - for stdin."),
    unit: Optional[list[str]] = typer.Option(None, "--unit", "-u", help="Read this systemd unit's journal (repeatable), e.g. patroni."),
    since: Optional[str] = typer.Option(None, "--since", help="Only lines from this far back (2h) or since this time ('2024-08-28 19:00')."),
    until: Optional[str] = typer.Option(None, "--until", help="Only lines up to this time (or this long ago)."),
    format: Format = typer.Option(Format.text, "--format", "-f", help="text for people, json for scripts."),
    config: Optional[str] = typer.Option(None, "-c", "--config-file", help="The node's patroni.yml, to fill the fixes with its values."),
    engine: str = typer.Option("auto", "--engine", help="Pattern engine: auto, hyperscan or re (the pure-Python fallback)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds allowed for each journalctl call."),
    deadline: float = typer.Option(DEFAULT_DEADLINE, "--deadline", min=0.1, help=DEADLINE_HELP),
) -> None:
    """Analyze logs only: known Patroni, PostgreSQL and etcd messages, diagnoses with fixes, and the event timeline.

    Examples:

      pgdoctor logs /var/log/patroni/patroni.log /var/lib/postgresql/15/data/log/postgresql-*.log

      journalctl -u patroni --since -2h | pgdoctor logs -

      pgdoctor logs --unit patroni --unit etcd --since 2h --format json
    """
    from doctor.logscan.timeparse import time_bound

    end = deadline_after(deadline)
    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}")
    try:
        since_ts = time_bound(since) if since else None
        until_ts = time_bound(until) if until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    files = list(files or [])
    units = list(unit or [])
    if not files and not units:
        if sys.stdin.isatty():
            raise UsageError("give log files, - to read stdin, or --unit UNIT for the journal (see: pgdoctor logs --help)")
        files = ["-"]
    node_config = None
    if config:
        from doctor.collect.config import parse_config, read_config_text
        node_config, _ = parse_config(read_config_text(config))
        node_config = node_config or {}
    sources = build_sources(files, units, since_ts, until_ts, timeout)
    try:
        report = analyze_logs(sources, since_ts, until_ts, engine, node_config,
                              os.path.realpath(config) if config else None, deadline=end)
    except RuntimeError as exc:  # e.g. --engine hyperscan without the module
        raise UsageError(str(exc)) from None
    nothing = nothing_read(files, units, report.extra["logs"]["sources"])
    if nothing:
        raise UsageError(nothing)
    out = report.as_dict()
    if format == Format.json:
        from doctor.render.jsonout import render_json
        sys.stdout.write(render_json(out))
    elif format == Format.html:
        raise UsageError("pgdoctor logs writes text or json; use pgdoctor run --format html for a report file")
    else:
        from doctor.render.console import make_console
        render_logs_text(make_console(), out)
    raise typer.Exit(out["exit_code"])


def render_logs_text(console: Any, report: dict[str, Any]) -> None:
    """Sources read, diagnoses, the event timeline and the verdict."""
    from doctor.render.plain import escape

    from doctor.render.sections.events import render_events
    from doctor.render.text import render_diagnoses, render_verdict

    logs = report.get("logs") or {}
    sources = logs.get("sources") or []
    total = sum(s.get("lines", 0) for s in sources)
    console.print(f"[bold]pgdoctor logs[/] — {len(sources)} source(s), {total} lines read "
                  f"[dim](engine {escape(str(logs.get('engine')))})[/]")
    for s in sources:
        state = f"{s.get('lines', 0)} lines" if s.get("read") else "[red]not read[/]"
        console.print(f"  • {escape(str(s.get('label')))}: {state}")
        for note in list(s.get("notes", [])) + [e.get("message", "") for e in s.get("errors", [])]:
            console.print(f"    [dim]{escape(note)}[/]")
    for note in logs.get("notes", []):
        console.print(f"  [dim]{escape(note)}[/]")
    render_diagnoses(console, report.get("diagnoses", []), report.get("resolved", []))
    if not report.get("diagnoses"):
        console.print()
        console.print("[green]No known problem in these logs.[/]")
    render_events(console, report.get("events") or [])
    # lifecycle lines (heartbeats, sync assignments) are healthy context, not near-misses
    quiet = [m for m in logs.get("matches", []) if m.get("benign") and not m.get("event")
             and m.get("playbook") != "lifecycle-events"]
    if quiet:
        console.print()
        console.print("[dim]Seen but not a problem here: " + escape(", ".join(
            f"{m['pattern']} x{m['count']} ({m.get('quiet_reason', 'benign')})" for m in quiet[:8])) + "[/]")
    render_verdict(console, report)
