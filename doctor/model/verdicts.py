"""The three replication verdicts a DBA reads first, in words: are writes protected, what would an
automatic failover do now, and what ``synchronous_node_count`` means with these members.

Each verdict has a ``status`` for scripts and a ``text`` for people; the rules behind them are in
:mod:`doctor.model.patroni_rules`, the figures in the rows (:mod:`doctor.model.rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from doctor.model.health import LeaderPostgres
from doctor.model.members import LeaderView
from doctor.model.patroni_rules import ReplicationSettings, may_be_synchronous
from doctor.model.rows import MemberRow, leader_row, replicas
from doctor.units import human_bytes, human_seconds


def _names(rows: list[MemberRow]) -> str:
    return ", ".join(r.name for r in rows) or "none"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else ("es" if word.endswith("s") else "s"))


def _says(lv: LeaderView) -> str:
    """What every member that answered says it is."""
    return "; ".join(f"{name}: {lr.evidence}" for name, lr in lv.live.items() if lr.role)


# --------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class WritesVerdict:
    """Are commits on the leader protected by synchronous standbys, degraded, or blocked."""

    mode: str
    strict: bool
    required: int
    synchronous: list[str]
    eligible: list[str]
    synchronous_standby_names: str | None
    waiting_sessions: int
    longest_wait_seconds: float | None
    leader: str | None
    leader_checked: bool
    status: str  # protected, degraded, unprotected, blocked, async, unknown
    text: str


def writes(cfg: ReplicationSettings, rows: list[MemberRow], lv: LeaderView, leader_seen: bool,
           dcs_down: str | None, leader_pg: LeaderPostgres | None = None) -> WritesVerdict:
    """``leader_seen``: the leader's PostgreSQL was queried (its ``pg_stat_replication`` is the truth);
    without it the ``/sync`` key is the best we know."""
    lead = leader_row(rows)
    reps = replicas(rows)
    eligible = [r for r in reps if r.sync_candidate and r.sync_candidate.eligible]
    if leader_seen:
        confirmed = [r for r in reps if r.sync_state in ("sync", "quorum")]
    else:
        confirmed = [r for r in reps if r.in_sync_key]
    ssn = lead.synchronous_standby_names if lead else None
    waiters = (lead.sync_waiters if lead else None) or {}
    waiting = int(waiters.get("waiting") or 0)
    longest = waiters.get("longest_wait_seconds")
    if lead is not None and leader_pg is not None and leader_pg.down and leader_pg.leader == lead.name:
        status, text = "blocked", (f"BLOCKED: {lead.name} holds the leader key but {leader_pg.why}: no write is "
                                   "acknowledged until it runs again or another member takes over")
    else:
        status, text = _writes_text(cfg, lead, eligible, confirmed, ssn, waiting, longest, lv, dcs_down)
    return WritesVerdict(mode=cfg.synchronous_mode, strict=cfg.synchronous_mode_strict,
                         required=cfg.synchronous_node_count if cfg.synchronous_mode != "off" else 0,
                         synchronous=[r.name for r in confirmed], eligible=[r.name for r in eligible],
                         synchronous_standby_names=ssn, waiting_sessions=waiting, longest_wait_seconds=longest,
                         leader=lead.name if lead else None, leader_checked=leader_seen, status=status, text=text)


def _writes_text(cfg: ReplicationSettings, lead: MemberRow | None, eligible: list[MemberRow],
                 confirmed: list[MemberRow], ssn: str | None, waiting: int, longest: float | None, lv: LeaderView,
                 dcs_down: str | None) -> tuple[str, str]:
    n, mode, strict = cfg.synchronous_node_count, cfg.synchronous_mode, cfg.synchronous_mode_strict
    wait_txt = (f"; {_plural(waiting, 'session')} on {lead.name if lead else None} waiting for a synchronous standby "
                f"(wait_event SyncRep) for up to {human_seconds(longest)}") if waiting else ""
    if lead is None:
        if lv.no_writable_primary:
            return "blocked", (
                "BLOCKED: no writable primary: every member that answered is a replica (" + _says(lv) + ")"
                + (f"; the DCS still names {lv.dcs_leader} leader" if lv.dcs_leader else "")
                + (f" but {dcs_down}, so that key is stale" if dcs_down else ""))
        if lv.keys_unread:
            return "unknown", (
                f"unknown: {dcs_down or 'the DCS keys cannot be read'}; of the members reached, none is a "
                f"writable primary ({_says(lv) or 'none answered'})")
        return "unknown", "unknown: the cluster has no leader"
    if cfg.standby_cluster:
        return "async", "standby cluster: synchronous_mode does not apply (Patroni ignores it)"
    if mode == "off":
        if ssn and ssn.strip():
            status = "protected" if confirmed else ("blocked" if waiting else "unprotected")
            return status, (
                f"synchronous_mode is off but synchronous_standby_names = '{ssn}' is set outside Patroni: "
                + (f"acknowledged by {_names(confirmed)}" if confirmed else "no standby matches it") + wait_txt)
        return "async", (
            "asynchronous: commits are acknowledged by the leader alone (synchronous_mode off); a failover may lose "
            f"the last transactions (up to maximum_lag_on_failover {human_bytes(cfg.maximum_lag_on_failover)})"
            + wait_txt)
    kind = "quorum" if mode == "quorum" else "synchronous"
    if not confirmed and not eligible:
        # strict mode with no candidate: Patroni sets synchronous_standby_names to a name no standby has
        # (patroni/postgresql/sync.py SYNC_STRICT_PLACEHOLDER; older releases wrote '*')
        if strict or (ssn or "").strip() == "*":
            return "blocked", (
                f"BLOCKED: strict mode needs {_plural(n, kind + ' standby')}, "
                f"0 are streaming; every commit on {lead.name} waits until one comes back"
                + (f" (synchronous_standby_names = '{ssn}')" if ssn else "") + wait_txt)
        return "unprotected", (
            "not protected: synchronous mode is on but no standby is synchronous; commits are acknowledged "
            f"by {lead.name} alone (Patroni degraded to asynchronous because synchronous_mode_strict is off)"
            + wait_txt)
    if not confirmed:
        return "blocked" if waiting else "unprotected", (
            f"not yet protected: {_names(eligible)} stream{'s' if len(eligible) == 1 else ''} but "
            f"{'is' if len(eligible) == 1 else 'are'} not synchronous yet (sync_state "
            f"{', '.join(str(r.sync_state) for r in eligible)})" + wait_txt)
    word = "quorum standby" if mode == "quorum" else "synchronous standby"
    if len(confirmed) < n:
        return "degraded", (
            f"acknowledged by {_plural(len(confirmed), word)} ({_names(confirmed)}) while synchronous_node_count "
            f"is {n}: only {len(eligible)} eligible standby{'s' if len(eligible) != 1 else ''} streaming, so Patroni "
            "lowered the count" + (f"; if {_names(confirmed)} stops too, writes block (strict mode)"
                                   if strict else "; if none is left, writes go on unprotected") + wait_txt)
    if mode == "quorum":
        text = f"acknowledged by any {n} of {_plural(len(confirmed), word)} ({_names(confirmed)})"
    else:
        text = f"acknowledged by {_plural(len(confirmed), word)} ({_names(confirmed)})"
    return "protected", text + wait_txt


# --------------------------------------------------------------------------- failover


@dataclass(frozen=True)
class FailoverCandidate:
    name: str
    lag_bytes: int | None
    failover_priority: int
    notes: list[str]


@dataclass(frozen=True)
class FailoverExclusion:
    name: str
    reasons: list[str]


@dataclass(frozen=True)
class FailoverVerdict:
    """What an automatic failover would do if the leader died now."""

    candidates: list[FailoverCandidate]
    excluded: list[FailoverExclusion]
    maximum_lag_on_failover: int | None
    paused: bool
    status: str  # ok, paused, none, no-leader, unknown
    text: str


def failover(cfg: ReplicationSettings, rows: list[MemberRow], lv: LeaderView, dcs_down: str | None) -> FailoverVerdict:
    reps = replicas(rows)
    cands = [r for r in reps if r.failover and r.failover.candidate]
    excluded = [r for r in reps if not (r.failover and r.failover.candidate)]
    lead = leader_row(rows)

    def verdict(status: str, text: str, judged: bool = True) -> FailoverVerdict:
        return FailoverVerdict(
            candidates=[FailoverCandidate(r.name, r.failover.lag_bytes, r.failover_priority, r.failover.notes)
                        for r in cands if r.failover] if judged else [],
            excluded=[FailoverExclusion(r.name, r.failover.reasons) for r in excluded if r.failover] if judged else [],
            maximum_lag_on_failover=cfg.maximum_lag_on_failover, paused=cfg.pause, status=status, text=text)

    parts = []
    for r in cands:
        extra = f" — {'; '.join(r.failover.notes)}" if r.failover.notes else ""
        parts.append(f"{r.name} (lag {human_bytes(r.failover.lag_bytes)}{extra})")
    excl = [f"{r.name} excluded ({'; '.join(r.failover.reasons)})" for r in excluded if r.failover]
    if dcs_down or (lead is None and not lv.trusted):
        return verdict("unknown", (
            "unknown: " + (f"{dcs_down}: Patroni can hold no leader race and promote nobody until the DCS answers "
                           "with a quorum" if dcs_down else "the DCS leader key and the members disagree on the leader")
            + "; no candidate is judged from possibly stale member keys"), judged=False)
    if lead is None:
        return verdict("no-leader", "no leader now: a leader race is due"
                       + (f"; candidates: {', '.join(parts)}" if parts else "; no member qualifies"))
    if not reps:
        return verdict("none", "no candidate: the cluster has no replica, automatic failover would not happen")
    if not cands:
        text = "no candidate: automatic failover would not happen (" + "; ".join(
            f"{r.name}: {', '.join(r.failover.reasons)}" for r in excluded if r.failover) + ")"
        status = "none"
    else:
        text = "candidates: " + ", ".join(parts + excl)
        status = "ok"
    if cfg.pause:
        text = "maintenance mode (paused): Patroni fails over to nobody until resumed; then " + text
        status = "paused" if status == "ok" else status
    return verdict(status, text)


# --------------------------------------------------------------------------- synchronous_node_count


@dataclass(frozen=True)
class NodeCountMeaning:
    """What ``synchronous_node_count`` means with the members this cluster has."""

    synchronous_node_count: int
    members: int
    replicas: int
    eligible: int
    eligible_names: list[str] = field(default_factory=list)
    satisfiable: bool = True
    text: str = ""


def node_count_meaning(cfg: ReplicationSettings, rows: list[MemberRow]) -> NodeCountMeaning:
    n, mode, strict = cfg.synchronous_node_count, cfg.synchronous_mode, cfg.synchronous_mode_strict
    reps = replicas(rows)
    eligible = [r for r in reps if may_be_synchronous(r)]
    members_n = len(reps) + (1 if leader_row(rows) else 0)

    def meaning(satisfiable: bool, text: str) -> NodeCountMeaning:
        return NodeCountMeaning(synchronous_node_count=n, members=members_n, replicas=len(reps),
                                eligible=len(eligible), eligible_names=[r.name for r in eligible],
                                satisfiable=satisfiable, text=text)

    if mode == "off":
        return meaning(True, f"synchronous_mode is off: synchronous_node_count ({n}) has no effect")
    if not eligible:
        why = "every replica is tagged nosync" if reps else "the cluster has no replica"
        return meaning(False, f"synchronous_node_count {n} can never be satisfied: {why}; "
                       + ("writes block whenever strict mode applies" if strict else "commits always run unprotected"))
    if n >= members_n or n > len(eligible):
        return meaning(False, (
            f"synchronous_node_count {n} can never be satisfied with {_plural(members_n, 'member')} "
            f"({len(eligible)} eligible replica{'s' if len(eligible) != 1 else ''}: {_names(eligible)}): at most "
            f"{len(eligible)} can be synchronous, so Patroni always runs with fewer than asked"))
    spare = len(eligible) - n
    if mode == "quorum":
        text = (f"each commit waits for any {n} of the {len(eligible)} eligible replicas ({_names(eligible)}); "
                f"{spare} may be lost without delaying commits")
    elif spare == 0:
        text = (f"{n} of {len(eligible)} eligible replicas must be synchronous: all of them ({_names(eligible)}); "
                "losing any one leaves fewer than asked, Patroni lowers the count and commits wait for the rest"
                + ("; losing all of them blocks writes (strict mode)" if strict else
                   "; losing all of them makes commits run unprotected (not strict)"))
    else:
        text = (f"{n} of {len(eligible)} eligible replicas ({_names(eligible)}) are synchronous; "
                f"{_plural(spare, 'spare')} can take over when a synchronous standby is lost")
    return meaning(True, text)
