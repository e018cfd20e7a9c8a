"""The rule engine: check registry, isolated runner, and diagnosis.

Checks are pure functions of the facts. The runner turns whatever a check does
(returns verdicts, lacks its facts, raises) into findings; the diagnosis step merges
findings and log matches that point at the same playbook and ranks them cause
before consequence.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

from doctor.facts import Facts
from doctor.model.node import NodeView
from doctor.playbooks import Playbook

STATUSES = ("ok", "warn", "fail", "skip", "error")
_STATUS_RANK = {"fail": 0, "error": 1, "warn": 2, "skip": 3, "ok": 4}
_SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
PROFILES = ("run", "preflight", "replication")


@dataclass
class Verdict:
    """What a check returns: a status, a summary with real values, and evidence."""

    status: str
    summary: str
    evidence: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    playbook: str | None = None  # overrides the check's playbook for this verdict
    subject: str | None = None  # what the verdict is about (a port, a member, an endpoint)


def ok(summary: str, **kw: Any) -> Verdict:
    return Verdict("ok", summary, **kw)


def warn(summary: str, **kw: Any) -> Verdict:
    return Verdict("warn", summary, **kw)


def fail(summary: str, **kw: Any) -> Verdict:
    return Verdict("fail", summary, **kw)


def skip(summary: str, **kw: Any) -> Verdict:
    return Verdict("skip", summary, **kw)


@dataclass
class Finding:
    check: str
    title: str
    status: str
    summary: str
    playbook: str | None
    evidence: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = {"check": self.check, "title": self.title, "status": self.status, "summary": self.summary,
             "playbook": self.playbook, "evidence": self.evidence}
        if self.subject:
            d["subject"] = self.subject
        return d


@dataclass
class CheckContext:
    """What a check may read: the facts, this node's view of its config, and thresholds."""

    facts: Facts
    node: NodeView
    settings: dict[str, Any]


CheckFn = Callable[[CheckContext], "Verdict | Iterable[Verdict] | None"]


@dataclass
class Check:
    id: str
    title: str
    playbook: str
    profiles: tuple[str, ...]
    needs: tuple[str, ...]
    fn: CheckFn
    errors_ok: bool = False  # the check judges collection errors itself (e.g. etcd refused)
    origin: str = "builtin"


_REGISTRY: dict[str, Check] = {}
_PLUGIN_ERRORS: list[Finding] = []


def check(id: str, title: str, playbook: str, profiles: Iterable[str] = ("run",), needs: Iterable[str] = (),
          errors_ok: bool = False) -> Callable[[CheckFn], CheckFn]:
    """Register a check. ``needs`` are fact paths without which the check is skipped."""

    def wrap(fn: CheckFn) -> CheckFn:
        origin = fn.__module__ if not fn.__module__.startswith("checks.") else "builtin"
        _REGISTRY[id] = Check(id, title, playbook, tuple(profiles), tuple(needs), fn, errors_ok, origin)
        return fn

    return wrap


def load_checks() -> dict[str, Check]:
    """Built-in checks plus those registered through the ``pgdoctor.checks`` entry point group."""
    import checks  # noqa: F401  (importing the package registers the built-in checks)

    _PLUGIN_ERRORS.clear()
    try:
        eps = metadata.entry_points(group="pgdoctor.checks")
    except Exception:  # a broken environment must not stop the built-in checks
        eps = []
    for ep in eps:
        try:
            loaded = ep.load()
            if callable(loaded) and not isinstance(loaded, type(metadata)):
                loaded()  # a function that registers checks when called
        except Exception as exc:
            _PLUGIN_ERRORS.append(Finding(
                check=f"plugin.{ep.name}", title=f"check plugin {ep.name}", status="error",
                summary=f"check plugin '{ep.name}' ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
                playbook=None,
            ))
    return dict(_REGISTRY)


def _select(registry: dict[str, Check], profiles: Iterable[str], only: Iterable[str] = (),
            skip_ids: Iterable[str] = ()) -> list[Check]:
    profiles = set(profiles)
    only_set = {o for o in only if o}
    skip_set = {s for s in skip_ids if s}
    chosen = []
    for c in registry.values():
        if not profiles & set(c.profiles):
            continue
        keys = {c.id, c.playbook}
        if only_set and not keys & only_set:
            continue
        if keys & skip_set:
            continue
        chosen.append(c)
    return chosen


def unknown_ids(registry: dict[str, Check], ids: Iterable[str]) -> list[str]:
    known = set(registry) | {c.playbook for c in registry.values()}
    return [i for i in ids if i and i not in known]


def run_checks(ctx: CheckContext, profiles: Iterable[str] = ("run",), only: Iterable[str] = (),
               skip_ids: Iterable[str] = ()) -> list[Finding]:
    """Run each selected check in isolation; a raising check becomes an ``error`` finding."""
    registry = load_checks()
    findings: list[Finding] = list(_PLUGIN_ERRORS)
    for c in _select(registry, profiles, only, skip_ids):
        findings.extend(_run_one(c, ctx))
    return findings


def _run_one(c: Check, ctx: CheckContext) -> list[Finding]:
    def finding(status: str, summary: str, **kw: Any) -> Finding:
        return Finding(check=c.id, title=c.title, status=status, summary=summary, playbook=c.playbook, **kw)

    for path in c.needs:
        err = ctx.facts.error_of(path)
        if err and not c.errors_ok:
            return [finding("skip", f"could not collect {path}: {err.get('kind')}: {err.get('message')}")]
        if not err and not ctx.facts.has(path):
            return [finding("skip", f"not collected: {path}")]
    try:
        result = c.fn(ctx)
    except Exception as exc:
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        return [finding("error", f"check raised {type(exc).__name__}: {exc}", evidence=[tb[-1].strip()],
                        values={"traceback": "".join(tb)})]
    verdicts: list[Verdict]
    if result is None:
        verdicts = [ok("no problem found")]
    elif isinstance(result, Verdict):
        verdicts = [result]
    else:
        verdicts = list(result) or [ok("no problem found")]
    out = []
    for v in verdicts:
        if v.status not in STATUSES:
            out.append(finding("error", f"check returned unknown status {v.status!r}"))
            continue
        out.append(Finding(check=c.id, title=c.title, status=v.status, summary=v.summary,
                           playbook=v.playbook or c.playbook, evidence=list(v.evidence), values=dict(v.values),
                           subject=v.subject))
    return out


# --------------------------------------------------------------------------- diagnosis


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
    resolved: bool = False  # seen only in the logs, while the live check now says ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "severity": self.severity, "status": self.status,
            "summary": self.summary, "summaries": self.summaries, "evidence": self.evidence, "fix": self.fix,
            "fix_text": self.fix_text, "verify": self.verify, "checks": self.checks,
            "log_matches": self.log_matches, "caused_by": self.caused_by, "resolved": self.resolved,
        }


RECENT_LOG_SECONDS = 600.0


def diagnose(findings: list[Finding], playbooks: dict[str, Playbook], node_values: dict[str, Any],
             log_matches: list[dict[str, Any]] | None = None,
             recent_seconds: float = RECENT_LOG_SECONDS) -> list[Diagnosis]:
    """Merge findings (and log matches) that point at one playbook; rank cause before consequence.

    A problem that only the logs show is over when the live check for it passes, or when its
    lines stopped more than ``recent_seconds`` before the end of the logs (Patroni repeats a
    current problem every loop); it is then listed as resolved and does not fail the run.
    """
    groups: dict[str, dict[str, Any]] = {}
    live_ok = {f.playbook for f in findings if f.status == "ok" and f.playbook}
    for f in findings:
        if f.status not in ("fail", "warn") or not f.playbook:
            continue
        g = groups.setdefault(f.playbook, {"findings": [], "logs": []})
        g["findings"].append(f)
    required = {p.id: p.require for b in playbooks.values() for p in b.patterns if p.require}
    for m in log_matches or []:
        if m.get("benign") or not m.get("playbook"):
            continue
        if not _meets_requirements(m, required.get(str(m.get("pattern"))), node_values):
            continue
        g = groups.setdefault(m["playbook"], {"findings": [], "logs": []})
        g["logs"].append(m)

    diagnoses: list[Diagnosis] = []
    for pid, g in groups.items():
        book = playbooks.get(pid)
        fs: list[Finding] = sorted(g["findings"], key=lambda f: _STATUS_RANK[f.status])
        logs: list[dict[str, Any]] = g["logs"]
        status = "fail" if any(f.status == "fail" for f in fs) else ("warn" if fs else _log_status(logs, book))
        # Only the logs say so, and the live check for the same problem says ok now: it happened and is over.
        resolved = not fs and pid in live_ok
        ages = [m["age_seconds"] for m in logs if m.get("age_seconds") is not None]
        quiet_since = not fs and bool(ages) and len(ages) == len(logs) and min(ages) > recent_seconds
        healed_by = None if fs or resolved or not book else _healed_by(logs, book.resolved_by, log_matches or [],
                                                                                 book.resolved_across_nodes)
        values = dict(node_values)
        for m in reversed(logs):
            values.update(_pattern_values(book, m, node_values))
            values.update({k: v for k, v in (m.get("groups") or {}).items() if v is not None})
        for f in reversed(fs):
            values.update(f.values)
        summaries = [f.summary for f in fs]
        summary = summaries[0] if summaries else _log_summary(logs)
        if resolved:
            status = "warn"
            summary = "resolved now (the live check passes), but " + summary
        elif healed_by is not None:
            resolved = True
            status = "warn"
            summary = f"over: \"{_message_of(healed_by)}\" came after it (last at {healed_by.get('last')}), but " + summary
        elif quiet_since:
            resolved = True
            status = "warn"
            summary = f"not seen in the last {min(ages) / 60:.0f} min, probably over, but " + summary
        evidence: list[str] = []
        for f in fs:
            evidence.extend(e for e in f.evidence if e not in evidence)
        for m in logs:
            evidence.append(log_evidence(m))
        title = book.title if book else pid
        severity = book.severity if book else "error"
        diagnoses.append(Diagnosis(
            id=pid, title=title, severity=severity, status=status, summary=summary, evidence=evidence,
            fix=book.fix_commands(values) if book else [], fix_text=book.render("fix", values) if book else "",
            verify=book.render("verify", values) if book else "", checks=sorted({f.check for f in fs}),
            layer=book.layer if book else 50, log_matches=logs, summaries=summaries, resolved=resolved,
        ))
    present = {d.id for d in diagnoses if not d.resolved}
    for d in diagnoses:
        for other in diagnoses:
            book = playbooks.get(other.id)
            own = playbooks.get(d.id)
            explains = (book and d.id in book.explains) or (own and other.id in own.explained_by)
            if explains and other.id in present and other.id != d.id and other.id not in d.caused_by:
                d.caused_by.append(other.id)
    diagnoses.sort(key=lambda d: (
        d.resolved,
        _STATUS_RANK.get(d.status, 9) if not d.caused_by else 5,
        d.layer, _SEVERITY_RANK.get(d.severity, 9), d.id))
    return diagnoses


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
    return f"[{m.get('source', 'log')}] x{count}{when}: {line}"


def _log_status(logs: list[dict[str, Any]], book: Playbook | None) -> str:
    severity = book.severity if book else "error"
    return "fail" if severity in ("critical", "error") else "warn"


def _log_summary(logs: list[dict[str, Any]]) -> str:
    first = logs[0]
    n = sum(m.get("count", 1) for m in logs)
    return f"the logs show it {n} time{'s' if n != 1 else ''}: {first.get('sample') or first.get('pattern')}"


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
