"""The terminal report: diagnoses first (summary, evidence, fix), then every check, then the verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from doctor.render.plain import escape

STATUS_STYLE = {"fail": "bold red", "warn": "yellow", "ok": "green", "skip": "dim", "error": "magenta"}
STATUS_MARK = {"fail": "✗ FAIL", "warn": "! WARN", "ok": "✓ ok", "skip": "- skip", "error": "? ERROR"}
VERDICT_TEXT = {
    "ok": "healthy: no problem found",
    "warn": "warnings only",
    "fail": "FAILING",
    "error": "some checks could not run",
}


def render_header(console: Console, report: dict[str, Any]) -> None:
    if report.get("command") == "cluster":
        render_cluster_header(console, report)
        return
    node = report.get("node") or {}
    bits = [f"node [bold]{escape(str(node.get('name') or '?'))}[/]",
            f"cluster [bold]{escape(str(node.get('scope') or '?'))}[/]",
            f"config {escape(str(node.get('config_path') or '?'))}"]
    console.print(f"[bold]pgdoctor {escape(report.get('command', 'run'))}[/] — " + ", ".join(bits))
    src = report.get("source")
    if isinstance(src, dict) and src.get("bundle"):
        console.print(f"from bundle {escape(str(src['bundle']))}, collected on host {escape(str(src.get('host') or '?'))}"
                      f" at {escape(str(src.get('collected_at') or '?'))}")
        for note in src.get("notes") or []:
            console.print(f"[dim]{escape(str(note))}[/]")


def render_cluster_header(console: Console, report: dict[str, Any]) -> None:
    """A cluster report's first line: the members it holds and where their facts came from."""
    rows = (report.get("members") or {}).get("members") or []
    names = ", ".join(f"{r.get('name')} ({r.get('facts')})" for r in rows) or "none"
    node = report.get("node") or {}
    console.print(f"[bold]pgdoctor cluster report[/] — cluster [bold]{escape(str(node.get('scope') or '?'))}[/], "
                  f"members {escape(names)}")


def _on(item: dict[str, Any]) -> str:
    """`` on node3`` for what a cluster report attributes to a member."""
    return f" on {item['member']}" if item.get("member") else ""


def render_resolved(console: Console, resolved: list[dict[str, Any]]) -> None:
    """Problems the logs show that are over now (the live check passes, a later line healed them,
    or they stopped long ago): one entry each with the reason, no fix."""
    if not resolved:
        return
    console.print("[bold]Seen in the logs, over now[/]")
    for d in resolved:
        console.print(f"   [dim]•[/] {escape(d['title'] + _on(d))} [dim]\\[{escape(d['id'])}][/]")
        console.print(f"     [dim]{escape(d['summary'])}[/]")
    console.print()


def render_diagnoses(console: Console, diagnoses: list[dict[str, Any]], resolved: list[dict[str, Any]]) -> None:
    if not diagnoses and not resolved:
        return
    console.print()
    for i, d in enumerate(diagnoses, 1):
        style = STATUS_STYLE.get(d["status"], "")
        console.print(f"[{style}]{STATUS_MARK.get(d['status'], d['status'])}[/] [bold]{i}. {escape(d['title'] + _on(d))}[/]"
                      f"  [dim]\\[{escape(d['id'])}][/]")
        console.print(f"   {escape(d['summary'])}")
        for extra in d.get("summaries", [])[1:4]:
            console.print(f"   {escape(extra)}")
        if d.get("caused_by"):
            console.print(f"   [dim]probably a consequence of: {escape(', '.join(d['caused_by']))}[/]")
        if d.get("evidence"):
            console.print("   [bold]Evidence[/]")
            for e in d["evidence"][:8]:
                console.print(f"     • {escape(e)}")
            if len(d["evidence"]) > 8:
                console.print(f"     … {len(d['evidence']) - 8} more (see --format json)")
        if d.get("fix_text") or d.get("fix"):
            console.print("   [bold]Fix[/]")
            render_fix(console, d.get("fix_text") or "\n\n".join(f"```\n{b}\n```" for b in d["fix"]))
        console.print(f"   [dim]More: pgdoctor explain {escape(d['id'])}[/]")
        console.print()
    render_resolved(console, resolved)


def _inline_markdown(text: str) -> str:
    """**bold** and `code` in playbook prose, as terminal styles (the text is already escaped)."""
    import re

    text = re.sub(r"\*\*(.+?)\*\*", r"[bold]\1[/]", text)
    return re.sub(r"`([^`]+)`", r"[cyan]\1[/]", text)


def render_fix(console: Console, markdown: str) -> None:
    """The playbook's whole Fix section: its prose (preconditions, either/or) and its commands.

    Commands are printed unwrapped and highlighted so they can be copied; prose keeps the
    warnings that say when a command is safe.
    """
    in_code = False
    blank = False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            console.print(f"       [cyan]{escape(line)}[/]", soft_wrap=True)
            blank = False
        elif line.strip():
            console.print(f"     {_inline_markdown(escape(line.strip()))}")
            blank = False
        elif not blank:
            console.print()
            blank = True
    if not blank:
        console.print()


def render_findings(console: Console, findings: list[dict[str, Any]], show_ok: bool = True) -> None:
    table = Table(title="Checks", title_justify="left", show_edge=False, pad_edge=False, box=None)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result", overflow="fold")
    for f in findings:
        if not show_ok and f["status"] == "ok":
            continue
        style = STATUS_STYLE.get(f["status"], "")
        check = f"{f['member']}: {f['check']}" if f.get("member") else f["check"]
        table.add_row(f"[{style}]{STATUS_MARK.get(f['status'], f['status'])}[/]", escape(check), escape(f["summary"]))
    console.print(table)


def render_verdict(console: Console, report: dict[str, Any]) -> None:
    counts = report.get("counts", {})
    verdict = report["verdict"]
    style = STATUS_STYLE.get(verdict, "bold")
    n_diag = len(report.get("diagnoses", []))
    parts = [f"{counts.get(k, 0)} {k}" for k in ("fail", "warn", "error", "skip", "ok") if counts.get(k)]
    selection = report.get("selection") or {}
    limited = ""
    if selection.get("only"):
        limited += f"; only {', '.join(selection['only'])} checked"
    if selection.get("skip"):
        limited += f"; {', '.join(selection['skip'])} not checked (--skip)"
    text = VERDICT_TEXT.get(verdict, verdict)
    if limited and verdict == "ok":
        text = "no problem found in the checks that ran"
    console.print()
    console.print(f"[{style}]Verdict: {text}[/] — {n_diag} diagnos{'is' if n_diag == 1 else 'es'}; "
                  f"checks: {', '.join(parts) or 'none'}{limited}; exit {report['exit_code']}")


def render_report(console: Console, report: dict[str, Any]) -> None:
    """Print the full report: diagnoses, the view sections present in it, checks, verdict."""
    from doctor.render.sections import sections

    render_header(console, report)
    render_diagnoses(console, report.get("diagnoses", []), report.get("resolved", []))
    if not report.get("diagnoses"):
        console.print()
        console.print("[green]No problem found.[/]")
    for name, section in sections():
        if report.get(name) is not None:
            section(console, report[name])
    console.print()
    # a cluster report holds every member's checks: its table shows only what is not ok
    render_findings(console, report.get("findings", []), show_ok=report.get("command") != "cluster")
    render_verdict(console, report)
