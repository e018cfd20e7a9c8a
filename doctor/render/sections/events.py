"""Terminal section: the timeline of events read from the logs."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.table import Table

from doctor.render.plain import escape
from doctor.render.sections import text_section

EVENT_STYLE = {"demotion": "yellow", "leader-lost": "yellow", "crash": "red", "bootstrap-failed": "red",
               "clone-failed": "red", "promotion": "green", "leader-acquired": "green", "timeline-change": "cyan",
               "rewind": "cyan"}


@text_section("events", order=30)
def render_events(console: Console, events: list[dict[str, Any]]) -> None:
    if not events:
        return
    table = Table(title="What happened (from the logs)", title_justify="left", show_edge=False, box=None,
                  pad_edge=False)
    table.add_column("time", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("where", no_wrap=True)
    table.add_column("line", overflow="fold")
    for e in events:
        when = str(e.get("time") or "?").replace("T", " ")[:23]
        count = e.get("count") or 1
        repeat = f"the cycle ran {count} times" if e.get("cycle") else f"x{count}"
        span = _span_text(e.get("time"), e.get("last")) if count > 1 else ""
        msg = str(e.get("message") or "")[:240 if e.get("cycle") else 160] + (
            f"  ({repeat}{span}, until {str(e.get('last'))[11:19]})" if count > 1 and e.get("last") else "")
        style = EVENT_STYLE.get(str(e.get("event")), "")
        ev = escape(str(e.get("event")))
        table.add_row(escape(when), f"[{style}]{ev}[/]" if style else ev,
                      escape(where_of(e)), escape(msg))
    console.print()
    console.print(table)


def _span_text(first: Any, last: Any) -> str:
    """" over 6m10s" between two ISO times of the timeline; empty when either is no time."""
    import datetime as dt

    from doctor.logscan.persist import duration_text

    try:
        a, b = dt.datetime.fromisoformat(str(first)), dt.datetime.fromisoformat(str(last))
        return f" over {duration_text((b - a).total_seconds())}"
    except (TypeError, ValueError):
        return ""


def where_of(event: dict[str, Any]) -> str:
    """The member the line came from when known (its own name in Patroni's lines, or the node dir
    of the file), then the file: ``node2 patroni.log``."""
    name = os.path.basename(str(event.get("source") or ""))
    node = event.get("member") or event.get("node")  # a cluster timeline names the member whose log it is
    return f"{node} {name}" if node and str(node) not in name else name


@text_section("logs", order=29)
def render_log_sources(console: Console, logs: dict[str, Any]) -> None:
    """One line per log read, with what could not be read; quiet when logs were turned off."""
    if not logs or logs.get("skipped"):
        return
    console.print()
    read = [s for s in logs.get("sources", []) if s.get("read")]
    console.print(f"[bold]Logs read[/] [dim](engine {escape(str(logs.get('engine')))})[/]: "
                  + (", ".join(f"{escape(str(s.get('label')))} ({s.get('lines', 0)} lines)" for s in read) or "none"))
    for s in logs.get("sources", []):
        for e in s.get("errors", []):
            console.print(f"   [dim]not read: {escape(str(e.get('message')))}[/]")
    for note in logs.get("notes", [])[:6]:
        console.print(f"   [dim]{escape(str(note))}[/]")
