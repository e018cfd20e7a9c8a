"""The ``verify`` checklist in the terminal: one ✓/!/✗ line per item in the course's order, its
evidence (the round trip's milliseconds among it), and under a failure or warning its fix."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from doctor.render.checklist import MARK
from doctor.render.plain import escape


def render_verify(console: Console, report: dict[str, Any]) -> None:
    node = report.get("node") or {}
    v = report.get("verify") or {}
    console.print(f"[bold]pgdoctor verify[/] — cluster [bold]{escape(str(node.get('scope') or '?'))}[/] from node "
                  f"[bold]{escape(str(node.get('name') or '?'))}[/], config {escape(str(node.get('config_path')))}")
    if isinstance(v.get("error"), dict):
        console.print(f"[magenta]the checklist could not be built: {escape(str(v['error'].get('message')))}[/]")
    for item in v.get("items") or []:
        style = "dim" if item["status"] == "skip" else ""
        text = escape(item["summary"])
        console.print(f"  {MARK.get(item['status'], '?')} [bold]{escape(item.get('title') or item['check'])}[/]: "
                      f"{f'[{style}]{text}[/]' if style else text} [dim]\\[{escape(item['check'])}][/]", soft_wrap=True)
        for e in item.get("evidence", [])[:8]:
            console.print(f"      [dim]{escape(e)}[/]", soft_wrap=True)
        if item["status"] in ("fail", "warn", "error"):
            for block in item.get("fix") or []:
                for line in block.splitlines():
                    console.print(f"      [cyan]{escape(line)}[/]", soft_wrap=True)
    counts = report.get("counts") or {}
    parts = [f"{counts.get(k, 0)} {k}" for k in ("fail", "warn", "error", "skip", "ok") if counts.get(k)]
    console.print(f"\nVerdict: {report['verdict']} — {', '.join(parts) or 'no checks'}; exit {report['exit_code']}")
