"""The terminal report of ``pgdoctor logs``: sources read, diagnoses, the event timeline, the verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from doctor.render.plain import escape
from doctor.render.sections.events import render_events
from doctor.render.text import render_diagnoses, render_verdict


def render_logs_text(console: Console, report: dict[str, Any]) -> None:
    """Sources read, diagnoses, the event timeline and the verdict."""
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
