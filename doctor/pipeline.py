"""collect -> facts -> checks -> findings -> diagnosis: the one path every command takes.

``run`` = collect + analyze; ``bundle`` = collect + save; ``analyze`` = load + analyze.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from doctor import __version__
from doctor.collect import CollectContext, CollectOptions, run_collectors
from doctor.collect.config import apply_env_overrides, discover_config_path, load_config, require_patroni_config
from doctor.collect.deadline import Deadline
from doctor.config_schema import Host as SchemaHost
from doctor.config_schema import config_problems
from doctor.engine import CheckContext, Diagnosis, Finding, diagnose, run_checks, verdict_of
from doctor.facts import FACTS_VERSION, Facts
from doctor.node import NodeView
from doctor.playbooks import load_playbooks
from doctor.redact import Redactor, collect_secrets

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
    extra: dict[str, Any] = field(default_factory=dict)
    resolved: list[Diagnosis] = field(default_factory=list)  # seen in the logs, over now

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
            "node": {"name": node.name, "scope": node.scope, "namespace": node.namespace,
                     "config_path": f.get("config.path"), "host": f.get("host"), "data_dir": node.data_dir},
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "counts": counts,
            "diagnoses": [d.as_dict() for d in self.diagnoses],
            "resolved": [d.as_dict() for d in self.resolved],
            "findings": [x.as_dict() for x in self.findings],
        }
        out.update(self.extra)
        return out


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
            redactor: Redactor | None = None, deadline: Deadline | None = None) -> tuple[Facts, CollectContext]:
    """Gather every domain of facts for this node, concurrently, within the ``collect`` share of ``deadline``
    (by default the command's budget made from ``options.timeout``)."""
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
    return facts, ctx


def node_values(facts: Facts, node: NodeView) -> dict[str, Any]:
    """What playbook fixes may use: the config's values plus what the facts say of this node's data dir."""
    values = node.template_values()
    datadir = facts.get("system.datadir") or {}
    values["data_dir_exists"] = bool(datadir.get("exists"))
    values["data_dir_entries"] = int(datadir.get("entry_count") or 0)
    values["data_dir_initialised"] = bool(datadir.get("has_pg_version"))
    return values




def analyze(facts: Facts, command: str = "run", profiles: Iterable[str] = ("run",), only: Iterable[str] = (),
            skip_ids: Iterable[str] = (), playbook_dirs: list[str] | None = None,
            settings: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> Report:
    """Judge a snapshot: run the checks, merge findings and log matches into diagnoses.

    ``values`` are extra playbook template values (e.g. ``command`` so that a fix can say "start"
    before the first start rather than "restart").
    """
    merged_settings = dict(facts.get("settings") or {})
    merged_settings.update(settings or {})
    node = NodeView(facts.get("config.data") or {}, facts.get("config.path"),
                    pg_user=facts.get("system.pg_user.name") or "postgres")
    ctx = CheckContext(facts=facts, node=node, settings=merged_settings)
    findings = run_checks(ctx, profiles=profiles, only=only, skip_ids=skip_ids)
    playbooks = load_playbooks(playbook_dirs)
    log_matches = facts.get("logs.matches") or []
    only_set = {o for o in only if o}
    skip_set = {s for s in skip_ids if s}
    if only_set:
        log_matches = [m for m in log_matches if m.get("playbook") in only_set]
    if skip_set:
        log_matches = [m for m in log_matches if m.get("playbook") not in skip_set]
    from doctor.engine import RECENT_LOG_SECONDS
    diagnoses = diagnose(findings, playbooks, {**node_values(facts, node), **(values or {})}, log_matches,
                         recent_seconds=float(merged_settings.get("log_recent_seconds", RECENT_LOG_SECONDS)))
    resolved = [d for d in diagnoses if d.resolved]
    diagnoses = [d for d in diagnoses if not d.resolved]
    verdict, code = verdict_of(findings, diagnoses)
    from doctor.views import build_views
    return Report(command=command, facts=facts, findings=findings, diagnoses=diagnoses, verdict=verdict,
                  exit_code=code, extra=build_views(facts, command), resolved=resolved)
