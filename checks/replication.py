"""Replication: are commits protected as synchronous_mode promises, do replicas keep up,
could anyone take over, do slots hold WAL dangerously, does every "running" replica stream.

All judgement lives in doctor/model/ (shared with the ``replication`` view); these checks only
turn the cluster model into verdicts with the values the playbooks' fixes need.
"""

from __future__ import annotations

import re
from typing import Any

from doctor.checks._gates import cluster_known, dcs_working
from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn
from doctor.fixquote import shell_join
from doctor.model import model_of
from doctor.model.health import pg_connection
from doctor.model.patroni_rules import ReplicationSettings
from doctor.model.problems import DEFAULT_SLOT_RETAINED_BYTES, lag_problems, not_streaming, slot_problems
from doctor.model.replication import ReplicationState
from doctor.model.rows import MemberRow
from doctor.units import human_bytes, human_seconds

PROFILES = ("replication",)






def _psql(ctx: CheckContext, row: MemberRow) -> str:
    return ctx.node.psql(row.host, row.port)


def _member_line(r: MemberRow) -> str:
    bits = [f"role {r.role}", f"state {r.state}"]
    if r.walsender_state:
        bits.append(f"walsender {r.walsender_state}/{r.sync_state}")
    if r.wal_receiver_status or r.pg_reachable:
        bits.append(f"WAL receiver {r.wal_receiver_status or 'none'}")
    if r.replay_lag_bytes is not None:
        bits.append(f"replay lag {human_bytes(r.replay_lag_bytes)}")
    if r.tags:
        bits.append("tags " + ", ".join(f"{k}={v}" for k, v in r.tags.items()))
    return f"{r.name}: " + ", ".join(bits)


def _settings_line(cfg: ReplicationSettings) -> str:
    return (f"{cfg.source}: synchronous_mode {cfg.synchronous_mode}, synchronous_mode_strict "
            f"{str(cfg.synchronous_mode_strict).lower()}, synchronous_node_count {cfg.synchronous_node_count}, "
            f"maximum_lag_on_failover {cfg.maximum_lag_on_failover}")


def set_command(name: str, value: Any) -> str:
    """The ``--set`` argument of ``patronictl edit-config`` for one setting."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return shell_join("--set", f"{name}={value}")


@check("replication.sync-standby", "synchronous mode has the standbys it asks for", playbook="sync-standby-unavailable",
       profiles=PROFILES, needs=("dcs",), errors_ok=True, gates=(cluster_known,))
def sync_standby(ctx: CheckContext) -> list[Verdict] | Verdict:
    model = model_of(ctx.facts)
    m = model.replication
    cfg, w, meaning = m.settings, m.writes, m.synchronous_node_count
    lead = m.leader_row()
    lp = model.leader_postgres
    if lp is not None and lp.down:
        return skip(f"{lp.leader}'s PostgreSQL is not serving ({lp.why}): no commit to protect (see leader-postgres-down)")
    if cfg.synchronous_mode == "off" and w.status == "async":
        return ok(f"synchronous_mode is off: {w.text}")
    if lead is None:
        if not cfg.known:
            return skip(f"no leader, and the sync settings are {cfg.source}")
        return ok(f"synchronous_mode is {cfg.synchronous_mode} ({cfg.source}"
                  + (f", strict {str(cfg.synchronous_mode_strict).lower()}, synchronous_node_count "
                     f"{cfg.synchronous_node_count}" if cfg.synchronous_mode != "off" else "")
                  + "); with no writable leader no commit can be judged (see no-leader)")
    down = [r for r in m.replicas() if not (r.sync_candidate and r.sync_candidate.eligible)]
    eligible = len(w.eligible)
    n = cfg.synchronous_node_count
    values = {"leader": lead.name, "leader_psql": _psql(ctx, lead), "required": n, "streaming": eligible,
              "strict": cfg.synchronous_mode_strict, "synchronous_mode": cfg.synchronous_mode,
              "unavailable_members": ", ".join(r.name for r in down) or "none",
              "unavailable_list": [r.name for r in down],
              "set_count": set_command("synchronous_node_count",
                                       max(1, meaning.eligible if not meaning.satisfiable else eligible)),
              "can_lower": (not meaning.satisfiable and meaning.eligible >= 1) or 0 < eligible < n,
              "set_not_strict": set_command("synchronous_mode_strict", False),
              "blocked": w.status == "blocked", "waiting_sessions": w.waiting_sessions,
              "synchronous_standby_names": w.synchronous_standby_names}
    evidence = [_settings_line(cfg)]
    if w.synchronous_standby_names is not None:
        evidence.append(f"on {lead.name}: synchronous_standby_names = '{w.synchronous_standby_names}'")
    if w.waiting_sessions:
        evidence.append(f"on {lead.name}: {w.waiting_sessions} backend(s) with wait_event SyncRep, longest "
                        f"{human_seconds(w.longest_wait_seconds)}")
    evidence += [_member_line(r) + (f" — not a sync candidate: {'; '.join(r.sync_candidate.reasons)}"
                                    if r.sync_candidate and not r.sync_candidate.eligible else "")
                 for r in m.replicas()]
    verdicts: list[Verdict] = []
    if w.status == "blocked":
        verdicts.append(fail(f"writes on {lead.name} are {w.text}", evidence=evidence, values=values,
                             subject=lead.name))
    elif w.status == "unprotected":
        verdicts.append(warn(f"synchronous replication silently degraded to asynchronous on {lead.name}: "
                             f"{w.text}", evidence=evidence, values=values, subject=lead.name))
    elif w.status == "degraded":
        verdicts.append(warn(f"fewer synchronous standbys than synchronous_node_count {n}: {w.text}",
                             evidence=evidence, values=values, subject=lead.name))
    if not meaning.satisfiable:
        status = fail if cfg.synchronous_mode_strict and w.status == "blocked" else warn
        verdicts.append(status(f"configuration can never be satisfied: {meaning.text}", evidence=evidence,
                               values={**values, "unsatisfiable": True}, subject="synchronous_node_count"))
    return verdicts or ok(f"writes {w.text}; {meaning.text}")


@check("replication.lag", "replicas keep up with the leader", playbook="replication-lag", profiles=PROFILES,
       needs=("dcs",), errors_ok=True, gates=(cluster_known,))
def lag(ctx: CheckContext) -> list[Verdict] | Verdict:
    m = model_of(ctx.facts).replication
    lead = m.leader_row()
    if lead is None:
        return skip("the cluster has no leader; lag is measured against the leader")
    problems = lag_problems(m, ctx.settings.get("max_lag_bytes"), ctx.settings.get("max_lag_seconds"))
    out: list[Verdict] = []
    for p in problems:
        r = p.row
        figure = p.replay_lag_bytes if p.replay_lag_bytes is not None else p.failover_lag_bytes
        received = p.receive_lag_bytes
        summary = (f"{p.member} is {human_bytes(figure)} ({figure} bytes) behind {lead.name} in replay"
                   + (f", {human_bytes(received)} in receive" if received is not None else "")
                   + f": {'; '.join(p.reasons)}")
        if p.replay_paused and not p.excluded_from_failover:
            summary += (f"; Patroni still counts it as a failover candidate (received WAL is close), but promoting "
                        f"it would first replay {human_bytes(figure)}")
        elif p.excluded_from_failover:
            summary += "; it is excluded from automatic failover"
        evidence = [f"lag measured against {m.reference_lsn} ({m.reference_source}); figures from "
                    f"{r.lag_source or 'unknown'}",
                    f"{p.member}: received {r.receive_lsn}, replayed {r.replay_lsn}, "
                    f"replay paused {r.replay_paused}"
                    + (f", pause state '{r.replay_pause_state}'" if r.replay_pause_state else "")]
        if r.walsender_state:
            lags = [f"{k} {v}" for k, v in (("write_lag", r.write_lag_seconds), ("flush_lag", r.flush_lag_seconds),
                                            ("replay_lag", r.replay_lag_seconds)) if v is not None]
            evidence.append(f"{r.walsender_source} for {p.member}: state {r.walsender_state}"
                            + (f", {', '.join(lags)} (seconds)" if lags else ""))
        out.append(warn(summary, evidence=evidence, subject=p.member, values={
            "member": p.member, "member_psql": _psql(ctx, r), "replay_paused": p.replay_paused,
            "lag_bytes": figure, "lag_human": human_bytes(figure), "leader": lead.name,
            "leader_psql": _psql(ctx, lead), "maximum_lag_on_failover": m.settings.maximum_lag_on_failover}))
    if out:
        return out
    worst = max((r.replay_lag_bytes or 0 for r in m.replicas()), default=0)
    return ok(f"every replica within maximum_lag_on_failover {human_bytes(m.settings.maximum_lag_on_failover)}"
              f" (largest replay lag {human_bytes(worst)}), none paused")


@check("replication.failover-candidate", "some replica could take over automatically", playbook="no-failover-candidate",
       profiles=PROFILES, needs=("dcs",), errors_ok=True, gates=(cluster_known, dcs_working("failover candidates")))
def failover_candidate(ctx: CheckContext) -> Verdict:
    m = model_of(ctx.facts).replication
    f, lead, reps = m.failover, m.leader_row(), m.replicas()
    if lead is None:
        return skip("the cluster has no leader (see no-leader)")
    if not reps:
        return ok(f"{lead.name} has no replica: nothing to fail over to (a single-member cluster)")
    if f.candidates:
        return ok(f.text)
    tagged = [r.name for r in reps if r.nofailover]
    reasons = {r.name: r.failover.reasons if r.failover else [] for r in reps}
    return fail(f"if {lead.name} fails now, Patroni promotes nobody: {f.text}",
                evidence=[_member_line(r) + f" — {'; '.join(reasons[r.name])}" for r in reps]
                + [_settings_line(m.settings)],
                values={"leader": lead.name, "tagged_members": tagged, "tagged": ", ".join(tagged),
                        "excluded": "; ".join(f"{r.name}: {', '.join(reasons[r.name])}" for r in reps),
                        "lagging": [r.name for r in reps if any("lag" in x for x in reasons[r.name])],
                        "absent": [r.name for r in reps if not r.in_dcs]},
                subject=lead.name)


@check("replication.slots", "replication slots neither missing nor hoarding WAL", playbook="replication-slot-problem",
       profiles=PROFILES, needs=("dcs",), errors_ok=True, gates=(cluster_known,))
def slots(ctx: CheckContext) -> list[Verdict] | Verdict:
    m = model_of(ctx.facts).replication
    lead = m.leader_row()
    if lead is None or not lead.pg_reachable:
        return skip("the leader's PostgreSQL could not be queried; its slots are unknown")
    threshold = int(ctx.settings.get("slot_retained_bytes") or DEFAULT_SLOT_RETAINED_BYTES)
    out: list[Verdict] = []
    base = {"leader": lead.name, "leader_psql": _psql(ctx, lead)}
    for p in slot_problems(m, threshold):
        slot, who = p.slot, (f" (member {p.member})" if p.member else "")
        vals = {**base, "slot": slot, "slot_member": p.member or "", "kind": p.kind,
                "retained_human": human_bytes(p.retained_bytes)}
        if p.kind == "lost":
            out.append(fail(f"slot {slot}{who} on {lead.name} is lost (wal_status lost): the WAL it needed is gone; "
                            "that replica must be re-cloned", values=vals, subject=slot))
        elif p.kind == "unreserved":
            out.append(warn(f"slot {slot}{who} on {lead.name} is past max_slot_wal_keep_size (wal_status "
                            f"unreserved, {human_bytes(p.retained_bytes)} retained): it will be invalidated at the "
                            "next checkpoint", values=vals, subject=slot))
        elif p.kind == "inactive-retaining":
            out.append(warn(f"inactive slot {slot}{who} on {lead.name} retains {human_bytes(p.retained_bytes)} "
                            f"({p.retained_bytes} bytes) of WAL, more than {human_bytes(threshold)}; pg_wal grows "
                            "until the disk fills", values=vals, subject=slot))
        elif p.kind == "unlimited":
            out.append(warn(f"max_slot_wal_keep_size is -1 (unlimited) on {lead.name} and slot {slot}{who} "
                            f"retains {human_bytes(p.retained_bytes)} (all slots: "
                            f"{human_bytes(p.total_retained_bytes)}): nothing stops a stuck replica from "
                            "filling the disk", values={**vals, "unlimited": True}, subject="max_slot_wal_keep_size"))
        elif p.kind == "missing":
            out.append(warn(f"member {p.member} streams without its slot {slot} on {lead.name} "
                            "(use_slots is on): the leader may recycle WAL it still needs", values=vals,
                            subject=slot))
    if out:
        held = [r.slot for r in m.replicas() if r.slot is not None and r.slot.exists]
        for v in out:
            v.evidence = [f"on {lead.name}: slot {s.name} active {s.active}, wal_status {s.wal_status}, "
                          f"retained {human_bytes(s.retained_bytes)}" for s in held]
        return out
    return ok(f"slots on {lead.name}: none inactive above {human_bytes(threshold)}, none lost, none missing")


@check("replication.streaming", "every running replica streams", playbook="replica-not-streaming", profiles=PROFILES,
       needs=("dcs",), errors_ok=True, gates=(cluster_known, dcs_working("streaming from the leader")))
def streaming(ctx: CheckContext) -> list[Verdict] | Verdict:
    m = model_of(ctx.facts).replication
    lead = m.leader_row()
    if lead is None:
        return skip("the cluster has no leader to stream from")
    out: list[Verdict] = []
    refused, senders = _replication_login_refusal(ctx, lead.name)
    for r in not_streaming(m.members):
        how = ("its PostgreSQL has no WAL receiver (pg_stat_wal_receiver is empty)" if r.pg_reachable
               and not r.wal_receiver_status else
               f"its WAL receiver is '{r.wal_receiver_status}'" if r.wal_receiver_status else
               f"{lead.name}'s walsender for it is '{r.walsender_state}'" if r.walsender_state else
               f"{lead.name} has no walsender for it" if r.walsender_source else
               f"Patroni {r.patroni_version or ''} reports state '{r.state}'".replace("  ", " "))
        evidence = [_member_line(r),
                    f"Patroni state of {r.name}: {r.state} (streaming replicas show 'streaming' from Patroni 3.0.4 on"
                    + (f"; this is Patroni {r.patroni_version}" if r.patroni_version else "") + ")",
                    walsender_line(ctx, m, r)]
        if refused:
            evidence.append(f"a replication login to {lead.name} from this node fails: {refused}")
        out.append(fail(f"{r.name} is running as a replica but not streaming from {lead.name}: {how}"
                        + (f"; {lead.name} refuses replication connections: {refused}" if refused else "")
                        + "; it falls further behind with every write",
                        evidence=evidence,
                        values={"member": r.name, "member_psql": _psql(ctx, r), "leader": lead.name,
                                "leader_psql": _psql(ctx, lead),
                                "leader_host": lead.host, "leader_port": lead.port,
                                "login_error": refused, "max_wal_senders": senders,
                                "member_log_dir": ctx.facts.get("logs.found.postgres_log_dir")
                                if r.name == ctx.node.name else None},
                        subject=r.name))
    return out or ok(f"every running replica streams from {lead.name}")


def walsender_line(ctx: CheckContext, m: ReplicationState, r: MemberRow) -> str:
    """What the leader's walsender list says of replica ``r``, naming where it was read; or that it was not
    read and why (the leader's PostgreSQL refused pgdoctor, its REST API gave no list)."""
    lead = m.leader_row()
    name = lead.name if lead else "the leader"
    if r.walsender_source:
        return f"{r.walsender_source}: " + (f"state {r.walsender_state}, sync_state {r.sync_state}"
                                            if r.walsender_state else f"no row for {r.name}")
    pg = ctx.facts.pg_members.get(name) or {}
    sr = pg.get("stat_replication")
    if pg.get("reachable") and isinstance(sr, dict) and sr.get("error"):
        conn = f"the query on {name} failed ({sr['error'].get('kind')}: {sr['error'].get('message')})"
    elif pg.get("reachable") and pg.get("in_recovery"):
        conn = f"{name}'s PostgreSQL is in recovery (not a primary)"
    else:
        conn = pg_connection(ctx.facts, name)[1]
    answer = ctx.facts.rest_answers.get(name)
    rest = ("its REST /patroni did not answer" if not answer or answer.get("status") != 200 else
            "its REST /patroni answer has no replication[] (Patroni could not query its PostgreSQL)")
    return f"pg_stat_replication on {name}: not read — {conn}; {rest}"


def _replication_login_refusal(ctx: CheckContext, leader: str) -> tuple[str | None, int | None]:
    """The server's words when this node's own replication login to the leader was refused for a
    reason that is not about credentials or pg_hba (those have their own problem ids), e.g. every
    WAL sender slot taken; and max_wal_senders when that is the reason."""
    login = ctx.facts.dict_at("postgres.replication_login") or {}
    err = login.get("error") or {}
    if login.get("member") != leader or not err or err.get("kind") in (
            "auth", "hba", "no-role", "no-replication-privilege", "refused", "timeout", "dns", "starting",
            "not-configured"):
        return None, None
    text = err.get("server_message") or err.get("message")
    m = re.search(r"exceeds max_wal_senders \(currently (\d+)\)", text or "")
    return text, int(m.group(1)) if m else None
