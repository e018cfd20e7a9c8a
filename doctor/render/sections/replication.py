"""Terminal section for the ``replication`` view: settings line, verdicts, then the member table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from doctor.render.plain import escape
from doctor.render.sections import text_section
from doctor.render.sections.cluster import scheduled_lines
from doctor.units import human_bytes, human_seconds

VERDICT_STYLE = {"protected": "green", "async": "cyan", "degraded": "yellow", "unprotected": "yellow",
                 "blocked": "bold red", "unknown": "magenta", "ok": "green", "paused": "yellow", "none": "bold red",
                 "no-leader": "bold red"}


def _secs(v: Any) -> str:
    return "-" if v is None else human_seconds(v)


def _bytes(v: Any) -> str:
    return "-" if v is None else human_bytes(v)


def _tags(r: dict[str, Any]) -> str:
    tags = r.get("tags") or {}
    return ", ".join(f"{k}" if v is True else f"{k}={v}" for k, v in tags.items()) or "-"


def _slot(r: dict[str, Any]) -> str:
    s = r.get("slot")
    if not s:
        return "-"
    if s.get("exists") is False:
        return f"{s['name']}: missing"
    if s.get("exists") is None:
        return f"{s['name']}: ?"
    state = "active" if s.get("active") else "inactive"
    return f"{s['name']}: {state}, {s.get('wal_status') or '?'}, {_bytes(s.get('retained_bytes'))}"


def _lags(r: dict[str, Any]) -> str:
    vals = [r.get("write_lag_seconds"), r.get("flush_lag_seconds"), r.get("replay_lag_seconds")]
    if all(v is None for v in vals):
        return "-"
    return "/".join("0" if v is None else f"{v:.3f}" for v in vals)


def _state(r: dict[str, Any]) -> str:
    state = str(r.get("state") or "?")
    if r.get("role") not in ("Leader", "Standby Leader") and r.get("streaming") is False and state != "absent":
        return escape(state) + (" [red](not streaming)[/]" if state in ("running", "streaming") else "")
    return escape(state)


@text_section("replication", order=20)
def render_replication(console: Console, view: dict[str, Any]) -> None:
    if not isinstance(view, dict) or "members" not in view:
        console.print(f"[magenta]replication view unavailable: {escape(str((view or {}).get('error')))}[/]")
        return
    s = view["settings"]
    console.print()
    console.print(f"[bold]Replication settings[/] [dim]({escape(s['source'])})[/]: synchronous_mode "
                  f"[bold]{escape(s['synchronous_mode'])}[/], strict [bold]{escape(str(s['synchronous_mode_strict']).lower())}[/], "
                  f"synchronous_node_count [bold]{escape(s['synchronous_node_count'])}[/], maximum_lag_on_failover "
                  f"[bold]{escape(_bytes(s['maximum_lag_on_failover']))}[/], maximum_lag_on_syncnode "
                  f"[bold]{escape(s['maximum_lag_on_syncnode'])}[/]" + (", [yellow]paused[/]" if s.get("pause") else ""),
                  soft_wrap=True)
    w, f, n = view["writes"], view["failover"], view["synchronous_node_count"]
    console.print(f"  [bold]writes[/]:   [{VERDICT_STYLE.get(w['status'], '')}]{escape(w['text'])}[/]", soft_wrap=True)
    console.print(f"  [bold]failover[/]: [{VERDICT_STYLE.get(f['status'], '')}]{escape(f['text'])}[/]", soft_wrap=True)
    console.print(f"  [bold]synchronous_node_count[/]: {escape(n['text'])}", soft_wrap=True)
    for line in scheduled_lines(view):
        console.print(f"  {line}", soft_wrap=True)
    for member, params in (view.get("pending_restart") or {}).items():
        console.print(f"  [bold]pending restart[/] on {escape(member)}: "
                      + escape(", ".join(f"{k} {v}" for k, v in params.items()) or "parameters not published"),
                      soft_wrap=True)
    table = Table(title=f"Members (lag against {escape(view.get('reference_lsn') or '?')}, "
                        f"{escape(view.get('reference_source') or '?')})",
                  title_justify="left", show_edge=False, pad_edge=False)
    for col in ("member", "host", "role", "state", "TL", "received", "replayed", "lag bytes", "lag time",
                "w/f/r lag s", "sync", "paused", "tags", "slot", "failover"):
        table.add_column(col, overflow="fold")
    for r in view["members"]:
        leader = r.get("role") in ("Leader", "Standby Leader")
        lag_b = "-" if leader else (f"{_bytes(r.get('replay_lag_bytes'))}"
                                    + (f" (recv {_bytes(r.get('receive_lag_bytes'))})"
                                       if r.get("receive_lag_bytes") != r.get("replay_lag_bytes") else ""))
        fo = r.get("failover")
        fo_txt = "-" if fo is None else ("unknown" if fo["candidate"] is None else
                                         "candidate" if fo["candidate"] else "excluded: " + "; ".join(fo["reasons"]))
        role = r["role"] + (f" ({r['role_note']})" if r.get("role_note") else "")
        src = "" if r.get("lsn_source") in (None, "PostgreSQL") else f" [dim]({escape(r['lsn_source'])})[/]"
        table.add_row(
            escape(r["name"]), escape(f"{r.get('host') or '-'}:{r.get('port') or '-'}" if r.get("host") else "-"),
            escape(role), _state(r), escape(r.get("timeline") if r.get("timeline") is not None else "-"),
            escape(r.get("lsn") or "-") if leader else escape(r.get("receive_lsn") or "-") + src,
            escape((r.get("lsn") or "-") if leader else (r.get("replay_lsn") or "-")),
            lag_b, "-" if leader else _secs(r.get("lag_seconds")), "-" if leader else _lags(r),
            escape(str(r.get("sync_state") or "-")),
            "-" if leader else ("[red]yes[/]" if r.get("replay_paused") else ("no" if r.get("replay_paused") is False else "?")),
            escape(_tags(r)), escape(_slot(r)), escape(fo_txt))
    console.print(table)
    unreachable = [r for r in view["members"] if r.get("pg_error")]
    for r in unreachable:
        e = r["pg_error"] or {}
        console.print(f"  [dim]{escape(r['name'])}: PostgreSQL not reachable ({escape(str(e.get('kind')))}: "
                      f"{escape(str(e.get('message')))}); its figures come from the DCS member key[/]", soft_wrap=True)
