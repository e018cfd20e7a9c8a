"""Diagnosis: from findings and log matches to ranked problems with filled-in fixes.

``diagnose`` is four steps, each its own function:

1. grouping — findings and log matches that point at one playbook become one group;
2. resolution — a problem only the logs show may be over (the live check passes, a later
   line healed it, or its lines stopped long ago);
3. value filling — the playbook's fix values from the node, the log lines and the findings;
4. ranking — failures first, then cause before consequence (the playbook's ``layer`` and
   ``explains``/``explained_by``).

``verdict_of`` turns the findings and current diagnoses into the run's verdict and exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doctor.engine import Finding
from doctor.fixquote import prose_text
from doctor.logvalues import confirmed
from doctor.playbooks import Playbook

_STATUS_RANK = {"fail": 0, "error": 1, "warn": 2, "skip": 3, "ok": 4}
_SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
# A problem that only the logs show and whose lines stopped this long before the end of the logs is over
# (Patroni repeats a current problem every loop).
RECENT_LOG_SECONDS = 600.0
LOG_VALUE = "log_value_"  # prefix of a value a log line names but the facts do not confirm


@dataclass
class Diagnosis:
    id: str
    title: str
    severity: str
    status: str
    summary: str
    evidence: list[str]
    fix: list[str]
    fix_text: str
    verify: str
    checks: list[str]
    layer: int
    log_matches: list[dict[str, Any]] = field(default_factory=list)
    caused_by: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    resolved: bool = False  # seen only in the logs, and over now
    member: str | None = None  # in a cluster report: the member(s) it is about, comma-separated

    def as_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id, "title": self.title, "severity": self.severity, "status": self.status,
            "summary": self.summary, "summaries": self.summaries, "evidence": self.evidence, "fix": self.fix,
            "fix_text": self.fix_text, "verify": self.verify, "checks": self.checks,
            "log_matches": self.log_matches, "caused_by": self.caused_by, "resolved": self.resolved,
        }
        if self.member:
            out["member"] = self.member
        return out


@dataclass
class Group:
    """Everything that points at one playbook: failing or warning findings and log matches."""

    playbook: str
    findings: list[Finding] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Resolution:
    """Whether a log-only problem is over, and the words that say why (prefixed to its summary)."""

    resolved: bool = False
    reason: str = ""


def diagnose(findings: list[Finding], playbooks: dict[str, Playbook], node_values: dict[str, Any],
             log_matches: list[dict[str, Any]] | None = None,
             recent_seconds: float = RECENT_LOG_SECONDS) -> list[Diagnosis]:
    """Merge findings (and log matches) that point at one playbook; rank cause before consequence.

    A problem that only the logs show and that is over (see ``resolve``) is marked resolved, with
    status ``warn``: the caller lists it apart and it does not fail the run.
    """
    matches = list(log_matches or [])
    live_ok = {f.playbook for f in findings if f.status == "ok" and f.playbook}
    diagnoses = []
    for group in group_by_playbook(findings, matches, playbooks, node_values):
        book = playbooks.get(group.playbook)
        resolution = resolve(group, book, live_ok, matches, recent_seconds)
        diagnoses.append(_diagnosis(group, book, resolution, fill_values(group, book, node_values)))
    link_causes(diagnoses, playbooks)
    return rank(diagnoses)


# --------------------------------------------------------------------------- 1. grouping


def group_by_playbook(findings: list[Finding], log_matches: list[dict[str, Any]], playbooks: dict[str, Playbook],
                      node_values: dict[str, Any]) -> list[Group]:
    """Failing/warning findings and problem log matches, by playbook id, in order of first appearance.

    Benign lines are context, not problems; a line whose pattern ``require``s a node value it
    does not carry (another user's failed login) is not this node's problem.
    """
    groups: dict[str, Group] = {}
    for f in findings:
        if f.status in ("fail", "warn") and f.playbook:
            groups.setdefault(f.playbook, Group(f.playbook)).findings.append(f)
    required = {p.id: p.require for b in playbooks.values() for p in b.patterns if p.require}
    for m in log_matches:
        if m.get("benign") or not m.get("playbook"):
            continue
        if not _meets_requirements(m, required.get(str(m.get("pattern"))), node_values):
            continue
        groups.setdefault(m["playbook"], Group(m["playbook"])).logs.append(m)
    for g in groups.values():
        g.findings.sort(key=lambda f: _STATUS_RANK[f.status])
    return list(groups.values())


def _meets_requirements(match: dict[str, Any], require: dict[str, str] | None,
                        node_values: dict[str, Any]) -> bool:
    """A pattern's ``require`` (named group -> node value): the line is this problem only when, e.g.,
    the user that failed to log in is this node's replication user. A group the line lacks passes."""
    for group, value_name in (require or {}).items():
        got = (match.get("groups") or {}).get(group)
        want = node_values.get(value_name)
        if got is not None and want is not None and str(got) != str(want):
            return False
    return True


# --------------------------------------------------------------------------- 2. resolution


def resolve(group: Group, book: Playbook | None, live_ok: set[str], all_matches: list[dict[str, Any]],
            recent_seconds: float) -> Resolution:
    """Is a problem only the logs show over? A live finding always keeps it current.

    Over when the live check for the same problem passes now, when a healing line (the
    playbook's ``resolved_by``) came after its last line, or when its lines stopped more than
    ``recent_seconds`` before the end of the logs.
    """
    if group.findings:
        return Resolution()
    if group.playbook in live_ok:
        return Resolution(True, "resolved now (the live check passes), but ")
    healed_by = _healed_by(group.logs, book.resolved_by, all_matches, book.resolved_across_nodes) if book else None
    if healed_by is not None:
        return Resolution(True, f"over: \"{_message_of(healed_by)}\" came after it "
                                f"(last at {healed_by.get('last')}), but ")
    ages = [m["age_seconds"] for m in group.logs if m.get("age_seconds") is not None]
    if ages and len(ages) == len(group.logs) and min(ages) > recent_seconds:
        return Resolution(True, f"not seen in the last {min(ages) / 60:.0f} min, probably over, but ")
    return Resolution()


def _message_of(match: dict[str, Any]) -> str:
    """A match's sample line without its time and level prefix (the sample may be an earlier line
    of the same kind than the match's last time)."""
    from doctor.logscan.parse import parse_line
    sample = match.get("sample")
    return parse_line(str(sample)).message.strip() if sample else str(match.get("pattern"))


def _healed_by(logs: list[dict[str, Any]], resolvers: list[str], all_matches: list[dict[str, Any]],
               across_nodes: bool = False) -> dict[str, Any] | None:
    """The line naming the problem over (``resolved_by``: an event or a pattern id, of any
    playbook) that came after the problem's last line, on every node that showed the problem;
    None when some node has no such line (or a line has no time to compare)."""
    if not resolvers or not logs:
        return None
    wanted = set(resolvers)
    healers = [m for m in all_matches
               if m.get("last_ts") is not None and {m.get("pattern"), m.get("event")} & wanted]
    last_by_node: dict[Any, float] = {}
    for p in logs:
        if p.get("last_ts") is None:
            return None
        node = None if across_nodes else p.get("node")
        last_by_node[node] = max(last_by_node.get(node, p["last_ts"]), p["last_ts"])
    best: dict[str, Any] | None = None
    for node, last in last_by_node.items():
        after = [h for h in healers if h["last_ts"] > last
                 and (node is None or h.get("node") is None or h.get("node") == node)]
        if not after:
            return None
        first = min(after, key=lambda h: h["last_ts"])  # the first sign it was over
        if best is None or first["last_ts"] > best["last_ts"]:
            best = first
    return best


# --------------------------------------------------------------------------- 3. value filling


def fill_values(group: Group, book: Playbook | None, node_values: dict[str, Any]) -> dict[str, Any]:
    """The values the playbook's Fix is filled with: the node's, then what each log line implies and
    captured, then each finding's (the first finding, the most severe, wins).

    A value from a log line fills its name only when the facts confirm it (``doctor.logvalues``);
    otherwise it is kept as ``log_value_<name>``, text for the reader, and the commands stay generic.
    """
    values = dict(node_values)
    for m in reversed(group.logs):
        taken = _pattern_values(book, m, node_values)
        taken.update({k: v for k, v in (m.get("groups") or {}).items() if v is not None})
        for name, value in taken.items():
            values[name if confirmed(name, value, node_values) else f"{LOG_VALUE}{name}"] = value
    for f in reversed(group.findings):
        values.update(f.values)
    return values


def unconfirmed_note(book: Playbook | None, values: dict[str, Any]) -> str:
    """A line of prose naming the log's values that the Fix would have used but did not, if any."""
    used = book.value_names() if book else frozenset()
    named = [f"{k[len(LOG_VALUE):]} \"{prose_text(str(v))}\"" for k, v in sorted(values.items())
             if k.startswith(LOG_VALUE) and k[len(LOG_VALUE):] in used]
    if not named:
        return ""
    return ("The log lines also name " + ", ".join(named) + ", which this node's config and the DCS do not "
            "confirm; the commands above do not use it. Check it by hand before acting on it.")


def _pattern_values(book: Playbook | None, match: dict[str, Any], node_values: dict[str, Any]) -> dict[str, Any]:
    """Fix values a log pattern implies (e.g. the REST port behind "already a node named"), rendered
    with the node's values and the match's groups (``<group>_all``: all its distinct values); the
    match's own regex groups override them."""
    if book is None:
        return {}
    for p in book.patterns:
        if p.id == match.get("pattern") and p.values:
            from doctor.playbooks import render_value
            scope = dict(node_values)
            scope.update({k: v for k, v in (match.get("groups") or {}).items() if v is not None})
            # every distinct value a group took (e.g. each etcd endpoint the log names), comma-joined
            scope.update({f"{k}_all": ",".join(map(str, v)) for k, v in (match.get("values") or {}).items() if v})
            return {k: render_value(v, scope) for k, v in p.values.items()}
    return {}


# --------------------------------------------------------------------------- one diagnosis


def _diagnosis(group: Group, book: Playbook | None, resolution: Resolution, values: dict[str, Any]) -> Diagnosis:
    fs, logs = group.findings, group.logs
    summaries = [f.summary for f in fs]
    summary = summaries[0] if summaries else _log_summary(logs)
    if resolution.resolved:
        status = "warn"
        summary = resolution.reason + summary
    elif fs:
        status = "fail" if any(f.status == "fail" for f in fs) else "warn"
    else:
        status = "fail" if (book.severity if book else "error") in ("critical", "error") else "warn"
    evidence: list[str] = []
    for f in fs:
        evidence.extend(e for e in f.evidence if e not in evidence)
    evidence.extend(log_evidence(m) for m in logs)
    return Diagnosis(
        id=group.playbook, title=book.title if book else group.playbook,
        severity=book.severity if book else "error", status=status, summary=summary, evidence=evidence,
        fix=book.fix_commands(values) if book else [], fix_text=_fix_text(book, values),
        verify=book.render("verify", values) if book else "", checks=sorted({f.check for f in fs}),
        layer=book.layer if book else 50, log_matches=logs, summaries=summaries, resolved=resolution.resolved,
    )


def _fix_text(book: Playbook | None, values: dict[str, Any]) -> str:
    if book is None:
        return ""
    note = unconfirmed_note(book, values)
    return book.render("fix", values) + (f"\n\n{note}" if note else "")


def log_evidence(m: dict[str, Any]) -> str:
    """One evidence line for a counted log match: where, how often, when, and the line itself."""
    line = m.get("sample") or m.get("pattern")
    count = m.get("count", 1)
    first, last = m.get("first"), m.get("last")
    when = ""
    if first and last and first != last:
        when = f" {first} … {last}"
    elif first:
        when = f" {first}"
    return f"[{m.get('source', 'log')}] x{count}{when}: {line}{_persist_note(m)}"


def _persist_note(m: dict[str, Any]) -> str:
    """For a line that is a problem only when it persists: how long it went on without progress."""
    from doctor.logscan.persist import duration_text

    rec = m.get("persist")
    if not isinstance(rec, dict) or not rec.get("persistent") or not isinstance(rec.get("run"), dict):
        return ""
    run = rec["run"]
    loops = f"{rec.get('loops')} HA loops" if rec.get("each_loop") else \
        f"{rec.get('loops')} HA loops of {rec.get('loop_seconds'):g}s ({rec.get('loop_from')})"
    then = {"progress": "then progress", "silence": "then it stopped"}.get(str(run.get("then")), "still going")
    return (f" — x{run.get('count')} in a row over {duration_text(run.get('seconds'))} "
            f"({run.get('first')} … {run.get('last')}) with no progress, more than {loops}; {then}")


def _log_summary(logs: list[dict[str, Any]]) -> str:
    first = logs[0]
    n = sum(m.get("count", 1) for m in logs)
    return f"the logs show it {n} time{'s' if n != 1 else ''}: {first.get('sample') or first.get('pattern')}"


# --------------------------------------------------------------------------- 4. ranking


def link_causes(diagnoses: list[Diagnosis], playbooks: dict[str, Playbook]) -> None:
    """Name, on each diagnosis, the current problems that explain it (``explains`` on the cause's
    playbook or ``explained_by`` on the consequence's)."""
    present = {d.id for d in diagnoses if not d.resolved}
    for d in diagnoses:
        own = playbooks.get(d.id)
        for other in diagnoses:
            if other.id == d.id or other.id not in present or other.id in d.caused_by:
                continue
            cause = playbooks.get(other.id)
            if (cause and d.id in cause.explains) or (own and other.id in own.explained_by):
                d.caused_by.append(other.id)


def rank(diagnoses: list[Diagnosis]) -> list[Diagnosis]:
    """Current before resolved; failures first; a consequence after every cause; then by layer
    (lower layers break higher ones), severity and id."""
    return sorted(diagnoses, key=lambda d: (
        d.resolved,
        _STATUS_RANK.get(d.status, 9) if not d.caused_by else 5,
        d.layer, _SEVERITY_RANK.get(d.severity, 9), d.id))


# --------------------------------------------------------------------------- verdict


def verdict_of(findings: list[Finding], diagnoses: list[Diagnosis]) -> tuple[str, int]:
    """The run's verdict and exit code: 2 failures, 3 check errors, 1 warnings only, 0 healthy."""
    statuses = {f.status for f in findings} | {d.status for d in diagnoses if not d.resolved}
    if "fail" in statuses:
        return "fail", 2
    if "error" in statuses:
        return "error", 3
    if "warn" in statuses:
        return "warn", 1
    return "ok", 0
