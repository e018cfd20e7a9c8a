"""The HTML report: one self-contained file for people who read it later or elsewhere.

Everything it shows comes from the report dict (versions and status counts included: the
views and the report hold them) and, folded at the end, the (already redacted) facts; all is
escaped by Jinja2's autoescape; the only script is the template's own, allowed by
its hash in a Content-Security-Policy, so even a log line that slipped past escaping
could not run. No network: no fonts, images or scripts are fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from doctor.facts import Facts
from doctor.units import human_bytes

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"
# One domain of facts shown folded is cut at this size so that a huge log excerpt cannot bloat the report.
MAX_FACTS_CHARS = 400_000
# Report keys shown in their own sections; any other key a view adds is shown folded as "more".
KNOWN_KEYS = {"schema_version", "pgdoctor_version", "command", "generated_at", "collected_at", "node", "verdict",
              "exit_code", "counts", "diagnoses", "resolved", "findings", "cluster", "events", "source", "versions",
              "members"}
STATUSES = ("fail", "error", "warn", "skip", "ok")
# Preferred column order for member tables; other keys follow.
MEMBER_COLUMNS = ("name", "member", "host", "role", "state", "timeline", "lag", "lag_bytes", "receive_lag",
                  "replay_lag", "sync_state", "sync", "tags", "pending_restart")
EVENT_COLUMNS = ("time", "ts", "timestamp", "member", "node", "source", "level", "kind", "event", "message",
                 "summary", "text", "count")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    env.filters["cell"] = _cell
    return env


def _cell(value: Any) -> str:
    """A table cell's text: scalars as they are, structures as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _columns(rows: list[dict[str, Any]], preferred: tuple[str, ...]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    ordered = [k for k in preferred if k in keys]
    return ordered + [k for k in keys if k not in ordered]


def _table(value: Any, list_keys: tuple[str, ...], preferred: tuple[str, ...]) -> dict[str, Any]:
    """A view value as a table: ``{"columns", "rows", "notes", "raw"}`` (raw when it is not tabular)."""
    rows: Any = None
    notes: dict[str, Any] = {}
    if isinstance(value, list):
        rows = value
    elif isinstance(value, dict):
        for k in list_keys:
            if isinstance(value.get(k), list):
                rows = value[k]
                notes = {n: v for n, v in value.items() if n != k and not isinstance(v, (dict, list))}
                break
    if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
        cols = _columns(rows, preferred)
        return {"columns": cols, "rows": [[_cell(r.get(c)) for c in cols] for r in rows], "notes": notes,
                "raw": None}
    return {"columns": [], "rows": [], "notes": {}, "raw": value}


# How many of the latest events the timeline shows; older ones are folded.
RECENT_EVENTS = 15
_EMPTY = (None, "", {}, [], False)


def _text(value: Any) -> str:
    return "" if value in (None, "", {}, []) else str(value)


def _lag(member: dict[str, Any]) -> str:
    """Receive lag in human bytes, with the replay lag when it differs (as patronictl's two Lag columns)."""
    recv, replay = member.get("lag_bytes"), member.get("replay_lag_bytes")
    if recv is None and replay is None:
        return ""
    text = human_bytes(recv) if recv is not None else ""
    if replay is not None and replay != recv:
        text = f"{text} (replay {human_bytes(replay)})" if text else f"replay {human_bytes(replay)}"
    return text


def member_table(cluster: Any) -> dict[str, Any] | None:
    """The cluster view as ``patronictl list`` reads: one row per member, optional columns only when set."""
    if not isinstance(cluster, dict) or not isinstance(cluster.get("members"), list):
        return None
    members = [m for m in cluster["members"] if isinstance(m, dict)]
    rows = []
    for m in members:
        host = _text(m.get("host"))
        if host and m.get("port"):
            host = f"{host}:{m['port']}"
        tags = m.get("tags") if isinstance(m.get("tags"), dict) else {}
        notes = [n for n in (_text(m.get("role_note")), _text(m.get("rest_error"))) if n]
        if isinstance(m.get("disagree"), list) and m["disagree"]:
            notes.append("sources disagree on " + ", ".join(map(str, m["disagree"])))
        rows.append({
            "Member": _text(m.get("name") or m.get("member")), "Host": host, "Role": _text(m.get("role")),
            "State": _text(m.get("state")), "TL": _text(m.get("timeline")),
            "Receive LSN": _text(m.get("receive_lsn") or (m.get("lsn") if not m.get("replay_lsn") else None)),
            "Replay LSN": _text(m.get("replay_lsn")), "Lag": _lag(m), "Sync": _text(m.get("sync_state")),
            "Tags": ", ".join(f"{k}: {v}" for k, v in tags.items()),
            "Pending restart": ("yes" + (": " + ", ".join(map(str, m["pending_restart_params"]))
                                         if m.get("pending_restart_params") else "")) if m.get("pending_restart") else "",
            "Scheduled restart": _text(m.get("scheduled_restart")), "Notes": "; ".join(notes),
        })
    optional = ("Tags", "Pending restart", "Scheduled restart", "Notes")
    columns = [c for c in (rows[0] if rows else {}) if c not in optional or any(r[c] for r in rows)]
    facts = [("leader", cluster.get("leader")), ("system id", cluster.get("system_identifier")),
             ("paused", "yes" if cluster.get("paused") else None), ("DCS", cluster.get("dcs_note")),
             ("DCS read", cluster.get("dcs_consistency"))]
    facts += [("scheduled", a.get("text")) for a in cluster.get("scheduled") or [] if isinstance(a, dict)]
    return {"columns": columns, "rows": [[r[c] for c in columns] for r in rows],
            "wide": {"Notes", "Tags"}, "notes": [(k, _text(v)) for k, v in facts if v not in _EMPTY]}


def _short_time(value: Any) -> str:
    text = _text(value).replace("T", " ")
    return text[:19] if re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text) else text


def event_timeline(events: Any, recent: int = RECENT_EVENTS) -> dict[str, Any] | None:
    """Time, event, node and message of each event (no pattern or playbook internals), latest ``recent`` first
    shown and the rest folded."""
    items = events.get("events") if isinstance(events, dict) else events
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        return None
    rows = []
    for e in items:
        # a cluster timeline names the member whose log it is
        where = _text(e.get("member") or e.get("node")) or os.path.basename(_text(e.get("source")))
        count = e.get("count")
        message = _text(e.get("message") or e.get("summary") or e.get("text"))
        if isinstance(count, int) and count > 1:
            message = f"{message} (×{count})"
        rows.append({"time": _short_time(e.get("time") or e.get("ts") or e.get("timestamp")),
                     "event": _text(e.get("event") or e.get("kind")), "node": where, "message": message,
                     "sort": _text(e.get("time") or e.get("ts") or e.get("timestamp"))})
    rows.sort(key=lambda r: r["sort"])
    cut = max(0, len(rows) - recent)
    return {"recent": rows[cut:], "older": rows[:cut], "total": len(rows)}


_FENCE_RE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE_RE = re.compile(r"`([^`\n]+)`")


def _inline(text: str) -> str:
    """Escaped prose with `code` spans; nothing else of Markdown, and no HTML from it."""
    out, last = [], 0
    for m in _INLINE_CODE_RE.finditer(text):
        out.append(str(escape(text[last:m.start()])))
        out.append(f"<code>{escape(m.group(1))}</code>")
        last = m.end()
    out.append(str(escape(text[last:])))
    return "".join(out)


def markdown_fix(text: str, prefix: str) -> Markup:
    """A playbook's rendered Fix as safe HTML: paragraphs and lists as text, fenced blocks as commands with a
    copy button. Everything is escaped first: Markdown can carry no HTML into the report."""
    html: list[str] = []
    pos = blocks = 0

    def prose(chunk: str) -> None:
        for para in re.split(r"\n\s*\n", chunk.strip()):
            if not para.strip():
                continue
            lines = para.strip().splitlines()
            if all(re.match(r"\s*(?:[-*]|\d+\.)\s", l) or (i and l.startswith("  ")) for i, l in enumerate(lines)):
                items: list[str] = []
                for l in lines:
                    if re.match(r"\s*(?:[-*]|\d+\.)\s", l):
                        items.append(re.sub(r"^\s*(?:[-*]|\d+\.)\s+", "", l))
                    else:
                        items[-1] += " " + l.strip()
                html.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            else:
                html.append(f"<p>{_inline(' '.join(l.strip() for l in lines))}</p>")

    for m in _FENCE_RE.finditer(text):
        prose(text[pos:m.start()])
        blocks += 1  # noqa: SIM113 (counts code blocks, not the prose between them)
        ident = f"{prefix}-{blocks}"
        html.append(f'<div class="fix"><pre><code id="{ident}">{escape(m.group(1).rstrip())}</code></pre>'
                    f'<button type="button" class="copy" data-target="{ident}" title="copy these commands">copy'
                    f'</button></div>')
        pos = m.end()
    prose(text[pos:])
    return Markup("\n".join(html))


def _log_match_rows(matches: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for m in matches:
        first = next((m.get(k) for k in ("first", "first_seen", "first_time", "first_ts") if m.get(k)), None)
        last = next((m.get(k) for k in ("last", "last_seen", "last_time", "last_ts") if m.get(k)), None)
        rows.append({"source": _cell(m.get("source") or m.get("file") or "log"), "count": _cell(m.get("count", 1)),
                     "first": _cell(first), "last": _cell(last),
                     "line": _cell(m.get("sample") or m.get("line") or m.get("pattern"))})
    return rows


def _facts_sections(facts: Facts) -> list[dict[str, Any]]:
    out = []
    for domain, value in facts.data.items():
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        cut = len(text) > MAX_FACTS_CHARS
        out.append({"name": domain, "text": text[:MAX_FACTS_CHARS], "cut": cut, "size": len(text),
                    "error": isinstance(value, dict) and isinstance(value.get("error"), dict)})
    return out


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def render_html(report: dict[str, Any], facts: Facts) -> str:
    """The whole report as one HTML page (inline CSS and JS, nothing fetched)."""
    env = _environment()
    script = (TEMPLATE_DIR / "report.js").read_text(encoding="utf-8") if (TEMPLATE_DIR / "report.js").exists() else ""
    findings = report.get("findings") or []
    counts = {s: int((report.get("counts") or {}).get(s) or 0) for s in STATUSES}
    diagnoses = []
    for i, d in enumerate(report.get("diagnoses") or [], 1):
        fix_html = markdown_fix(d["fix_text"], f"fix-{i}") if isinstance(d.get("fix_text"), str) \
            and d["fix_text"].strip() else None
        verify_html = markdown_fix(d["verify"], f"verify-{i}") if isinstance(d.get("verify"), str) \
            and d["verify"].strip() else None
        diagnoses.append(dict(d, log_rows=_log_match_rows(d.get("log_matches") or []), fix_html=fix_html,
                              verify_html=verify_html))
    cluster = report.get("cluster")
    fleet = report.get("command") == "cluster"  # the members side by side, not one node's patronictl list
    if fleet:
        cluster = report.get("members")
    events = report.get("events")
    context = {
        "r": report,
        "node": report.get("node") or {},
        "versions": report.get("versions") or {},
        "diagnoses": diagnoses,
        "resolved": report.get("resolved") or [],
        "findings": findings,
        "counts": counts,
        "statuses": STATUSES,
        "cluster": _table(cluster, ("members", "rows"), MEMBER_COLUMNS) if cluster is not None else None,
        "members": None if fleet else member_table(cluster),
        "events": _table(events, ("events", "rows", "timeline"), EVENT_COLUMNS) if events is not None else None,
        "timeline": event_timeline(events),
        "source": report.get("source") if isinstance(report.get("source"), dict) else None,
        "more": {k: v for k, v in report.items() if k not in KNOWN_KEYS},
        "facts_sections": _facts_sections(facts),
        "script": script,
        "script_hash": _script_hash(script),
    }
    return env.get_template(TEMPLATE).render(**context)
