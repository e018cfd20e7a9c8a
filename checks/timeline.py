"""Timelines: is every member on the leader's timeline, and if not, did its history fork.

A member behind the leader's timeline can still follow if its WAL position is not past
the point where its timeline ended (``/history``); past it, the member's history forked
and only pg_rewind or a reinit brings it back. Patroni shows such a member `running`
and says nothing wrong, so this check compares the numbers itself.
"""

from __future__ import annotations

from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn
from doctor.model import model_of
from doctor.model.lsn import lsn_str, lsn_to_int
from doctor.model.members import Member, history


def _switch_points(facts_history: list[list[Any]]) -> dict[int, int]:
    """{timeline: LSN where it ended} from /history rows ``[tl, lsn, reason, ts, leader]``."""
    out = {}
    for row in facts_history:
        try:
            out[int(row[0])] = int(row[1])
        except (TypeError, ValueError):
            continue
    return out


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("on", "true", "yes", "1")


def rewind_possible(ctx: CheckContext, member: str) -> tuple[bool, list[str]]:
    """Would Patroni rewind ``member``: use_pg_rewind on, and wal_log_hints or data checksums."""
    local = ctx.node.get("postgresql", "use_pg_rewind")
    dynamic = ctx.facts.get("dcs.config.postgresql.use_pg_rewind")
    use = _bool(local) if local is not None and member == ctx.node.name else _bool(dynamic)
    source = "local postgresql.use_pg_rewind" if local is not None and member == ctx.node.name else "DCS config"
    reasons = [f"use_pg_rewind is {'on' if use else 'off'} ({source})"]
    hints: bool | None = None
    checksums: bool | None = None
    if member == ctx.node.name:
        settings = ctx.facts.postgres_settings
        cd = ctx.facts.controldata
        hints = _bool(settings.get("wal_log_hints")) if settings.get("wal_log_hints") else _bool(cd.get("wal_log_hints"))
        checksums = _bool(settings.get("data_checksums")) if settings.get("data_checksums") else (
            bool(cd.get("data_checksum_version")) if cd.get("data_checksum_version") is not None else None)
    if hints is None:
        hints = _bool(ctx.facts.get("dcs.config.postgresql.parameters.wal_log_hints"))
        if hints is None:
            hints = True  # Patroni's default
    reasons.append(f"wal_log_hints {'on' if hints else 'off'}, data checksums "
                   f"{'on' if checksums else 'off' if checksums is False else 'unknown'}")
    return bool(use) and bool(hints or checksums), reasons


@check("timeline.members", "every member is on the leader's timeline", playbook="timeline-diverged",
       profiles=("run", "replication"), needs=("dcs",), errors_ok=True)
def timelines(ctx: CheckContext) -> list[Verdict] | Verdict:
    model = model_of(ctx.facts)
    rows = model.members
    leader = model.dcs_leader
    lead = model.member(leader)
    if lead is None or lead.timeline is None:
        return skip("no leader with a known timeline to compare with")
    here = ctx.node.name
    local_tl = ctx.facts.int_at("postgres.timeline")

    def timeline_of(m: Member) -> int | None:
        """This node's own PostgreSQL is the freshest source for itself when the cluster does not say."""
        return local_tl if m.name == here and local_tl is not None and m.timeline is None else m.timeline

    ltl = int(lead.timeline)
    points = _switch_points(history(ctx.facts))
    verdicts: list[Verdict] = []
    hist_text = "; ".join(f"timeline {tl} ended at {lsn_str(lsn)}" for tl, lsn in sorted(points.items())) or "no /history"
    for m in rows:
        member_tl = timeline_of(m)
        if m.name == leader or member_tl is None:
            continue
        tl = int(member_tl)
        lsn = m.lsn
        if m.name == here and ctx.facts.get("postgres.replay_lsn"):
            lsn = max(x for x in (lsn, lsn_to_int(ctx.facts.get("postgres.replay_lsn"))) if x is not None)
        values = {"member": m.name, "member_timeline": tl, "leader": leader, "leader_timeline": ltl,
                  "member_lsn": lsn_str(lsn)}
        if tl == ltl or m.state == "streaming":
            continue  # a streaming member follows its upstream's history (its published timeline may lag)
        evidence = [f"{m.name}: timeline {tl}, WAL position {lsn_str(lsn) or 'unknown'}, state {m.state}",
                    f"leader {leader}: timeline {ltl}", f"/history: {hist_text}"]
        if tl > ltl:
            verdicts.append(fail(f"{m.name} is on timeline {tl}, ahead of the leader {leader} on timeline {ltl}: "
                                 f"it was promoted outside the cluster's history and cannot follow {leader}",
                                 evidence=evidence, values={**values, "rewind_possible": False}, subject=m.name))
            continue
        fork = points.get(tl)
        can, reasons = rewind_possible(ctx, m.name)
        values.update(rewind_possible=can, rewind_reasons="; ".join(reasons),
                      fork_lsn=lsn_str(fork) if fork is not None else None)
        if fork is not None and lsn is not None and lsn > fork:
            verdicts.append(fail(
                f"{m.name} diverged: it is on timeline {tl} at {lsn_str(lsn)}, but the leader {leader}'s timeline "
                f"{ltl} forked off timeline {tl} at {lsn_str(fork)}; {m.name} has WAL past the fork point and "
                f"cannot follow (state {m.state}). "
                + ("pg_rewind can bring it back: " if can else "pg_rewind will not fix it: ") + ", ".join(reasons),
                evidence=evidence + reasons, values=values, subject=m.name))
        else:
            verdicts.append(warn(
                f"{m.name} is on timeline {tl} while the leader {leader} is on timeline {ltl} and it is not "
                f"streaming (state {m.state})"
                + (f"; its WAL position {lsn_str(lsn)} is not past the fork at {lsn_str(fork)}, so it may still catch up"
                   if fork is not None and lsn is not None else "; /history or its WAL position is unknown"),
                evidence=evidence, values=values, subject=m.name))
    return verdicts or ok(f"every member with a known timeline is on the leader {leader}'s timeline {ltl}")
