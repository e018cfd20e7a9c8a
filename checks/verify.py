"""``pgdoctor verify``: the after-bootstrap (and every-day) checklist, one check per item.

The items a DBA ticks after building a Patroni cluster: every member listed (one Leader, the rest
Replicas), one timeline, no lag, test data reaching every node (a real WAL round trip, see
``doctor.collect.roundtrip``), every REST API answering, etcd healthy. Patroni's autostart is
``checks/autostart.py``, split brain ``checks/splitbrain.py``; the ``verify`` view orders them.
"""

from __future__ import annotations

from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn
from doctor.model import model_of
from doctor.model.members import Member, sync_names
from doctor.units import human_bytes

MIB = 1024 * 1024
LEADER_ROLES = ("Leader", "Standby Leader")
REPLICA_ROLES = ("Replica", "Sync Standby", "Quorum Standby")


def expected_members(ctx: CheckContext) -> tuple[list[str], int, str]:
    """The members this cluster should have: (names known, how many, where that number came from).

    ``--expect-members`` wins; else every name the config and the DCS give: this node, the member
    keys, the members whose slots the leader retains (``/status`` ``retain_slots``: members that
    left recently), and ``/sync``."""
    names = {m["name"] for m in ctx.facts.dcs_members}
    if ctx.node.name:
        names.add(ctx.node.name)
    names |= {str(n) for n in (ctx.facts.get("dcs.status.retain_slots") or []) if isinstance(n, str)}
    names |= sync_names(ctx.facts)
    given = ctx.settings.get("expect_members")
    if given:
        return sorted(names), int(given), "--expect-members"
    return sorted(names), len(names), "the config, the member keys, /status retain_slots and /sync"


def healthy_replica(m: Member) -> bool:
    return m.role in REPLICA_ROLES and m.state in ("streaming", "running")


@check("verify.members", "all members listed: 1 Leader, the rest Replicas", "patroni-not-running",
       profiles=("verify",), needs=("dcs",))
def members_listed(ctx: CheckContext) -> Verdict:
    if not ctx.facts.dcs_keys_read:
        return skip("the DCS keys could not be read, so there is no member list to compare")
    rows = [m for m in model_of(ctx.facts).members if m.in_dcs]
    names, want, source = expected_members(ctx)
    leaders = [m for m in rows if m.role in LEADER_ROLES]
    good = [m for m in rows if healthy_replica(m)]
    others = [m for m in rows if m not in leaders and m not in good]
    missing = [n for n in names if n not in {m.name for m in rows}]
    table = [f"{m.name}: {m.role}, {m.state or '?'}, TL {m.timeline if m.timeline is not None else '?'}"
             for m in rows]
    shown = f"{len(rows)} members: {len(leaders)} Leader, {len(good)} Replica" + ("s" if len(good) != 1 else "") \
        + (f", {len(others)} other ({', '.join(f'{m.name} {m.role}/{m.state}' for m in others)})" if others else "")
    values: dict[str, Any] = {"expected": want, "listed": len(rows), "missing": missing}
    evidence = table + [f"expected {want} members (from {source})"] + [f"{n}: no member key" for n in missing]
    if not leaders:
        return fail(f"patronictl list shows {shown}: no Leader", evidence=evidence, values=values, playbook="no-leader")
    if len(rows) == want and len(leaders) == 1 and len(good) == want - 1:
        return ok(f"patronictl list shows all {want} members: 1 Leader, {len(good)} Replica"
                  + ("s" if len(good) != 1 else "") + " streaming", evidence=table)
    bad = missing + [m.name for m in others]
    values.update(name=bad[0] if bad else None, member=bad[0] if bad else None)
    rogue = [m.name for m in others if m.live_role == "primary"]
    return fail(f"patronictl list shows {shown}; expected {want}"
                + (f"; missing: {', '.join(missing)}" if missing else ""), evidence=evidence, values=values,
                subject=",".join(bad) or None, playbook="split-brain" if rogue else None)


@check("verify.timeline", "all members on the same timeline", "timeline-diverged", profiles=("verify",),
       needs=("dcs",))
def same_timeline(ctx: CheckContext) -> Verdict:
    model = model_of(ctx.facts)
    rows = [m for m in model.members if m.timeline is not None]
    if not rows:
        return skip("no member reported its timeline")
    leader = model.member(model.writable_leader)
    ref = leader.timeline if leader and leader.timeline is not None else max(m.timeline for m in rows)
    off = [m for m in rows if m.timeline != ref]
    evidence = [f"{m.name}: timeline {m.timeline}" for m in rows]
    if off:
        return fail(f"{', '.join(f'{m.name} is on timeline {m.timeline}' for m in off)}; the leader "
                    f"{leader.name if leader else '?'} is on timeline {ref}", evidence=evidence,
                    values={"member": off[0].name, "member_timeline": off[0].timeline, "leader_timeline": ref,
                            "leader": leader.name if leader else None}, subject=off[0].name)
    return ok(f"all {len(rows)} members on timeline {ref}", evidence=evidence)


@check("verify.lag", "replication lag 0 MB", "replication-lag", profiles=("verify",), needs=("dcs",))
def lag_zero(ctx: CheckContext) -> Verdict:
    """Lag as ``patronictl list`` shows it (MB, rounded): 0 MB on every replica. ``--max-lag-bytes``
    sets another limit; past ``maximum_lag_on_failover`` it is a failure (the replica cannot take over)."""
    model = model_of(ctx.facts)
    reps = [m for m in model.members if m.name != model.writable_leader and m.role != "Leader"]
    if not reps:
        return skip("no replica to measure")
    limit = ctx.settings.get("max_lag_bytes")
    failover_limit = int((ctx.facts.dcs_config or {}).get("maximum_lag_on_failover") or MIB)
    evidence, over, unknown, too_far = [], [], [], []
    for m in reps:
        lag = max((x for x in (m.lag_bytes, m.replay_lag_bytes) if x is not None), default=None)
        if lag is None:
            unknown.append(m.name)
            evidence.append(f"{m.name}: lag unknown ({m.state or 'no state'})")
            continue
        evidence.append(f"{m.name}: {round(lag / MIB)} MB ({lag} bytes behind the leader's last position)")
        if (lag > limit) if limit is not None else round(lag / MIB) > 0:
            over.append((m.name, lag))
        if lag > failover_limit:
            too_far.append(m.name)
    bound = f"more than {human_bytes(limit)}" if limit is not None else "more than 0 MB"
    values: dict[str, Any] = {"maximum_lag_on_failover": failover_limit}
    if over:
        values.update(member=over[0][0], lag_bytes=over[0][1], lag_human=human_bytes(over[0][1]))
    if unknown or too_far:
        names = unknown + [n for n in too_far if n not in unknown]
        values.setdefault("member", names[0])
        return fail(f"lag {'unknown on ' + ', '.join(unknown) if unknown else ''}"
                    f"{'; ' if unknown and too_far else ''}"
                    f"{', '.join(too_far) + ' past maximum_lag_on_failover ' + human_bytes(failover_limit) if too_far else ''}",
                    evidence=evidence, values=values, subject=names[0])
    if over:
        return warn(f"{', '.join(f'{n} lags {human_bytes(b)}' for n, b in over)} ({bound})", evidence=evidence,
                    values=values, subject=over[0][0])
    return ok(f"lag 0 MB on every replica ({', '.join(m.name for m in reps)})", evidence=evidence)


@check("verify.round-trip", "test data replicates to all nodes (WAL round trip)", "replication-round-trip",
       profiles=("verify",), needs=("roundtrip",), errors_ok=True)
def round_trip(ctx: CheckContext) -> Verdict:
    rt = ctx.facts.dict_at("roundtrip") or {}
    if rt.get("skipped"):
        return skip(str(rt["skipped"]))
    err = rt.get("error")
    if err:
        return fail(f"no round trip: {err.get('kind')}: {err.get('message')}", evidence=[str(err.get("message"))],
                    values={"leader": rt.get("leader")})
    marker = rt.get("marker") or {}
    replicas = rt.get("replicas") or {}
    if not replicas:
        return warn(f"wrote {marker.get('lsn')} on {rt.get('leader')}, but there is no replica to receive it",
                    values={"leader": rt.get("leader")})
    timeout = rt.get("timeout_seconds")
    evidence = [f"{rt.get('leader')}: wrote {marker.get('method')} record at {marker.get('lsn')}"]
    late = []
    for name, r in sorted(replicas.items()):
        if r.get("arrived"):
            evidence.append(f"{name}: replayed past it in {r.get('ms')} ms (replay LSN {r.get('replay_lsn')})")
        else:
            late.append(name)
            why = (f"unreachable: {r['error'].get('message')}" if r.get("reachable") is False else
                   "not in recovery" if r.get("not_in_recovery") else
                   f"replay paused at {r.get('replay_lsn')}" if r.get("replay_paused") else
                   f"replay LSN still {r.get('replay_lsn')}")
            evidence.append(f"{name}: not replayed within {timeout} s ({why})")
    acks = rt.get("sync_acks") or {}
    unacked = [n for n, a in acks.items() if not a.get("acknowledged")]
    for n, a in sorted(acks.items()):
        evidence.append(f"{n} ({a.get('sync_state')} standby): " + (f"acknowledged (flushed) in {a.get('ms')} ms"
                                                                    if a.get("acknowledged") else "no acknowledgement"))
    values = {"leader": rt.get("leader"), "member": (late or unacked or [None])[0], "timeout": timeout}
    if late or unacked:
        return fail(f"the round trip did not reach {', '.join(late or unacked)} within {timeout} s"
                    + (f"; synchronous standby {', '.join(unacked)} did not acknowledge it" if unacked and late else ""),
                    evidence=evidence, values=values, subject=(late or unacked)[0])
    slowest = max(r.get("ms") or 0 for r in replicas.values())
    return ok(f"a WAL record written on {rt.get('leader')} was replayed on all {len(replicas)} replicas "
              f"(slowest {slowest} ms" + (f"; {len(acks)} synchronous standby acknowledged" if acks else "") + ")",
              evidence=evidence)


@check("verify.rest-api", "REST API responding on all nodes", "rest-api-unreachable", profiles=("verify",),
       needs=("patroni_api",), errors_ok=True)
def rest_api_all(ctx: CheckContext) -> Verdict:
    model = model_of(ctx.facts)
    names, _, _ = expected_members(ctx)
    answers = ctx.facts.rest_answers
    rows = {m.name: m for m in model.members}
    evidence, silent = [], []
    for n in sorted(set(names) | set(answers)):
        a = answers.get(n)
        if isinstance(a, dict) and a.get("status") == 200:
            evidence.append(f"{n}: {a.get('url')} answered 200 in {a.get('latency_ms')} ms")
            continue
        silent.append(n)
        why = ((a.get("error") or {}).get("message") or f"HTTP {a.get('status')}") if isinstance(a, dict) \
            else "no API URL known (no member key)"
        evidence.append(f"{n}: {why}")
    if silent:
        m = rows.get(silent[0])
        return fail(f"the REST API of {', '.join(silent)} does not answer", evidence=evidence, subject=silent[0],
                    values={"member": silent[0], "member_api_url": m.api_url if m else None})
    return ok(f"the REST API answers on all {len(evidence)} members", evidence=evidence)


@check("verify.etcd", "etcd cluster healthy", "dcs-unreachable", profiles=("verify",), needs=("dcs",), errors_ok=True)
def etcd_healthy(ctx: CheckContext) -> Verdict:
    err = ctx.facts.error_of("dcs")
    if err:
        return fail(f"etcd could not be read: {err.get('kind')}: {err.get('message')}")
    eps = ctx.facts.dicts_at("dcs.endpoints")
    q = ctx.facts.dict_at("dcs.quorum") or {}
    evidence = [f"{e.get('url')}: " + (f"healthy, etcd {e.get('version')}, {e.get('latency_ms')} ms" if e.get("health")
                                      else f"{(e.get('error') or {}).get('message') or 'unhealthy'}") for e in eps]
    down = [str(e.get("url")) for e in eps if not e.get("health")]
    if q:
        evidence.append(f"quorum: {q.get('healthy')} of {q.get('total')} members healthy, {q.get('needed')} needed")
    values = {"down_endpoints": ", ".join(down), "total": q.get("total"), "needed": q.get("needed")}
    if q and not q.get("has_quorum"):
        return fail(f"etcd has no quorum: {q.get('healthy')} of {q.get('total')} healthy, {q.get('needed')} needed",
                    evidence=evidence, values=values)
    unhealthy = (q.get("total") or 0) - (q.get("healthy") or 0) if q else 0
    if down or unhealthy > 0:
        return fail(f"etcd is degraded: {', '.join(down) or f'{unhealthy} member(s)'} unhealthy; quorum holds "
                    f"({q.get('healthy')} of {q.get('total')})", evidence=evidence, values=values)
    if not eps:
        return skip("no etcd endpoint was probed")
    return ok(f"etcd healthy: {q.get('healthy', len(eps))} of {q.get('total', len(eps))} members, "
              f"{len(eps)} endpoints answer", evidence=evidence)
