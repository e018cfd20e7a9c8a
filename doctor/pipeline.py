"""collect -> facts -> checks -> findings -> diagnosis -> report: the one path every command takes.

A command gets its facts one of three ways — ``collect`` (this node), ``collect_logs`` (log files
given by hand) or a bundle's snapshot — and then calls ``analyze``, which runs the checks, diagnoses,
builds the views and returns the ``Report`` that ``doctor.render.emit`` writes out.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from doctor import __version__
from doctor.collect import CollectContext, CollectOptions, run_collectors
from doctor.collect.config import apply_env_overrides, discover_config_path, load_config, require_patroni_config
from doctor.collect.deadline import Deadline
from doctor.config_schema import Host as SchemaHost
from doctor.config_schema import config_problems
from doctor.diagnosis import RECENT_LOG_SECONDS, Diagnosis, diagnose, verdict_of
from doctor.engine import CheckContext, Finding, known_ids, load_checks, run_checks
from doctor.facts import FACTS_VERSION, Facts
from doctor.model import model_of
from doctor.model.node import NodeView
from doctor.playbooks import Playbook, load_playbooks
from doctor.redact import Redactor, collect_secrets

# The profiles of a full diagnosis (run, analyze, bundle).
FULL_PROFILES = ("run", "replication")


@dataclass
class Selection:
    """Which checks the caller chose, and which of their failures it ignores (and where that came from)."""

    only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)  # in effect: given ones plus the config's known ones
    ignore_from_config: list[str] = field(default_factory=list)
    ignore_unknown_in_config: list[str] = field(default_factory=list)


REPORT_SCHEMA_VERSION = 1


@dataclass
class Report:
    """Everything a renderer needs; ``as_dict`` is the JSON contract (docs/json-output.md)."""

    command: str
    facts: Facts
    findings: list[Finding]
    diagnoses: list[Diagnosis]  # current problems, most important first
    verdict: str
    exit_code: int
    extra: dict[str, Any] = field(default_factory=dict)  # the views, by name
    resolved: list[Diagnosis] = field(default_factory=list)  # seen in the logs, over now
    selection: Selection = field(default_factory=Selection)
    playbooks: dict[str, Playbook] = field(default_factory=dict)  # the ones the diagnosis used
    values: dict[str, Any] = field(default_factory=dict)  # this node's playbook values
    source: dict[str, Any] | None = None  # where an analyzed snapshot came from (a bundle)

    def as_dict(self) -> dict[str, Any]:
        f = self.facts
        node = NodeView(f.get("config.data") or {}, f.get("config.path"))
        counts = {s: sum(1 for x in self.findings if x.status == s) for s in ("ok", "warn", "fail", "skip", "error")}
        out: dict[str, Any] = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "pgdoctor_version": __version__,
            "command": self.command,
            "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "collected_at": f.get("collected_at"),
            "node": {"name": node.name, "scope": node.scope or _cluster_scope(f), "namespace": node.namespace,
                     "config_path": f.get("config.path"), "host": f.get("host"), "data_dir": node.data_dir},
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "counts": counts,
            "diagnoses": [d.as_dict() for d in self.diagnoses],
            "resolved": [d.as_dict() for d in self.resolved],
            "findings": [x.as_dict() for x in self.findings],
        }
        if self.source is not None:
            out["source"] = self.source
        out.update(self.extra)
        return out


def _cluster_scope(facts: Facts) -> str | None:
    """A cluster snapshot's scope: the one its members' configs name, when they name one."""
    scopes = facts.get("cluster.scopes") or []
    return ", ".join(str(s) for s in scopes) or None


def load_config_into(facts: Facts, options: CollectOptions, redactor: Redactor) -> CollectContext:
    """Find and parse the config; raise UsageError if there is none to read."""
    path, found_by = discover_config_path(options.config_path)
    loaded = load_config(path)
    config, yaml_error = loaded.config, loaded.yaml_error
    # realpath: resolved here, on the node; checks compare it with the config a running Patroni was given
    entry: dict[str, Any] = {"path": os.path.abspath(path), "realpath": os.path.realpath(path), "found_by": found_by,
                             "exists": True, "size": loaded.size}
    if loaded.encoding_error:
        entry["encoding_error"] = loaded.encoding_error
    if yaml_error:
        entry["yaml_error"] = yaml_error
        if yaml_error.get("line_text"):
            yaml_error["line_text"] = redactor.text(yaml_error["line_text"], "config")
    applied: list[str] = []
    if config is not None:
        require_patroni_config(config, path)
        applied = apply_env_overrides(config)
        for secret in collect_secrets(config):
            redactor.remember(secret)
        # Judged on the real config (a password that is a list is no longer one once redacted).
        entry["schema"] = redactor.data(config_problems(config, SchemaHost()), "config")
        entry["data"] = redactor.data(config, "config")
        entry["env_overrides"] = applied
    facts.set("config", entry)
    return CollectContext(options=options, config=config, config_path=os.path.realpath(path), redactor=redactor)


def collect(options: CollectOptions, profile: str = "run", progress: Callable[[str, str], None] | None = None,
            redactor: Redactor | None = None, deadline: Deadline | None = None,
            settings: dict[str, Any] | None = None) -> tuple[Facts, CollectContext]:
    """Gather every domain of facts for this node, concurrently, within the ``collect`` share of ``deadline``
    (by default the command's budget made from ``options.timeout``).

    ``settings`` (the thresholds given on the command line) are kept in the snapshot, so that the
    views show them and a bundle analyzed elsewhere is judged by the same ones.
    """
    deadline = deadline or Deadline.for_command(options.timeout, profile)
    redactor = redactor or Redactor()
    facts = Facts({"version": FACTS_VERSION})
    facts.set("collected_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    facts.set("host", socket.gethostname())
    facts.set("pgdoctor_version", __version__)
    facts.set("profile", profile)
    ctx = load_config_into(facts, options, redactor)
    ctx.deadline = deadline
    results = run_collectors(ctx, profile=profile, progress=progress)
    timings = results.pop("_timings", {})
    validate = results.pop("config_validate", None)
    for domain, value in results.items():
        facts.set(domain, redactor.data(value, domain))
    if validate and "config" in facts.data:
        facts.data["config"]["validate"] = redactor.data(validate, "config")
    facts.set("timings", timings)
    if settings:
        facts.set("settings", dict(settings))
    return facts, ctx


def collect_logs(sources: Sequence[Any], since: float | None = None, until: float | None = None,
                 engine: str = "auto", config_path: str | None = None,
                 playbook_dirs: Sequence[str] | None = None, deadline: float | None = None) -> Facts:
    """The snapshot for logs given by hand (files, stdin, journal units): the same ``config`` (when
    one is given, to fill fixes with its values) and ``logs`` domains ``collect`` makes, redacted alike."""
    from doctor.collect.logs import scan_logs

    redactor = Redactor()
    facts = Facts({"version": FACTS_VERSION})
    facts.set("collected_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    facts.set("pgdoctor_version", __version__)
    facts.set("profile", "logs")
    node_values: dict[str, Any] | None = None
    loop_wait: float | None = None
    if config_path is not None:
        ctx = load_config_into(facts, CollectOptions(config_path=config_path), redactor)
        node = NodeView(ctx.config or {}, ctx.config_path)
        node_values, loop_wait = node.template_values(), node.loop_wait
    facts.set("logs", scan_logs(sources, playbook_dirs, since=since, until=until, engine=engine,
                                redact=lambda text: redactor.text(text, "logs"), deadline=deadline,
                                node_values=node_values, loop_wait=loop_wait))
    return facts


def node_values(facts: Facts, node: NodeView) -> dict[str, Any]:
    """What playbook fixes may use: the config's values plus what the facts say of this node's data dir."""
    values = node.template_values()
    datadir = facts.dict_at("system.datadir") or {}
    values["data_dir_exists"] = bool(datadir.get("exists"))
    values["data_dir_entries"] = facts.int_at("system.datadir.entry_count") or 0
    values["data_dir_initialised"] = bool(datadir.get("has_pg_version"))
    # what a log line's member name or API address must match before a fix command uses it
    members = model_of(facts).members
    values["known_members"] = [m.name for m in members]
    values["known_api_urls"] = [m.api_url for m in members if m.api_url]
    return values




def analyze(facts: Facts, command: str = "run", profiles: Iterable[str] = ("run",), only: Iterable[str] = (),
            skip_ids: Iterable[str] = (), playbook_dirs: Sequence[str] | None = None,
            settings: dict[str, Any] | None = None, values: dict[str, Any] | None = None,
            ignore: Iterable[str] = (), source: dict[str, Any] | None = None) -> Report:
    """Judge a snapshot: run the checks, merge findings and log matches into diagnoses, build the views.

    ``ignore``: check or problem ids whose failures count as warnings (see ``select``); ``values``
    are extra playbook template values (e.g. ``command`` so that a fix can say "start" before the
    first start rather than "restart"); ``source`` says where a snapshot read from a bundle came from.
    """
    profiles = tuple(profiles)
    merged_settings = dict(facts.get("settings") or {})
    merged_settings.update(settings or {})
    selection = select(facts, command, profiles, only, skip_ids, ignore)
    node = NodeView(facts.get("config.data") or {}, facts.get("config.path"),
                    pg_user=facts.get("system.pg_user.name") or "postgres")
    ctx = CheckContext(facts=facts, node=node, settings=merged_settings)
    findings = run_checks(ctx, profiles=profiles, only=selection.only, skip_ids=selection.skip,
                          ignore=selection.ignore)
    playbooks = load_playbooks(list(playbook_dirs or []))
    fill = {**node_values(facts, node), **(values or {})}
    diagnoses = diagnose(findings, playbooks, fill, selected_log_matches(facts, selection),
                         recent_seconds=float(merged_settings.get("log_recent_seconds", RECENT_LOG_SECONDS)))
    current = [d for d in diagnoses if not d.resolved]
    verdict, code = verdict_of(findings, current)
    report = Report(command=command, facts=facts, findings=findings, diagnoses=current, verdict=verdict,
                    exit_code=code, resolved=[d for d in diagnoses if d.resolved], selection=selection,
                    playbooks=playbooks, values=fill, source=source)
    from doctor.views import build_views
    report.extra = build_views(facts, command, report)
    return report


def select(facts: Facts, command: str, profiles: Sequence[str], only: Iterable[str], skip_ids: Iterable[str],
           ignore: Iterable[str]) -> Selection:
    """The caller's selection, plus the ids the config lists under ``pgdoctor.<command>_ignore``
    (e.g. ``preflight_ignore``); ids there that no check of these profiles has are reported, not used."""
    raw = facts.get(f"config.data.pgdoctor.{command}_ignore")
    from_config = _id_list(raw if isinstance(raw, (list, str)) else None)
    known = {i.lower() for i in known_ids(load_checks(), profiles)}
    given = _id_list(list(ignore))
    return Selection(only=[o for o in only if o], skip=[s for s in skip_ids if s],
                     ignore=sorted(set(given) | {i for i in from_config if i == "all" or i in known}),
                     ignore_from_config=sorted(set(from_config)),
                     ignore_unknown_in_config=sorted(i for i in from_config if i != "all" and i not in known))


def _id_list(values: list[str] | str | None) -> list[str]:
    """``a,b`` and ``[a, b]`` alike, lower-cased (ids are matched without regard to case)."""
    items = [values] if isinstance(values, str) else [str(v) for v in values or []]
    return sorted({x.strip().lower() for v in items for x in v.split(",") if x.strip()})


def selected_log_matches(facts: Facts, selection: Selection) -> list[dict[str, Any]]:
    """The log matches of the problems the selection keeps (``--only``/``--skip`` name problem ids too)."""
    matches = facts.get("logs.matches") or []
    if selection.only:
        matches = [m for m in matches if m.get("playbook") in set(selection.only)]
    if selection.skip:
        matches = [m for m in matches if m.get("playbook") not in set(selection.skip)]
    return matches


CLUSTER_COMMAND = "cluster"


def analyze_cluster(facts: Facts, playbook_dirs: Sequence[str] | None = None,
                    settings: dict[str, Any] | None = None, source: dict[str, Any] | None = None,
                    only: Iterable[str] = (), skip_ids: Iterable[str] = ()) -> Report:
    """Judge a cluster snapshot (``doctor.collect.fleet``): each member whose own facts it holds is
    analysed as ``analyze`` would analyse its bundle, the cluster checks judge them side by side, and
    one report keeps every finding and diagnosis attributed to its member.

    A cluster diagnosis is made per member it names (its values then fill that member's fix).
    """
    from dataclasses import replace

    from doctor.model.fleet import snapshots

    merged_settings = {**(facts.get("settings") or {}), **(settings or {})}
    playbooks = load_playbooks(list(playbook_dirs or []))
    members = [s for s in snapshots(facts) if s.local]
    only, skip_ids = list(only), list(skip_ids)
    member_reports = {s.name: analyze(s.facts, command="analyze", profiles=FULL_PROFILES, playbook_dirs=playbook_dirs,
                                      settings=settings, only=only, skip_ids=skip_ids) for s in members}
    first = members[0] if members else None
    node = first.node if first else NodeView({}, None)
    fill = {**node.template_values(), "known_members": [s.name for s in snapshots(facts)]}
    ctx = CheckContext(facts=facts, node=node, settings=merged_settings)
    cluster_findings = run_checks(ctx, profiles=(CLUSTER_COMMAND,), only=only, skip_ids=skip_ids)
    cluster_findings = [replace(f, member=f.subject) if f.subject else f for f in cluster_findings]
    diagnoses: list[Diagnosis] = []
    about: list[str | None] = [*sorted({f.member for f in cluster_findings if f.member}), None]
    by_name = {s.name: s for s in members}
    for name in about:  # one diagnosis per member a cluster check names, then the cluster-wide ones
        own = [f for f in cluster_findings if f.member == name]
        # that member's own config fills its fix (its config path, its name) when its facts hold one
        values = {**fill, **by_name[name].node.template_values()} if name in by_name and by_name[name].has_config \
            else fill
        for d in diagnose(own, playbooks, values, []):
            diagnoses.append(replace(d, member=name) if name else d)
    findings = list(cluster_findings)
    resolved: list[Diagnosis] = []
    seen: dict[tuple[str, str], int] = {}  # one cluster-wide problem every member reports alike is one diagnosis
    for name, rep in member_reports.items():
        findings += [replace(f, member=name) for f in rep.findings]
        for d in rep.diagnoses:
            at = seen.get((d.id, d.summary))
            if at is None:
                seen[(d.id, d.summary)] = len(diagnoses)
                diagnoses.append(replace(d, member=name))
            else:
                diagnoses[at] = replace(diagnoses[at], member=f"{diagnoses[at].member}, {name}")
        resolved += [replace(d, member=name) for d in rep.resolved]
    current = [d for d in diagnoses if not d.resolved]
    verdict, code = verdict_of(findings, current)
    report = Report(command=CLUSTER_COMMAND, facts=facts, findings=findings, diagnoses=current, verdict=verdict,
                    exit_code=code, resolved=resolved, playbooks=playbooks, values=fill, source=source,
                    selection=Selection(only=only, skip=skip_ids))
    from doctor.views import build_views
    report.extra = build_views(facts, CLUSTER_COMMAND, report)
    return report
