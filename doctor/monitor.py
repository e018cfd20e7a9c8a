"""``pgdoctor monitor``: check_patroni's services over pgdoctor's own facts and report.

Each service reads what one collection already holds — this node's REST answers (``/patroni``,
``/cluster``, ``/config``), the DCS keys, the judged report — and turns it into metrics, judged by
Nagios ranges (``-w``/``-c``, ``@0:0``, through ``nagiosplugin.Range``) the way check_patroni 2.x
judges them: same service names, same metric names, same thresholds. The service ``pgdoctor`` is
the whole diagnosis. No service collects anything itself.

Where pgdoctor's facts differ from the endpoint check_patroni calls, the service says which fact
it reads (e.g. ``node_is_alive``: this node's REST ``/patroni`` answered, where check_patroni asks
``/liveness``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nagiosplugin

from doctor.errors import UsageError
from doctor.units import parse_size

if TYPE_CHECKING:
    from doctor.pipeline import Report

STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
REPLICA_ROLES = ("replica", "sync_standby", "quorum_standby")


class Unknown(Exception):
    """The facts a service needs are missing: UNKNOWN, with why."""


@dataclass
class Metric:
    name: str
    value: float | int
    warning: str | None = None
    critical: str | None = None
    uom: str = ""

    def state(self) -> int:
        if self.critical and not nagiosplugin.Range(self.critical).match(self.value):
            return 2
        if self.warning and not nagiosplugin.Range(self.warning).match(self.value):
            return 1
        return 0

    def violation(self) -> str | None:
        """Why the value alerts ("outside range 0:0"; critical before warning), as nagiosplugin says it."""
        for r in (self.critical, self.warning):
            if r and not nagiosplugin.Range(r).match(self.value):
                return nagiosplugin.Range(r).violation
        return None

    def perfdata(self) -> str:
        label = f"'{self.name}'" if any(c in self.name for c in " ='") else self.name
        text = f"{label}={self.value}{self.uom}"
        bounds = [str(nagiosplugin.Range(b)) if b else "" for b in (self.warning, self.critical)]
        while bounds and not bounds[-1]:
            bounds.pop()
        return text + "".join(f";{b}" for b in bounds)


@dataclass
class Args:
    """The service options, as check_patroni names them."""

    warning: str | None = None
    critical: str | None = None
    healthy_warning: str | None = None
    healthy_critical: str | None = None
    sync_warning: str | None = None
    sync_critical: str | None = None
    sync_type: str = "any"
    max_lag: str | None = None
    is_sync: bool = False
    is_async: bool = False
    is_standby_leader: bool = False
    config_hash: str | None = None
    timeline: str | None = None
    state_file: str | None = None
    save: bool = False
    patroni_version: str | None = None


@dataclass
class Outcome:
    service: str
    state: int
    summary: str
    metrics: list[Metric] = field(default_factory=list)

    def line(self) -> str:
        head = f"{self.service.replace('_', '').upper()} {STATES[self.state]} - {self.summary}"
        perf = " ".join(m.perfdata() for m in sorted(self.metrics, key=lambda m: m.name))
        return f"{head} | {perf}" if perf else head


# A service returns its metrics and its summaries (OK, problem); None = Nagios' default summary,
# "<metric> is <value>" or "<metric> is <value> (outside range <range>)" of the most significant metric.
ServiceFn = Callable[["Report", Args], tuple[list[Metric], "str | None", "str | None"]]
SERVICES: dict[str, ServiceFn] = {}


def service(name: str) -> Callable[[ServiceFn], ServiceFn]:
    def wrap(fn: ServiceFn) -> ServiceFn:
        SERVICES[name] = fn
        return fn
    return wrap


# ------------------------------------------------------------------------------ facts the services read

def _body(report: Report, path: str) -> Any:
    answer = report.facts.dict_at(path) or {}
    if answer.get("status") != 200:
        err = answer.get("error") or {}
        raise Unknown(f"Connection failed: {path.replace('patroni_api.', '/')} of this node "
                      f"({err.get('kind', 'HTTP ' + str(answer.get('status')))}: {err.get('message', '')})".rstrip(": )") + ")")
    return answer.get("body")


def cluster_body(report: Report) -> dict[str, Any]:
    body = _body(report, "patroni_api.cluster")
    if not isinstance(body, dict):
        raise Unknown("/cluster answered no JSON object")
    return body


def node_body(report: Report) -> dict[str, Any]:
    body = _body(report, "patroni_api.patroni")
    if not isinstance(body, dict):
        raise Unknown("/patroni answered no JSON object")
    return body


def detailed_states(report: Report) -> bool:
    """Patroni 3.0.4 and later report replicas as 'streaming' / 'in archive recovery'."""
    try:
        version = str(node_body(report).get("patroni", {}).get("version") or "0")
        parts = tuple(int(p) for p in version.split(".")[:3])
    except (Unknown, ValueError):
        return True
    return parts >= (3, 0, 4)


def _rate(name: str) -> str:
    return name.replace("'", "").replace(" ", "_")


def _lag_bytes(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--max-lag: {exc}") from None


# ------------------------------------------------------------------------------ cluster services

@service("cluster_node_count")
def cluster_node_count(report: Report, a: Args):
    members = cluster_body(report).get("members") or []
    detailed = detailed_states(report)
    healthy = 0
    roles: dict[str, int] = {}
    states: dict[str, int] = {}
    for m in members:
        role, state = str(m.get("role")), str(m.get("state"))
        roles[_rate(role)] = roles.get(_rate(role), 0) + 1
        states[_rate(state)] = states.get(_rate(state), 0) + 1
        if (role == "leader" and state == "running") or (
                role in ("standby_leader", *REPLICA_ROLES) and state == ("streaming" if detailed else "running")):
            healthy += 1
    metrics = [Metric("members", len(members), a.warning, a.critical),
               Metric("healthy_members", healthy, a.healthy_warning, a.healthy_critical)]
    metrics += [Metric(f"role_{r}", n) for r, n in roles.items()]
    metrics += [Metric(f"state_{s}", n) for s, n in states.items()]
    return metrics, None, None


@service("cluster_has_leader")
def cluster_has_leader(report: Report, a: Args):
    detailed = detailed_states(report)
    leader = standby = arc = False
    for m in cluster_body(report).get("members") or []:
        if m.get("role") == "leader" and m.get("state") == "running":
            leader = True
            break
        if m.get("role") == "standby_leader":
            if m.get("state") not in ("streaming", "in archive recovery") and (detailed or m.get("state") != "running"):
                continue
            arc = m.get("state") == "in archive recovery"
            standby = True
            break
    return ([Metric("has_leader", int(leader or standby), None, "@0:0"),
             Metric("is_standby_leader_in_arc_rec", int(arc), "@1:1", None),
             Metric("is_standby_leader", int(standby)), Metric("is_leader", int(leader))],
            "The cluster has a running leader.",
            "The cluster has no running leader or the standby leader is in archive recovery.")


@service("cluster_has_replica")
def cluster_has_replica(report: Report, a: Args):
    body = cluster_body(report)
    detailed = detailed_states(report)
    max_lag = _lag_bytes(a.max_lag)
    members = body.get("members") or []
    leader_tl = next((int(m["timeline"]) for m in members if m.get("role") in ("leader", "standby_leader")
                      and m.get("timeline") is not None), None)
    healthy = unhealthy = sync = 0
    per: list[Metric] = []
    for m in members:
        if m.get("role") not in REPLICA_ROLES:
            continue
        if m.get("lag") == "unknown" or m.get("lag") is None:
            unhealthy += 1
            continue
        is_sync = int(m.get("role") in ("sync_standby", "quorum_standby"))
        per += [Metric(f"{m['name']}_lag", int(m["lag"])), Metric(f"{m['name']}_timeline", int(m.get("timeline") or 0)),
                Metric(f"{m['name']}_sync", is_sync)]
        good_state = ("streaming", "in archive recovery") if detailed else ("running",)
        if m.get("state") not in good_state or m.get("timeline") is None or int(m["timeline"]) != leader_tl:
            unhealthy += 1
            continue
        if (a.sync_type in ("sync", "any") and m.get("role") == "sync_standby") or \
                (a.sync_type in ("quorum", "any") and m.get("role") == "quorum_standby"):
            sync += 1
        if max_lag is None or max_lag >= int(m["lag"]):
            healthy += 1
        else:
            unhealthy += 1
    metrics = [Metric("healthy_replica", healthy, a.warning, a.critical), Metric("sync_replica", sync, a.sync_warning, a.sync_critical), Metric("unhealthy_replica", unhealthy), *per]
    return metrics, None, None


def _remembered(a: Args, key: str, given: Any, new: Any) -> Any:
    """The value to compare with: the one given on the command line, or the one kept under ``key`` in the
    state file (check_patroni's cookie), which ``--save`` replaces with ``new``."""
    if a.state_file is None:
        return given
    with nagiosplugin.Cookie(a.state_file) as cookie:
        old = cookie.get(key)
        if a.save:
            cookie[key] = new
            cookie.commit()
    return old


@service("cluster_config_has_changed")
def cluster_config_has_changed(report: Report, a: Args):
    if (a.config_hash is None) == (a.state_file is None):
        raise UsageError("Either --hash or --state-file should be provided for this service")
    body = _body(report, "patroni_api.config")
    new = hashlib.md5(json.dumps(body).encode()).hexdigest()  # check_patroni's hash, so the two agree
    old = _remembered(a, "hash", a.config_hash, new)
    return ([Metric("is_configuration_changed", int(new != old), None, "@1:1")],
            f"The hash of patroni's dynamic configuration has not changed ({old}).",
            f"The hash of patroni's dynamic configuration has changed. The old hash was {old}.")


@service("cluster_is_in_maintenance")
def cluster_is_in_maintenance(report: Report, a: Args):
    paused = bool(cluster_body(report).get("pause"))
    return [Metric("is_in_maintenance", int(paused), None, "0:0")], None, None


@service("cluster_has_scheduled_action")
def cluster_has_scheduled_action(report: Report, a: Args):
    body = cluster_body(report)
    switchover = int("scheduled_switchover" in body)
    restarts = sum(1 for m in body.get("members") or [] if "scheduled_restart" in m)
    return ([Metric("has_scheduled_actions", int(switchover + restarts > 0), None, "0:0"),
             Metric("scheduled_switchover", switchover), Metric("scheduled_restart", restarts)], None, None)


# ------------------------------------------------------------------------------ node services

def _holds_lock(report: Report, body: dict[str, Any]) -> bool:
    me = report.facts.get("patroni_api.name") or (body.get("patroni") or {}).get("name")
    leader = report.facts.dcs_leader
    if leader is not None and me:
        return leader == me
    return not body.get("cluster_unlocked", False)


@service("node_is_primary")
def node_is_primary(report: Report, a: Args):
    body = node_body(report)
    ok = body.get("role") in ("primary", "master") and body.get("state") == "running" and _holds_lock(report, body)
    return ([Metric("is_primary", int(ok), None, "@0:0")], "This node is the primary with the leader lock.",
            "This node is not the primary with the leader lock.")


@service("node_is_leader")
def node_is_leader(report: Report, a: Args):
    body = node_body(report)
    roles = ("standby_leader",) if a.is_standby_leader else ("primary", "master", "standby_leader")
    ok = body.get("role") in roles and body.get("state") == "running" and _holds_lock(report, body)
    kind = "standby leader" if a.is_standby_leader else "leader"
    return [Metric("is_leader", int(ok), None, "@0:0")], f"This node is a {kind} node.", f"This node is not a {kind} node."


@service("node_is_replica")
def node_is_replica(report: Report, a: Args):
    if a.is_sync and a.max_lag is not None:
        raise UsageError("--is-sync and --max-lag cannot be provided at the same time for this service")
    if a.is_sync and a.is_async:
        raise UsageError("--is-sync and --is-async cannot be provided at the same time for this service")
    body = node_body(report)
    tags = body.get("tags") or {}
    ok = body.get("role") == "replica" and body.get("state") == "running" and not tags.get("noloadbalance")
    max_lag = _lag_bytes(a.max_lag)
    if ok and max_lag is not None:
        from doctor.model import model_of
        me = model_of(report.facts).member(report.facts.get("patroni_api.name"))
        lag = me.lag_bytes if me else None
        ok = lag is not None and lag <= max_lag
    sync = ("sync_standby" in body and a.sync_type in ("sync", "any")) or \
        ("quorum_standby" in body and a.sync_type in ("quorum", "any"))
    if a.is_sync:
        ok = ok and sync
    elif a.is_async:
        ok = ok and "sync_standby" not in body and "quorum_standby" not in body
    kind = (f"synchronous replica of kind '{a.sync_type}'" if a.is_sync else
            "asynchronous replica" if a.is_async else "replica")
    lag = f" and the lag is under {a.max_lag}" if a.max_lag else ""
    return ([Metric("is_replica", int(ok), None, "@0:0")],
            f"This node is a running {kind} with no noloadbalance tag{lag}.",
            f"This node is not a running {kind} with no noloadbalance tag{lag.replace('the lag is under', 'a lag under')}.")


@service("node_is_alive")
def node_is_alive(report: Report, a: Args):
    answer = report.facts.dict_at("patroni_api.patroni") or {}
    alive = answer.get("status") == 200
    return ([Metric("is_alive", int(alive), None, "@0:0")], "This node is alive (patroni is running).",
            "This node is not alive (patroni is not running).")


@service("node_is_pending_restart")
def node_is_pending_restart(report: Report, a: Args):
    pending = bool(node_body(report).get("pending_restart"))
    return ([Metric("is_pending_restart", int(pending), None, "0:0")],
            "This node doesn't have the pending restart flag.", "This node has the pending restart flag.")


@service("node_tl_has_changed")
def node_tl_has_changed(report: Report, a: Args):
    if (a.timeline is None) == (a.state_file is None):
        raise UsageError("Either --timeline or --state-file should be provided for this service")
    new = node_body(report).get("timeline")
    if new is None:
        raise Unknown("/patroni reports no timeline")
    old = _remembered(a, "timeline", a.timeline, new)
    return ([Metric("is_timeline_changed", int(str(new) != str(old)), None, "@1:1"), Metric("timeline", int(new))],
            f"The timeline is still {old}.", f"The expected timeline was {old} got {new}.")


@service("node_patroni_version")
def node_patroni_version(report: Report, a: Args):
    if not a.patroni_version:
        raise UsageError("--patroni-version is required for this service")
    version = (node_body(report).get("patroni") or {}).get("version")
    return ([Metric("is_version_ok", int(version == a.patroni_version), None, "@0:0")],
            f"Patroni's version is {a.patroni_version}.", f"Patroni's version is not {a.patroni_version} ({version}).")


# ------------------------------------------------------------------------------ the whole diagnosis

@service("pgdoctor")
def whole_diagnosis(report: Report, a: Args):
    d = report.as_dict()
    counts = d["counts"]
    by_sev: dict[str, int] = {}
    for x in report.diagnoses:
        by_sev[x.severity] = by_sev.get(x.severity, 0) + 1
    metrics = [Metric("diagnoses", len(report.diagnoses), a.warning, a.critical)]
    metrics += [Metric(f"checks_{s}", counts.get(s, 0)) for s in ("ok", "warn", "fail", "skip", "error")]
    metrics += [Metric(f"diagnoses_{s}", by_sev.get(s, 0)) for s in ("critical", "error", "warning", "info")]
    names = "; ".join(f"{x.id}: {x.summary}" for x in report.diagnoses[:3])
    return metrics, "no problem found", f"{len(report.diagnoses)} problem(s): {names}"


def state_of_report(report: Report) -> int:
    return {0: 0, 1: 1, 2: 2}.get(report.exit_code, 3)


def evaluate(name: str, report: Report, args: Args) -> Outcome:
    """One service's outcome: the worst state of its metrics (or the diagnosis' verdict for ``pgdoctor``)."""
    fn = SERVICES.get(name)
    if fn is None:
        raise UsageError(f"unknown service {name!r}; services: {', '.join(sorted(SERVICES))}")
    try:
        metrics, ok_text, problem_text = fn(report, args)
    except Unknown as exc:
        return Outcome(name, 3, str(exc))
    state = max((m.state() for m in metrics), default=0)
    if name == "pgdoctor":
        state = max(state, state_of_report(report))
    text = ok_text if state == 0 else problem_text
    if text is None:
        worst = next((m for m in metrics if m.state() == state), metrics[0])
        text = f"{worst.name} is {worst.value}{worst.uom}"
        if worst.violation():
            text += f" ({worst.violation()})"
    return Outcome(name, state, text, metrics)
