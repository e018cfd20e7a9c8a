"""``pgdoctor logs``: only the log analysis, for logs read here or pasted from another machine.

Files (plain, .gz, rotated), ``-`` for stdin, or ``--unit`` for the journal, scanned by the same
log collector ``pgdoctor run`` uses (``doctor.collect.logs.scan_logs``) and judged by the same
pipeline: the same diagnoses, evidence and events, written by the same emitter; exit codes: 0 nothing found,
1 warnings only, 2 problems, 3 no input could be read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from doctor.commands.options import DeadlineOpt, Format, FormatOpt, OutputOpt, PlaybooksOpt
from doctor.errors import UsageError
from doctor.logscan.deadline import deadline_after

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
                 config_path: str | None = None, playbook_dirs: list[str] | None = None,
                 deadline: float | None = None):
    """Scan ``sources`` and judge the matches: the pipeline's Report, with only log diagnoses."""
    from doctor.pipeline import analyze, collect_logs

    facts = collect_logs(sources, since, until, engine, config_path, playbook_dirs, deadline=deadline)
    return analyze(facts, command="logs", profiles=("logs",), playbook_dirs=playbook_dirs)


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


def logs_command(
    files: list[str] | None = typer.Argument(None, help="Log files (plain, .gz, rotated .1), directories, or - for stdin."),
    unit: list[str] | None = typer.Option(None, "--unit", "-u", help="Read this systemd unit's journal (repeatable), e.g. patroni."),
    since: str | None = typer.Option(None, "--since", help="Only lines from this far back (2h) or since this time ('2024-08-28 19:00')."),
    until: str | None = typer.Option(None, "--until", help="Only lines up to this time (or this long ago)."),
    format: Format = FormatOpt,
    output: Path | None = OutputOpt,
    config: str | None = typer.Option(None, "-c", "--config-file", help="The node's patroni.yml, to fill the fixes with its values."),
    playbooks: list[str] | None = PlaybooksOpt,
    engine: str = typer.Option("auto", "--engine", help="Pattern engine: auto, hyperscan or re (the pure-Python fallback)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds allowed for each journalctl call."),
    deadline: float = DeadlineOpt,
) -> None:
    """Analyze logs only: known Patroni, PostgreSQL and etcd messages, diagnoses with fixes, and the event timeline.

    Examples:

      pgdoctor logs /var/log/patroni/patroni.log /var/lib/postgresql/15/data/log/postgresql-*.log

      journalctl -u patroni --since -2h | pgdoctor logs -

      pgdoctor logs --unit patroni --unit etcd --since 2h --format json

      pgdoctor logs patroni.log --playbooks ./our-playbooks --format html -o logs.html
    """
    from doctor.logscan.timeparse import time_bound
    from doctor.render.emit import emit_report

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
    sources = build_sources(files, units, since_ts, until_ts, timeout)
    try:
        report = analyze_logs(sources, since_ts, until_ts, engine, config, list(playbooks or []), deadline=end)
    except RuntimeError as exc:  # e.g. --engine hyperscan without the module
        raise UsageError(str(exc)) from None
    nothing = nothing_read(files, units, report.facts.get("logs.sources") or [])
    if nothing:
        raise UsageError(nothing)
    raise typer.Exit(emit_report(report, format, output))
