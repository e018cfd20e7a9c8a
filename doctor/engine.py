"""The rule engine: check registry and isolated runner.

Checks are pure functions of the facts. The runner turns whatever a check does
(returns verdicts, lacks its facts, raises) into findings, and applies the caller's
selection: profiles, ``only``/``skip``, and ``ignore`` (a failure of an ignored check
is demoted to a warning and marked, as kubeadm's ``--ignore-preflight-errors`` does).
What the findings mean is ``doctor.diagnosis``'s job.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

from doctor.facts import Facts
from doctor.model.node import NodeView

STATUSES = ("ok", "warn", "fail", "skip", "error")
IGNORE_ALL = "all"  # in ``ignore``: every check


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
    ignored: bool = False  # a failure demoted to a warning because the caller ignores this check
    member: str | None = None  # in a cluster report: the member whose facts it judged, or is about

    def as_dict(self) -> dict[str, Any]:
        d = {"check": self.check, "title": self.title, "status": self.status, "summary": self.summary,
             "playbook": self.playbook, "evidence": self.evidence}
        if self.subject:
            d["subject"] = self.subject
        if self.member:
            d["member"] = self.member
        if self.ignored:
            d["ignored"] = True
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
    # Run in order before the check; the first that returns a verdict (a skip, usually) is the check's answer.
    gates: tuple[Callable[[CheckContext], Verdict | None], ...] = ()


_REGISTRY: dict[str, Check] = {}
_PLUGIN_ERRORS: list[Finding] = []


def check(id: str, title: str, playbook: str, profiles: Iterable[str] = ("run",), needs: Iterable[str] = (),
          errors_ok: bool = False,
          gates: Iterable[Callable[[CheckContext], Verdict | None]] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register a check. ``needs`` are fact paths without which the check is skipped; ``gates`` are
    judgements of the facts (e.g. "the DCS keys were read") that answer for the check when they object."""

    def wrap(fn: CheckFn) -> CheckFn:
        origin = fn.__module__ if not fn.__module__.startswith("doctor.checks.") else "builtin"
        _REGISTRY[id] = Check(id, title, playbook, tuple(profiles), tuple(needs), fn, errors_ok, origin,
                              tuple(gates))
        return fn

    return wrap


def load_checks() -> dict[str, Check]:
    """Built-in checks plus those registered through the ``pgdoctor.checks`` entry point group."""
    import doctor.checks  # noqa: F401  (importing the package registers the built-in checks)

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


def known_ids(registry: dict[str, Check], profiles: Iterable[str] | None = None) -> set[str]:
    """Check ids and problem ids a selection may name (of the given profiles, or of all)."""
    chosen = [c for c in registry.values() if profiles is None or set(profiles) & set(c.profiles)]
    return {c.id for c in chosen} | {c.playbook for c in chosen}


def unknown_ids(registry: dict[str, Check], ids: Iterable[str]) -> list[str]:
    known = known_ids(registry)
    return [i for i in ids if i and i not in known]


def run_checks(ctx: CheckContext, profiles: Iterable[str] = ("run",), only: Iterable[str] = (),
               skip_ids: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[Finding]:
    """Run each selected check in isolation; a raising check becomes an ``error`` finding.

    ``ignore`` (check or problem ids, any case, or ``all``): such a check's failures become
    warnings marked ``ignored``; they stay in the report, but no longer fail the run.
    """
    registry = load_checks()
    findings: list[Finding] = list(_PLUGIN_ERRORS)
    for c in _select(registry, profiles, only, skip_ids):
        findings.extend(_run_one(c, ctx))
    return demote_ignored(findings, ignore)


def is_ignored(finding: Finding, ignore: Iterable[str]) -> bool:
    """Does ``ignore`` name this finding's check or problem (case-insensitive), or say ``all``?"""
    wanted = {i.lower() for i in ignore}
    return bool(wanted) and (IGNORE_ALL in wanted or finding.check.lower() in wanted
                             or (finding.playbook or "").lower() in wanted)


def demote_ignored(findings: list[Finding], ignore: Iterable[str]) -> list[Finding]:
    """New findings in which each ignored failure is a warning marked ``ignored``."""
    ignore = [i for i in ignore if i]
    if not ignore:
        return findings
    return [replace(f, status="warn", ignored=True) if f.status == "fail" and is_ignored(f, ignore) else f
            for f in findings]


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
        result = next((v for v in (gate(ctx) for gate in c.gates) if v is not None), None) or c.fn(ctx)
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
