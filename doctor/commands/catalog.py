"""``pgdoctor checks`` (every check and the problem it reports) and ``pgdoctor explain ID`` (one playbook)."""

from __future__ import annotations

import os
import re
import sys

import typer

from doctor.commands.options import Format
from doctor.errors import UsageError


def list_checks(
    format: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
) -> None:
    """List every check: its id, the problem id (playbook) it reports, and its profiles."""
    from doctor.engine import load_checks
    from doctor.playbooks import load_playbooks

    registry = load_checks()
    books = load_playbooks()
    rows = [{"check": c.id, "problem": c.playbook, "title": c.title, "profiles": list(c.profiles), "origin": c.origin,
             "has_playbook": c.playbook in books} for c in sorted(registry.values(), key=lambda c: c.id)]
    if format == Format.json:
        from doctor.render.jsonout import render_json
        sys.stdout.write(render_json({"checks": rows, "playbooks": sorted(books)}))
        return
    from rich.table import Table

    from doctor.render.console import make_console
    table = Table(show_edge=False, box=None)
    for col in ("check", "problem id", "profiles", "what it checks"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["check"], r["problem"], ",".join(r["profiles"]), r["title"])
    console = make_console()
    console.print(table)
    log_only = sorted(set(books) - {r["problem"] for r in rows})
    if log_only:
        console.print(f"\nProblems recognised from logs only: {', '.join(log_only)}")


def explain(
    problem_id: str = typer.Argument(..., help="A problem id, e.g. datadir-permissions (see: pgdoctor checks)."),
    config: str | None = typer.Option(None, "-c", "--config-file", help="Fill the fix with this node's values."),
) -> None:
    """Show a playbook: symptoms, cause, fix and how to verify, for one problem id."""
    from doctor.model.node import NodeView
    from doctor.playbooks import load_playbooks
    from doctor.render.console import make_console

    books = load_playbooks()
    book = books.get(problem_id)
    if book is None:
        import difflib
        close = difflib.get_close_matches(problem_id, list(books), n=3)
        raise UsageError(f"no playbook '{problem_id}'" + (f"; did you mean {', '.join(close)}?" if close else "")
                         + " (pgdoctor checks lists them)")
    values = NodeView().template_values()
    if config:
        from doctor.collect.config import parse_config, read_config_text
        data, _ = parse_config(read_config_text(config))
        values = NodeView(data or {}, os.path.realpath(config)).template_values()
    console = make_console()
    from rich.markdown import Markdown
    console.print(f"[bold]{book.title}[/]  [dim]\\[{book.id}, severity {book.severity}][/]")
    for name in ("symptoms", "cause", "fix", "verify"):
        text = book.render(name, values)
        if text:
            console.print(Markdown(f"## {name.capitalize()}\n\n{_keep_placeholders(text)}"))


def _keep_placeholders(markdown: str) -> str:
    """Markdown takes a ``<member>`` left in prose (a value explain has no node for) for an HTML tag and drops
    it: escape ``<`` outside code, where Markdown shows it as it is."""
    parts = re.split(r"(```.*?```|`[^`]*`)", markdown, flags=re.S)
    return "".join(part if part.startswith("`") else part.replace("<", "\\<") for part in parts)
