"""Persistent vs. transient: runs of a repeating line, judged against Patroni's HA loop.

Patroni runs its HA loop every ``loop_wait`` seconds (10 by default) and logs, once per loop, the
sentence the loop returns ("waiting for leader to bootstrap"). During a normal bootstrap, clone or
failover some problem-looking lines come for a loop or two and then the member makes progress (it
clones, starts, follows a leader). Such a line is a problem only when it keeps coming back, with no
progress line between, for more than a few loops.

A pattern with ``persist`` (see ``doctor.playbooks.Persist``) keeps, per log, *runs* of its lines: a
run ends at a progress line of the same log (the playbook's ``resolved_by``) or after a silence of
``SILENCE_LOOPS`` x ``loops`` loops. Only three runs are kept (the first, the one that says most, the
last) and a count, so memory stays bounded whatever the log; ranges of one file scanned by several
processes merge exactly like one pass (``merge``), except that a progress line found only as a
heartbeat marker (first and last per block) may be missed between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from doctor.playbooks import Persist

DEFAULT_LOOP_WAIT = 10.0  # Patroni's default loop_wait, when the config does not say
SILENCE_LOOPS = 2  # a gap of more than this many times the persistent window ends a run


@dataclass
class Run:
    """Consecutive lines of one pattern in one log, with no progress line and no long silence between."""

    first: str | None
    first_ts: float | None
    last: str | None = None
    last_ts: float | None = None
    count: int = 0
    with_seen: bool = False
    ended: str | None = None  # "progress" | "silence" | None (still going at the end of what was read)

    @property
    def seconds(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return max(0.0, self.last_ts - self.first_ts)


@dataclass
class Runs:
    """The runs of one aggregate: the first (to merge ranges), the one that says most, the last."""

    head_open: bool = True  # no progress line came before the first run in this part of the log
    first: Run | None = None
    best: Run | None = None
    last: Run | None = None
    n: int = 0

    def add(self, time: str | None, ts: float | None, spec: Persist, silence: float,
            with_last: float | None, slack: float) -> None:
        """Count one line: it continues the last run, or starts a new one after progress or silence."""
        run = self.last
        if run is None or run.ended is not None or (
                ts is not None and run.last_ts is not None and ts - run.last_ts > silence):
            if run is not None and run.ended is None:
                run.ended = "silence"
            run = Run(time, ts)
            self._push(run)
        run.count += 1
        if time is not None:
            if run.first is None:
                run.first, run.first_ts = time, ts
            run.last, run.last_ts = time, ts
        if spec.with_pattern and with_last is not None:
            start = run.first_ts if run.first_ts is not None else ts
            if start is None or with_last >= start - slack:
                run.with_seen = True
        self._keep_best(run, spec)

    def end(self, reason: str) -> None:
        """A progress line: the current run (if any) is over."""
        if self.last is not None and self.last.ended is None:
            self.last.ended = reason

    def _push(self, run: Run) -> None:
        self.n += 1
        if self.first is None:
            self.first = run
        self.last = run

    def _keep_best(self, run: Run, spec: Persist) -> None:
        if self.best is None or strength(run, spec) > strength(self.best, spec):
            self.best = run


def strength(run: Run, spec: Persist) -> tuple[bool, float, float, int]:
    """How much a run says: the required companion line seen, then loops (lines, or time), then time, lines."""
    ok = run.with_seen or not spec.with_pattern
    return ok, float(run.count) if spec.each_loop else run.seconds, run.seconds, run.count


def is_persistent(run: Run | None, spec: Persist, loop_seconds: float) -> bool:
    """More than ``loops`` loops with no progress: that many lines of a once-per-loop report, or that
    much time for other lines; and repeated, and with its companion line when one is required."""
    if run is None or run.count < 2 or (spec.with_pattern and not run.with_seen):
        return False
    if spec.each_loop:
        return run.count > spec.loops
    return run.seconds >= spec.loops * loop_seconds


def see_companion_before(b: Runs, spec: Persist, companion_ts: float | None, slack: float,
                         a: Runs | None = None) -> None:
    """A range of a file is scanned without the lines before it: its first run may have had its companion
    line (``with``) in an earlier range. ``companion_ts`` is the last one seen there; ``a`` the earlier
    ranges' runs, whose open last run ``b``'s first run may continue (then the joined run's start counts)."""
    fb = b.first
    if fb is None or fb.with_seen or not spec.with_pattern or companion_ts is None:
        return
    start = fb.first_ts
    if a is not None and a.last is not None and a.last.ended is None and b.head_open \
            and a.last.first_ts is not None:
        start = a.last.first_ts if start is None else min(start, a.last.first_ts)
    if start is None or companion_ts >= start - slack:
        fb.with_seen = True
        if b.best is None or strength(fb, spec) > strength(b.best, spec):
            b.best = fb


def merge(a: Runs, b: Runs, spec: Persist, silence: float) -> Runs:
    """``b`` (a later range of the same file) appended to ``a``, as one pass would have counted them."""
    if a.last is None:
        return b
    if b.first is None:
        if not b.head_open:
            a.end("progress")
        return a
    la, fb = a.last, b.first
    gap_ok = la.last_ts is None or fb.first_ts is None or fb.first_ts - la.last_ts <= silence
    joined = None
    if la.ended is None and b.head_open and gap_ok:
        joined = Run(la.first, la.first_ts, fb.last if fb.last is not None else la.last,
                     fb.last_ts if fb.last_ts is not None else la.last_ts,
                     la.count + fb.count, la.with_seen or fb.with_seen, fb.ended)
    elif la.ended is None:
        la.ended = "silence" if b.head_open else "progress"

    def swap(r: Run | None) -> Run | None:
        return joined if joined is not None and (r is la or r is fb) else r

    out = Runs(head_open=a.head_open, n=a.n + b.n - (1 if joined is not None else 0))
    out.first, out.last = swap(a.first), swap(b.last)
    candidates = [r for r in (swap(a.best), swap(b.best)) if r is not None]
    out.best = max(candidates, key=lambda r: strength(r, spec)) if candidates else out.last
    return out


def describe(runs: Runs | None, spec: Persist, loop_seconds: float, loop_from: str) -> tuple[dict[str, Any], str | None]:
    """The match's ``persist`` record, and why it is quiet (None when it is persistent)."""
    run = runs.best if runs is not None else None
    persistent = is_persistent(run, spec, loop_seconds)
    window = spec.loops * loop_seconds
    rec: dict[str, Any] = {"loops": spec.loops, "loop_seconds": loop_seconds, "loop_from": loop_from,
                           "each_loop": spec.each_loop, "runs": runs.n if runs else 0, "persistent": persistent}
    if run is not None:
        rec["run"] = {"first": run.first, "last": run.last, "count": run.count, "seconds": round(run.seconds, 1),
                      "then": run.ended or "end of log"}
        if spec.with_pattern:
            rec["run"]["with"] = {"pattern": spec.with_pattern, "seen": run.with_seen}
    if persistent or run is None:
        return rec, None
    measure = f"{spec.loops} HA loops" + ("" if spec.each_loop else f" ({duration_text(window)})")
    why = f"transient: at most x{run.count} in a row over {duration_text(run.seconds)}, then " \
          f"{run.ended or 'the end of the log'}; a problem only when it outlasts {measure} without progress"
    if spec.with_pattern and not run.with_seen and run.count > 1:
        why = f"never with {spec.with_pattern} in the same loop; " + why
    return rec, why


def duration_text(seconds: float | None) -> str:
    """6m10s, 45s, 1h02m: how long a loop went on."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
