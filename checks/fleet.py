"""Cluster-wide checks: what only several members' facts side by side show (profile ``cluster``).

They judge a cluster snapshot (``doctor.model.fleet``): config drift between the members' patroni.yml,
``bootstrap.dcs`` that differs between files, local ``postgresql.parameters`` against the dynamic
configuration, version skew and clock skew. Each verdict names the member it is about (``subject``).
A value a member's facts do not hold (its local config under ``run --cluster``) is said to be unseen,
never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from doctor.engine import CheckContext, Verdict, check, ok, skip, warn
from doctor.model.fleet import Snapshot, shown, snapshots, split

PROFILES = ("cluster",)
ANSIBLE_HINT = "contrib/ansible's collect.yml gathers every member's own facts"
DEFAULT_CLOCK_SKEW = 60.0  # seconds between bundles' collection times before the timeline is suspect

# The patroni.yml values that must be the same on every member: (label, reader, status when they differ).
IDENTITY: tuple[tuple[str, Callable[[Snapshot], Any], str], ...] = (
    ("scope", lambda s: s.node.scope, "fail"),
    ("namespace", lambda s: s.node.namespace, "fail"),
    ("DCS hosts", lambda s: sorted(s.node.etcd_endpoints), "warn"),
    ("superuser name", lambda s: s.node.superuser, "fail"),
    ("replication user name", lambda s: s.node.replication_user, "fail"),
    ("rewind user name", lambda s: s.node.get("postgresql", "authentication", "rewind", "username"), "fail"),
)


def _with_config(ctx: CheckContext) -> tuple[list[Snapshot], list[str]]:
    """Members whose own patroni.yml is in the facts, and the names of those whose is not."""
    snaps = snapshots(ctx.facts)
    return [s for s in snaps if s.has_config], [s.name for s in snaps if not s.has_config]


def _unseen(names: list[str]) -> str:
    return f"; not seen: the local config of {', '.join(names)} ({ANSIBLE_HINT})" if names else ""


def _odd_verdicts(label: str, values: dict[str, Any], status: str, where: str) -> Iterator[Verdict]:
    """One verdict per member whose value differs from the one most members share."""
    parts = split(values)
    for name, value in parts.odd.items():
        others = ", ".join(f"{n}: {shown(v)}" for n, v in values.items() if n != name)
        against = (f"the others differ too ({others})" if parts.tied
                   else f"the other members have {shown(parts.common)}")
        yield Verdict(status, f"{label} differs on {name}: {shown(value)} in its {where}, {against}",
                      evidence=[f"{n}'s {where}: {label} = {shown(v)}" for n, v in values.items()],
                      values={"member": name, "setting": label, "member_value": shown(value),
                              "cluster_value": None if parts.tied else shown(parts.common)},
                      subject=name)


@check("fleet.config-drift", "the members' patroni.yml agree on the cluster's identity", "config-drift",
       profiles=PROFILES, needs=("cluster.members",))
def config_drift(ctx: CheckContext) -> Iterator[Verdict]:
    # members whose GET /config differ read other DCS keys: seen from their REST APIs alone (run --cluster)
    dynamic = {s.name: s.dcs_config for s in snapshots(ctx.facts) if s.dcs_config is not None}
    found = False
    for v in _odd_verdicts("the dynamic configuration (GET /config)", dynamic, "fail", "REST API"):
        found = True
        yield v
    seen, unseen = _with_config(ctx)
    if len(seen) < 2:
        if not found:
            yield skip(f"fewer than two members' patroni.yml to compare{_unseen(unseen)}")
        return
    for label, read, status in IDENTITY:
        for v in _odd_verdicts(label, {s.name: read(s) for s in seen}, status, "patroni.yml"):
            found = True
            yield v
    if not found:
        yield ok(f"scope, namespace, DCS hosts and user names agree in {', '.join(s.name for s in seen)}"
                 f"{_unseen(unseen)}")


@check("fleet.bootstrap-dcs", "bootstrap.dcs is the same in every patroni.yml", "bootstrap-dcs-drift",
       profiles=PROFILES, needs=("cluster.members",))
def bootstrap_dcs(ctx: CheckContext) -> Iterator[Verdict]:
    seen, unseen = _with_config(ctx)
    if len(seen) < 2:
        yield skip(f"fewer than two members' patroni.yml to compare{_unseen(unseen)}")
        return
    values = {s.name: s.node.get("bootstrap", "dcs") for s in seen}
    verdicts = list(_odd_verdicts("bootstrap.dcs", values, "warn", "patroni.yml"))
    yield from verdicts or [ok(f"bootstrap.dcs is the same in {', '.join(values)}{_unseen(unseen)}")]


@check("fleet.parameters", "local postgresql.parameters agree with the dynamic configuration",
       "parameter-drift", profiles=PROFILES, needs=("cluster.members",))
def parameters(ctx: CheckContext) -> Iterator[Verdict]:
    found = False
    seen, unseen = _with_config(ctx)
    for s in seen:
        dcs = s.dcs_config or {}
        dcs_params = (dcs.get("postgresql") or {}).get("parameters") if isinstance(dcs.get("postgresql"), dict) else None
        if not isinstance(dcs_params, dict):
            continue
        pending = s.patroni.get("pending_restart")
        for key, local in sorted(s.local_parameters.items()):
            if key in dcs_params and str(local) != str(dcs_params[key]):
                found = True
                yield warn(f"{s.name}'s patroni.yml sets {key} = {local}, the dynamic configuration "
                           f"{dcs_params[key]}", subject=s.name,
                           evidence=[f"{s.name}'s patroni.yml postgresql.parameters.{key} = {local}",
                                     f"{s.dcs_config_from}: postgresql.parameters.{key} = {dcs_params[key]}",
                                     f"{s.name}'s REST /patroni pending_restart: "
                                     + ("not read" if not s.patroni else str(bool(pending)).lower())],
                           values={"member": s.name, "parameter": key, "member_value": str(local),
                                   "cluster_value": str(dcs_params[key])})
    if not found:
        yield ok(f"no local postgresql.parameters of {', '.join(s.name for s in seen) or 'no member'} contradict "
                 f"the dynamic configuration{_unseen(unseen)}")


@check("fleet.versions", "every member runs the same Patroni, PostgreSQL and etcd", "version-skew",
       profiles=PROFILES, needs=("cluster.members",))
def versions(ctx: CheckContext) -> Iterator[Verdict]:
    snaps = snapshots(ctx.facts)
    found = False
    for program in ("Patroni", "PostgreSQL"):
        values = {s.name: s.versions[program] for s in snaps if program in s.versions}
        if program == "PostgreSQL":  # a minor release apart is an upgrade under way; a major one is not
            values = {n: v.split(".")[0] for n, v in values.items()}
        for v in _odd_verdicts(f"{program} {'major ' if program == 'PostgreSQL' else ''}version", values, "warn",
                               "REST /patroni or PostgreSQL"):
            found = True
            yield v
    etcd: dict[str, str] = {}
    for s in snaps:
        etcd.update(s.etcd_versions)
    for v in _odd_verdicts("etcd version", etcd, "warn", "etcd status"):
        found = True
        v.subject = None  # an etcd endpoint, not a Patroni member: a cluster-wide diagnosis (values name it)
        yield v
    if not found:
        told = {p: sorted({s.versions[p] for s in snaps if p in s.versions}) for p in ("Patroni", "PostgreSQL")}
        yield ok(f"Patroni {shown(told['Patroni'])}, PostgreSQL {shown(told['PostgreSQL'])}, etcd "
                 f"{shown(sorted(set(etcd.values())))} on every member that told")


@check("fleet.clock", "the members' snapshots were taken at the same time", "clock-skew",
       profiles=PROFILES, needs=("cluster.members",))
def clock(ctx: CheckContext) -> Verdict:
    snaps = [s for s in snapshots(ctx.facts) if s.local and s.collected_at is not None]
    if len(snaps) < 2:
        return skip("fewer than two members' own snapshots with a collection time")
    limit = float(ctx.settings.get("clock_skew_seconds", DEFAULT_CLOCK_SKEW))
    times = sorted((s.collected_at, s.name) for s in snaps if s.collected_at)
    median = times[len(times) // 2][0]
    far = max(times, key=lambda t: abs((t[0] - median).total_seconds()))
    spread = (times[-1][0] - times[0][0]).total_seconds()
    evidence = [f"{name}'s snapshot collected_at {t.isoformat(timespec='seconds')}" for t, name in times]
    if spread <= limit:
        return ok(f"collected within {spread:.0f}s of each other (at most {limit:.0f}s)", evidence=evidence)
    off = (far[0] - median).total_seconds()
    return warn(f"{far[1]}'s snapshot was taken {abs(off):.0f}s {'after' if off > 0 else 'before'} the others' "
                f"(spread {spread:.0f}s, more than {limit:.0f}s): its clock is off or it was collected apart, "
                "so the merged timeline cannot order its lines against the others'",
                evidence=evidence, subject=far[1],
                values={"member": far[1], "skew_seconds": round(abs(off)), "spread_seconds": round(spread)})
