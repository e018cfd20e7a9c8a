"""Terminal section of a cluster report: the members side by side, and what was not seen."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from doctor.render.plain import escape
from doctor.render.sections import text_section

COLUMNS = ("name", "host", "facts", "from", "collected_at", "role", "state", "Patroni", "PostgreSQL", "problems")


@text_section("members", order=5)
def render_members(console: Console, value: dict[str, Any]) -> None:
    rows = value.get("members") or []
    if not rows:
        return
    table = Table(title="Members", title_justify="left", show_edge=False, box=None, pad_edge=False)
    for c in COLUMNS:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(escape(str(r.get(c) if r.get(c) is not None else "?")) for c in COLUMNS))
    console.print()
    console.print(table)
    for note in value.get("notes") or []:
        console.print(f"[dim]{escape(str(note))}[/]")
