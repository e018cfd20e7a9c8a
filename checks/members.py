"""Member states: replicas whose PostgreSQL is down, a leader key held over a PostgreSQL that does
not run, a standby leader that does not replicate, pending restarts, scheduled switchovers and
restarts, and fewer members than the cluster should have.

The judgement is in doctor/model/health.py and the states' meanings in doctor/model/member_states.py;
these checks turn them into verdicts with the values the playbooks' fixes need.
"""

from __future__ import annotations

from doctor.checks._gates import dcs_keys
from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn
from doctor.model import model_of

PROFILES = ("run", "replication")




def _paused(ctx: CheckContext) -> bool:
    return model_of(ctx.facts).replication.settings.pause


@check("cluster.member-down", "every member's PostgreSQL runs", "member-down", profiles=PROFILES,
       needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def member_down(ctx: CheckContext) -> list[Verdict] | Verdict:
    model = model_of(ctx.facts)
    down = model.down_members
    if not down:
        states = ", ".join(f"{m.name} {m.pg_state or '?'}" for m in model.members if m.in_dcs) or "none"
        return ok(f"no member's PostgreSQL is stopped or failed ({states})")
    rep = model.replication
    lead = rep.leader_row()
    up = [r.name for r in rep.replicas() if r.failover and r.failover.candidate]
    sync_on = rep.settings.synchronous_mode != "off"
    no_candidate = lead is not None and not up
    sync_emptied = sync_on and rep.writes.status in ("blocked", "unprotected")
    paused = rep.settings.pause
    out: list[Verdict] = []
    for d in down:
        consequences = []
        if no_candidate:
            consequences.append(f"no failover candidate is left: if {lead.name} fails, Patroni promotes nobody")
        if sync_emptied:
            consequences.append(f"synchronous replication has no standby left: writes {rep.writes.text}")
        if not consequences:
            consequences.append("failover candidates left: " + (", ".join(up) or "none"))
        summary = (f"{d.name}'s PostgreSQL is '{d.state}' ({d.meaning})"
                   + (f" while {lead.name} leads" if lead else "") + "; " + "; ".join(consequences)
                   + ("; the cluster is paused, so Patroni will not start it" if paused and d.state == "stopped" else ""))
        values = {"member": d.name, "member_state": d.state, "state_kind": d.kind, "paused": paused,
                  "leader": lead.name if lead else None, "member_host": d.host, "member_port": d.port,
                  "member_psql": ctx.node.psql(d.host, d.port), "no_candidate": no_candidate,
                  "sync_emptied": sync_emptied, "is_here": d.name == ctx.node.name,
                  "member_log_dir": ctx.facts.get("logs.found.postgres_log_dir") if d.name == ctx.node.name else None}
        status = fail if (no_candidate or sync_emptied) else warn
        out.append(status(summary, evidence=[*d.evidence, f"failover candidates now: {', '.join(up) or 'none'}", f"writes: {rep.writes.text}"],
                          values=values, subject=d.name))
    return out


@check("cluster.leader-postgres", "the leader's PostgreSQL runs and accepts writes", "leader-postgres-down",
       profiles=PROFILES, needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def leader_postgres(ctx: CheckContext) -> Verdict:
    model = model_of(ctx.facts)
    lp = model.leader_postgres
    if lp is None:
        return skip("no member holds the leader key (see no-leader), or the keys may be stale (see dcs-unreachable)")
    if not lp.down:
        return ok(f"{lp.leader} holds the leader key and its PostgreSQL runs"
                  + (" and accepts connections" if lp.connection else ""), evidence=lp.evidence)
    m = model.member(lp.leader)
    best = [r.name for r in model.replication.replicas() if r.failover and r.failover.candidate]
    values = {"leader": lp.leader, "leader_state": lp.state, "state_kind": lp.state_kind, "paused": lp.paused,
              "standby": lp.standby, "accepts_connections": lp.connection, "candidate": best[0] if best else None,
              "leader_host": m.host if m else None, "leader_port": m.port if m else None,
              "leader_psql": ctx.node.psql(m.host if m else None, m.port if m else None),
              "is_here": lp.leader == ctx.node.name}
    what = "standby leader" if lp.standby else "leader"
    return fail(f"{lp.leader} holds the {what} key but {lp.why}: no write is acknowledged in cluster "
                f"{ctx.node.scope or ctx.facts.get('config.data.scope')}"
                + ("; the cluster is paused, so Patroni neither restarts it nor fails over" if lp.paused else
                   f"; Patroni still reports it '{lp.state}', so it neither restarts it nor hands the key over"
                   if lp.state_kind == "up" else
                   "; Patroni tries to start it and keeps the key until primary_start_timeout runs out"),
                evidence=lp.evidence, values=values, subject=lp.leader)


@check("cluster.standby-leader", "a standby cluster's leader replicates from its source",
       "standby-leader-not-streaming", profiles=PROFILES, needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def standby_leader(ctx: CheckContext) -> Verdict:
    sl = model_of(ctx.facts).standby_leader
    if sl is None:
        return ok("not a standby cluster, or its leader's PostgreSQL is not running (see leader-postgres-down)")
    values = {"leader": sl.leader, "source_host": sl.source.get("host"), "source_port": sl.source.get("port") or 5432,
              "restore_command": bool(sl.source.get("restore_command")), "how": sl.how,
              "primary_slot_name": sl.source.get("primary_slot_name")}
    if sl.streaming:
        return ok(f"standby leader {sl.leader} {sl.how}", evidence=sl.evidence)
    if sl.streaming is None:
        return skip(f"standby leader {sl.leader}: {sl.how}, and its PostgreSQL was not queried", evidence=sl.evidence)
    return warn(f"standby leader {sl.leader} is not replicating from its source: {sl.how}; the standby cluster falls "
                "behind the primary cluster", evidence=sl.evidence, values=values, subject=sl.leader)


@check("cluster.pending-restart", "no member waits for a restart to apply a parameter", "pending-restart",
       profiles=PROFILES, needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def pending_restart(ctx: CheckContext) -> Verdict:
    model = model_of(ctx.facts)
    pending = model.pending_restarts
    if not pending:
        return ok("no member has a pending restart")
    names = [p.member for p in pending]
    leader = model.writable_leader
    params = sorted({k for p in pending for k in p.parameters})
    parts = [f"{p.member} ({', '.join(f'{k} {v}' for k, v in p.parameters.items()) or 'parameters not published'})"
             for p in pending]
    return warn(f"PostgreSQL waits for a restart to apply changed parameters on {', '.join(parts)}; until then "
                "the running value stays in effect", evidence=[e for p in pending for e in p.evidence],
                values={"members": names, "members_text": " ".join(names), "parameters": params,
                        "parameters_text": ", ".join(params) or "unknown",
                        "leader_pending": leader in names, "leader": leader,
                        "replicas_pending": " ".join(n for n in names if n != leader)},
                subject=", ".join(names))


@check("cluster.scheduled-action", "scheduled switchovers and restarts", "scheduled-action", profiles=PROFILES,
       needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def scheduled_action(ctx: CheckContext) -> list[Verdict] | Verdict:
    model = model_of(ctx.facts)
    actions = model.scheduled_actions
    if not actions:
        return ok("no switchover or restart is scheduled")
    paused = model.replication.settings.pause
    out: list[Verdict] = []
    late = [a for a in actions if a.overdue_seconds is not None and a.overdue_seconds > 60]
    for a in late:
        out.append(warn(f"{a.text()}, but it has not happened {a.overdue_seconds:.0f} s after its time"
                        + ("; the cluster is paused, and Patroni runs no scheduled action while paused" if paused else
                           "; Patroni should have run it or dropped it: its HA loop may be stuck"),
                        evidence=[f"{a.source}: {a.at}", f"facts collected at {ctx.facts.get('collected_at')}"],
                        values={"action": a.kind, "at": a.at, "member": a.member, "from_member": a.from_member,
                                "paused": paused, "overdue_seconds": round(a.overdue_seconds)},
                        subject=a.member or a.kind))
    pending = [a for a in actions if a not in late]
    if pending:
        out.append(ok("; ".join(a.text() for a in pending) + " (from " + "; ".join(a.source for a in pending) + ")",
                      evidence=[f"{a.source}: {a.at}" for a in pending]))
    return out


@check("cluster.member-count", "the cluster has the members it should", "member-count", profiles=PROFILES,
       needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def member_count(ctx: CheckContext) -> Verdict:
    expect = ctx.settings.get("expect_members")
    mc = model_of(ctx.facts).member_count(int(expect) if expect is not None else None)
    n = len(mc.present)
    if expect is not None:
        mc.evidence.append(f"--expect-members {expect}")
    values = {"present": mc.present, "present_count": n, "expected": mc.expected, "missing": mc.missing,
              "missing_text": ", ".join(mc.missing), "single": n == 1}
    if n == 0:
        return skip("no member key in the DCS (see no-leader, patroni-not-running)")
    if mc.expected is not None and n < mc.expected:
        return warn(f"cluster {ctx.node.scope or ctx.facts.get('config.data.scope')} has {n} member"
                    f"{'s' if n != 1 else ''} ({', '.join(mc.present)}) where {mc.expected} are expected "
                    f"({mc.expected_source})" + (f"; missing: {', '.join(mc.missing)}" if mc.missing else "")
                    + ("; with one member no automatic failover is possible" if n == 1 else ""),
                    evidence=mc.evidence, values=values, subject="members")
    if n == 1:
        return warn(f"cluster {ctx.node.scope or ctx.facts.get('config.data.scope')} has a single member "
                    f"({mc.present[0]}): no automatic failover possible", evidence=mc.evidence, values=values,
                    subject="members")
    return ok(f"{n} members ({', '.join(mc.present)})"
              + (f", as expected ({mc.expected_source})" if mc.expected is not None else ""))
