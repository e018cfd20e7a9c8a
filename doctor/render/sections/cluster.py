"""The member table in the terminal, laid out like ``patronictl list``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from doctor.render.plain import escape
from doctor.render.sections import text_section
from doctor.units import human_bytes

ROLE_STYLE = {"Leader": "bold green", "Sync Standby": "cyan", "Replica": ""}


def _pending(m: dict[str, Any]) -> str:
    """'*' as patronictl marks it, with the parameters that wait for the restart when known."""
    if not m.get("pending_restart"):
        return ""
    params = m.get("pending_restart_params") or []
    return escape("* " + ", ".join(params)) if params else "*"


def scheduled_lines(view: dict[str, Any]) -> list[str]:
    """One line per scheduled switchover or restart, as patronictl prints them under its table."""
    out = []
    for a in view.get("scheduled") or []:
        late = f" [yellow](overdue by {a['overdue_seconds']:.0f} s)[/]" if a.get("overdue_seconds", 0) and \
            a["overdue_seconds"] > 60 else ""
        out.append(f"[bold]{escape(a['text'][0].upper() + a['text'][1:])}[/]{late}")
    return out


def _lag(value: Any) -> str:
    if value is None:
        return ""
    return "0" if value == 0 else human_bytes(value)


@text_section("cluster", order=10)
def render_cluster(console: Console, view: dict[str, Any]) -> None:
    if not isinstance(view, dict) or view.get("error"):
        return
    sysid = view.get("system_identifier") or ("uninitialized" if view.get("dcs_read") else "DCS not readable")
    title = f"Cluster: {view.get('scope') or '?'} ({sysid})"
    if view.get("paused"):
        title += " — Maintenance mode: on"
    table = Table(title=escape(title), title_justify="left", show_edge=False, pad_edge=False)
    for col in ("Member", "Host", "Role", "State", "TL", "Receive LSN", "Lag", "Replay LSN", "Lag", "Sync",
                "Tags", "Pending restart", "Source"):
        table.add_column(col, no_wrap=col not in ("Tags", "Source"))
    for m in view.get("members") or []:
        host = m.get("host") or "?"
        if m.get("port") and m.get("port") != 5432:
            host += f":{m['port']}"
        tags = ", ".join(f"{k}: {v}" for k, v in (m.get("tags") or {}).items())
        source = m.get("source") or ""
        if m.get("disagree"):
            source += " (" + "; ".join(m["disagree"]) + ")"
        if m.get("rest_error"):
            source += f" REST {m['rest_error']}"
        style = ROLE_STYLE.get(m.get("role") or "", "")
        role = (m.get("role") or "?") + (f" ({m['role_note']})" if m.get("role_note") else "")
        if m.get("role_note"):
            style = "bold red"
        table.add_row(escape(m["name"]), escape(host), f"[{style}]{escape(role)}[/]" if style else escape(role),
                      escape(str(m.get("state") or "?")), escape(m.get("timeline") or ""),
                      escape(m.get("receive_lsn") or ""), _lag(m.get("lag_bytes")), escape(m.get("replay_lsn") or ""),
                      _lag(m.get("replay_lag_bytes")), escape(m.get("sync_state") or ""), escape(tags),
                      _pending(m), escape(source))
    console.print()
    console.print(table)
    for line in scheduled_lines(view):
        console.print(line)
    if view.get("dcs_note"):
        console.print(f"[yellow]{escape(view['dcs_note'])}[/]")
    if not view.get("members"):
        console.print("[dim]no member is known: the DCS could not be read and no REST API answered[/]")
