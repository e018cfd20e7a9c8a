"""The preflight checklist in the terminal, the way kubeadm prints its preflight checks.

One line per item (✓ ok, ! warning, ✗ failure, - skipped), grouped by area, each failure or
warning followed by its fix; then kubeadm's closing lines: the ``[WARNING id]`` and
``[ERROR id]`` list and how to make a failure non-fatal with ``--ignore``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from doctor.render.plain import escape

MARK = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[bold red]✗[/]", "skip": "[dim]-[/]",
        "error": "[magenta]?[/]"}


def _header(console: Console, report: dict[str, Any]) -> None:
    node = report.get("node") or {}
    pf = report.get("preflight") or {}
    ports = pf.get("ports") or {}
    console.print(f"[bold]pgdoctor preflight[/] — node [bold]{escape(str(node.get('name') or '?'))}[/], "
                  f"cluster [bold]{escape(str(node.get('scope') or '?'))}[/], config {escape(str(node.get('config_path')))}")
    console.print(f"\\[preflight] Running pre-flight checks: data dir {escape(str(node.get('data_dir')))}, "
                  f"PostgreSQL port {ports.get('postgresql')}, REST API port {ports.get('restapi')}"
                  + (", etcd 2379/2380 on this node" if pf.get("etcd_here") else ""))
    if pf.get("peers_given"):
        console.print(f"\\[preflight] Peers given: {escape(', '.join(pf['peers_given']))}")
    live = pf.get("live_node")
    if live:
        console.print(f"\\[preflight] [bold]Patroni already runs this config[/] (pid "
                      f"{', '.join(map(str, live['patroni_pids']))}): a live member — its own Patroni and PostgreSQL "
                      "count as 'in use by this node', not as conflicts")
    if pf.get("ignore"):
        console.print(f"\\[preflight] Ignoring (failures become warnings): {escape(', '.join(pf['ignore']))}"
                      + (" (from pgdoctor.preflight_ignore in the config)" if pf.get("ignore_from_config") else ""))
    if pf.get("ignore_unknown_in_config"):
        console.print(f"[yellow]\\[preflight] unknown ids in pgdoctor.preflight_ignore, not used: "
                      f"{escape(', '.join(pf['ignore_unknown_in_config']))}[/]")


def _item(console: Console, item: dict[str, Any]) -> None:
    tag = " [dim](ignored)[/]" if item.get("ignored") else ""
    style = "dim" if item["status"] == "skip" else ""
    text = escape(item["summary"])
    console.print(f"  {MARK.get(item['status'], '?')} {f'[{style}]{text}[/]' if style else text}{tag} "
                  f"[dim]\\[{escape(item['check'])}][/]", soft_wrap=True)
    if item["status"] in ("fail", "warn", "error"):
        for e in item.get("evidence", [])[:4]:
            console.print(f"      [dim]{escape(e)}[/]", soft_wrap=True)
        for block in item.get("fix") or []:
            for line in block.splitlines():
                console.print(f"      [cyan]{escape(line)}[/]", soft_wrap=True)


def render_checklist(console: Console, report: dict[str, Any]) -> None:
    pf = report.get("preflight") or {}
    items = pf.get("items") or []
    _header(console, report)
    group = None
    for item in items:
        if item["group"] != group:
            group = item["group"]
            console.print(f"\n[bold]{escape(group)}[/]")
        _item(console, item)
    console.print()
    warnings = [i for i in items if i["status"] == "warn"]
    errors = [i for i in items if i["status"] in ("fail", "error")]
    for i in warnings:
        console.print(f"[yellow]\\[WARNING {escape(i['problem'] or i['check'])}][/]: {escape(i['summary'])}",
                      soft_wrap=True)
    for i in errors:
        console.print(f"[bold red]\\[ERROR {escape(i['problem'] or i['check'])}][/]: {escape(i['summary'])}",
                      soft_wrap=True)
    counts = report.get("counts") or {}
    parts = [f"{counts.get(k, 0)} {k}" for k in ("fail", "warn", "error", "skip", "ok") if counts.get(k)]
    if errors:
        ids = ",".join(sorted({i["problem"] or i["check"] for i in errors}))
        console.print(f"\\[preflight] Some fatal errors occurred. Fix them, or if you know what you are doing, "
                      f"make a check non-fatal with `--ignore={escape(ids)}`")
    console.print(f"Verdict: {report['verdict']} — {', '.join(parts) or 'no checks'}; exit {report['exit_code']}")
