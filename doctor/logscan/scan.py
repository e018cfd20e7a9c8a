"""The scanner: sources -> candidate lines (engine) -> confirmed matches -> counted matches and events.

Repeated lines are counted, not kept: each (source, pattern) pair holds one
aggregate with its count, first and last time, the named groups and one real,
redacted sample line. Event lines feed a short, bounded timeline.
"""

from __future__ import annotations

import collections
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from doctor.logscan.engines import Engine, make_engine
from doctor.logscan.parse import Line, is_structured, parse_line
from doctor.logscan.sources import LINE_CAP, Source, SourceStats, open_error_note, read_blocks
from doctor.logscan.regex import required_literals
from doctor.playbooks import LogPattern

SAMPLE_CAP = 400
MAX_EVENTS = 400
MIN_CYCLES = 3  # a cycle of events seen this many times in a row is a retry loop
_TIME_LOOKBACK = 200  # a Python traceback or a pg_basebackup report can run for dozens of lines
_STRICT_KINDS = ("patroni", "postgres", "etcd")


@dataclass
class _Agg:
    pattern: LogPattern
    source: str
    count: int = 0
    first: str | None = None
    last: str | None = None
    first_ts: float | None = None
    last_ts: float | None = None
    sample: str = ""
    level: str | None = None
    groups: dict[str, Any] = field(default_factory=dict)
    raw_groups: dict[str, Any] | None = None
    values: dict[str, list[str]] = field(default_factory=dict)


class Scanner:
    """Scan sources for the playbooks' patterns; collect ``matches``, ``events`` and per-source facts."""

    def __init__(self, patterns: Sequence[LogPattern], engine: str | Engine = "auto", since: float | None = None,
                 until: float | None = None, redact: Callable[[str], str] | None = None,
                 deadline: float | None = None, block_size: int | None = None) -> None:
        self.patterns = list(patterns)
        self.confirm = [re.compile(p.regex, re.ASCII) for p in self.patterns]
        # Marker lines (benign, no event, nothing required: the heartbeat) can be most of a log and are
        # only needed for when they were last seen. They are found with bytes.find/rfind (C speed),
        # first and last of each block, and counted with bytes.count, instead of one callback per line.
        self._markers: list[tuple[int, bytes]] = []
        if isinstance(engine, str):
            for i, p in enumerate(self.patterns):
                lits = required_literals(p.regex) if p.benign and not p.event and not p.require else []
                if len(lits) == 1 and len(lits[0]) >= 8:
                    self._markers.append((i, lits[0].encode("utf-8")))
        marked = {i for i, _ in self._markers}
        self._engine_map = [i for i in range(len(self.patterns)) if i not in marked]
        self.engine: Engine = make_engine([self.patterns[i].regex for i in self._engine_map], engine) \
            if isinstance(engine, str) else engine
        self.since, self.until = since, until
        self.redact = redact or (lambda s: s)
        self.deadline = deadline
        self.block_size = block_size
        self._aggs: dict[tuple[Any, ...], _Agg] = {}
        self._members: dict[str, str] = {}  # source label -> the Patroni member its lines name as self
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_EVENTS)
        self.sources: list[dict[str, Any]] = []
        self.notes: list[str] = []
        # The time of the last timed line of the previous block, for untimed lines at a block's start.
        self._carry: tuple[Any, float] | None = None

    # ------------------------------------------------------------------ reading

    def scan(self, sources: Iterable[Source]) -> "Scanner":
        for src in sources:
            self.sources.append(self.scan_source(src).as_dict())
        return self

    def scan_source(self, src: Source) -> SourceStats:
        stats = src.stats()
        try:
            stream = src.open(stats)
        except Exception as exc:  # unreadable input is a note, never a crash
            stats.errors.append({"kind": type(exc).__name__, "message": open_error_note(exc, src.label)})
            src.close()
            return stats
        stats.read = True
        self._carry = None
        mode: str | None = None
        first = True
        try:
            kwargs = {"block_size": self.block_size} if self.block_size else {}
            for block in read_blocks(stream, stats, **kwargs):
                if first:
                    mode = is_structured(block[:4096])
                    first = False
                stats.lines += block.count(b"\n")
                if b"\x00" in block:
                    stats.nul_bytes += block.count(b"\x00")
                    block = block.replace(b"\x00", b"")
                if not block.isascii():
                    try:
                        block.decode("utf-8")
                    except UnicodeDecodeError:
                        stats.invalid_utf8 = True
                if mode:
                    self._scan_structured(block, src, stats)
                else:
                    self._scan_raw(block, src, stats)
                    self._carry_time(block, src.kind)
                if self.deadline is not None and time.monotonic() > self.deadline:
                    stats.notes.append("stopped early: the time budget for reading logs ran out")
                    break
        except Exception as exc:  # a reader bug must not lose the other sources
            stats.errors.append({"kind": type(exc).__name__, "message": f"{src.label}: {exc}"})
        finally:
            src.close()
        err = getattr(src, "stderr", "")
        if err:
            stats.notes.append(err.splitlines()[0][:300])
        return stats

    def _scan_raw(self, block: bytes, src: Source, stats: SourceStats) -> None:
        parsed: dict[int, tuple[str, Line]] = {}
        for start, eidx in self.engine.candidates(block):
            idx = self._engine_map[eidx]
            if start not in parsed:
                parsed[start] = (self._line_text(block, start), None)  # type: ignore[assignment]
            text, line = parsed[start]
            m = self.confirm[idx].search(text)
            if not m:
                continue
            if line is None:
                line = self._parse(block, start, text, src)
                parsed[start] = (text, line)
            self._record(idx, m, text, line, src)
        for idx, hits, count in self._marker_hits(block):
            agg = None
            for start, text, m in hits:
                agg = self._record(idx, m, text, self._parse(block, start, text, src), src) or agg
            if agg is not None and count > len(hits):
                agg.count += count - len(hits)

    @staticmethod
    def _line_text(buf: bytes, start: int) -> str:
        end = buf.find(b"\n", start)
        raw = buf[start:end if end >= 0 else len(buf)]
        return raw[:LINE_CAP].decode("utf-8", "replace")

    def _marker_hits(self, buf: bytes) -> list[tuple[int, list[tuple[int, str, re.Match[str]]], int]]:
        """For each marker pattern: its first and last confirmed line in ``buf``, and how many lines hold its text."""
        out = []
        for idx, lit in self._markers:
            first = self._confirmed(buf, idx, lit, forward=True)
            if first is None:
                continue
            last = self._confirmed(buf, idx, lit, forward=False)
            hits = [first] if last is None or last[0] == first[0] else [first, last]
            out.append((idx, hits, buf.count(lit)))
        return out

    def _confirmed(self, buf: bytes, idx: int, lit: bytes, forward: bool,
                   tries: int = 64) -> tuple[int, str, re.Match[str]] | None:
        pos = buf.find(lit) if forward else buf.rfind(lit)
        while pos >= 0 and tries > 0:
            start = buf.rfind(b"\n", 0, pos) + 1
            text = self._line_text(buf, start)
            m = self.confirm[idx].search(text)
            if m:
                return start, text, m
            tries -= 1
            if forward:
                end = buf.find(b"\n", pos)
                pos = buf.find(lit, end) if end >= 0 else -1
            else:
                pos = buf.rfind(lit, 0, start) if start > 0 else -1
        return None

    def _parse(self, block: bytes, start: int, text: str, src: Source) -> Line:
        line = parse_line(text, src.kind)
        if line.ts is None:
            self._inherit_time(block, start, line, src.kind)
        return line

    def _scan_structured(self, block: bytes, src: Source, stats: SourceStats) -> None:
        lines = [parse_line(raw.decode("utf-8", "replace"), src.kind) for raw in block.split(b"\n")[:-1]]
        texts = [(ln.raw if ln.raw is not None else ln.message).replace("\n", " ").replace("\r", " ")
                 for ln in lines]
        joined = ("\n".join(texts) + "\n").encode("utf-8", "replace")
        offsets: dict[int, int] = {}
        pos = 0
        for i, t in enumerate(texts):
            offsets[pos] = i
            pos += len(t.encode("utf-8", "replace")) + 1
        for start, eidx in self.engine.candidates(joined):
            idx = self._engine_map[eidx]
            i = offsets.get(start)
            if i is None:
                continue
            m = self.confirm[idx].search(texts[i])
            if m:
                self._record(idx, m, texts[i], lines[i], src)
        for idx, hits, count in self._marker_hits(joined):
            agg = None
            for start, _text, m in hits:
                i = offsets.get(start)
                if i is not None:
                    agg = self._record(idx, m, texts[i], lines[i], src) or agg
            if agg is not None and count > len(hits):
                agg.count += count - len(hits)

    @staticmethod
    def _time_before(block: bytes, end: int, kind: str | None) -> Line | None:
        """The nearest timed line that ends before ``end`` in this block, if any."""
        for _ in range(_TIME_LOOKBACK):
            if end <= 0:
                return None
            begin = block.rfind(b"\n", 0, end) + 1
            prev = parse_line(block[begin:end][:LINE_CAP].decode("utf-8", "replace"), kind)
            if prev.ts is not None:
                return prev
            end = begin - 1
        return None

    def _inherit_time(self, block: bytes, start: int, line: Line, kind: str | None) -> None:
        """Untimed lines (tool output, DETAIL, tracebacks) take the time of the line before them,
        looking back into the previous block when needed, so that ``--since`` applies to them too."""
        prev = self._time_before(block, start - 1, kind)
        if prev is not None:
            line.time, line.ts = prev.time, prev.ts
        elif self._carry is not None:
            line.time, line.ts = self._carry

    def _carry_time(self, block: bytes, kind: str | None) -> None:
        last = self._time_before(block, len(block) - 1 if block.endswith(b"\n") else len(block), kind)
        if last is not None:
            self._carry = (last.time, last.ts)

    # ------------------------------------------------------------------ recording

    def _record(self, idx: int, m: re.Match[str], text: str, line: Line, src: Source) -> _Agg | None:
        """Count one matching line; return its aggregate, or None when the line does not count."""
        p = self.patterns[idx]
        if line.ts is not None:
            if self.since is not None and line.ts < self.since:
                return None
            if self.until is not None and line.ts > self.until:
                return None
        if p.log in _STRICT_KINDS:
            kind = line.kind or src.kind
            if kind is not None and kind != p.log:
                return None
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        if "self_member" in groups:
            self._members.setdefault(src.label, groups["self_member"])
        # lines that differ in a required group (e.g. which user failed) are kept apart, so the
        # diagnosis can judge each one against this node's values
        key = (src.label, idx, tuple(groups.get(g) for g in p.require))
        agg = self._aggs.get(key)
        if agg is None:
            agg = self._aggs[key] = _Agg(p, src.label, first=line.time, first_ts=line.ts)
        agg.count += 1
        if line.time is not None:
            if agg.first is None:
                agg.first, agg.first_ts = line.time, line.ts
            agg.last, agg.last_ts = line.time, line.ts
        if agg.count == 1 or groups != agg.raw_groups:
            # the sample and its groups follow the latest distinct values: the current state
            agg.raw_groups = groups
            agg.sample = self.redact(text.strip()[:SAMPLE_CAP])
            agg.level = line.level
            agg.groups = {k: self.redact(v) for k, v in groups.items()}
            for k, v in agg.groups.items():
                seen = agg.values.setdefault(k, [])
                if len(seen) < 5 and v not in seen:
                    seen.append(v)
        if p.event:
            self._add_event(p, line, text, groups, src)
        return agg

    def _add_event(self, p: LogPattern, line: Line, text: str, groups: dict[str, Any], src: Source) -> None:
        prev = self._events[-1] if self._events else None
        if prev and prev["pattern"] == p.id and prev["source"] == src.label:
            prev["count"] += 1
            prev["last"] = line.time
            return
        self._events.append({
            "time": line.time, "ts": line.ts, "event": p.event, "playbook": p.playbook, "pattern": p.id,
            "source": src.label, "message": self.redact(line.message.strip()[:SAMPLE_CAP]),
            "groups": {k: self.redact(str(v)) for k, v in groups.items()}, "count": 1, "last": None,
        })

    # ------------------------------------------------------------------ results

    def matches(self) -> list[dict[str, Any]]:
        out = []
        for agg in self._aggs.values():
            p = agg.pattern
            span = (agg.last_ts - agg.first_ts) if agg.first_ts is not None and agg.last_ts is not None else None
            quiet_reason = None
            if p.benign:
                quiet_reason = "benign"
            elif agg.count < p.min_count:
                quiet_reason = f"seen {agg.count} time(s), fewer than {p.min_count}"
            elif p.min_span and span is not None and span < p.min_span:
                quiet_reason = f"lasted {span:.0f}s, less than {p.min_span:.0f}s"
            m: dict[str, Any] = {
                "playbook": p.playbook, "pattern": p.id, "log": p.log, "source": agg.source, "count": agg.count,
                "first": agg.first, "last": agg.last, "first_ts": agg.first_ts, "last_ts": agg.last_ts,
                "sample": agg.sample, "level": agg.level,
                "groups": agg.groups, "values": agg.values, "benign": quiet_reason is not None,
            }
            if quiet_reason:
                m["quiet_reason"] = quiet_reason
            node = self.node_of(agg.source)
            if node:
                m["node"] = node
            if p.event:
                m["event"] = p.event
            if p.severity:
                m["severity"] = p.severity
            out.append(m)
        out.sort(key=lambda m: (m["benign"], m["playbook"], m["first"] or "", m["pattern"]))
        return out

    def events(self) -> list[dict[str, Any]]:
        evs = sorted(self._events, key=lambda e: (e["ts"] is None, e["ts"] or 0.0))
        merged: list[dict[str, Any]] = []
        for e in evs:
            prev = merged[-1] if merged else None
            if prev and prev["pattern"] == e["pattern"] and prev["source"] == e["source"]:
                prev["count"] += e["count"]
                prev["last"] = e["last"] or e["time"]
                continue
            merged.append(dict(e))
        merged = collapse_cycles(merged)
        for e in merged:
            e.pop("ts", None)
            node = self.node_of(e["source"])
            if node:
                e["node"] = node
            if not e.get("last"):
                e.pop("last", None)
        return merged

    def node_of(self, source: str) -> str | None:
        """Which member a source belongs to: the name Patroni gives itself in its lines, else the
        node the path names (``.../node2/data/log/...``, ``x.node2.patroni.log``)."""
        return self._members.get(source) or node_from_path(source)

    def facts(self) -> dict[str, Any]:
        return {"engine": self.engine.name, "sources": self.sources, "matches": self.matches(),
                "events": self.events(), "notes": list(self.notes)}


_NODE_TOKEN = re.compile(r"^[A-Za-z][A-Za-z_]*-?\d+$")  # node2, pg1, etcd3, db-1; not 15, not a date


def node_from_path(path: str) -> str | None:
    """The deepest path part (a directory, or a dot-separated piece of the file name) that looks like
    a member name, e.g. node2 in /var/tmp/lab/node2/data/log/postgresql.log; None when none does."""
    parts = [p for p in re.split(r"[/\\]", path or "") if p]
    if not parts:
        return None
    *dirs, name = parts
    for token in name.split(".")[:-1]:
        if _NODE_TOKEN.match(token):
            return token
    for d in reversed(dirs):
        if _NODE_TOKEN.match(d):
            return d
    return None


def collapse_cycles(events: list[dict[str, Any]], periods: tuple[int, ...] = (2, 3)) -> list[dict[str, Any]]:
    """A retry loop (clone, clone-failed, clone, clone-failed, ...) becomes one entry: the cycle's
    events joined, ``count`` = how many times the cycle ran, from the first time to the last."""
    out: list[dict[str, Any]] = []
    i = 0
    keys = [(e["pattern"], e["source"]) for e in events]
    while i < len(events):
        best_p, best_r = 0, 1
        for p in periods:
            block = keys[i:i + p]
            if len(block) < p or len(set(block)) < p:
                continue
            r = 1
            while keys[i + r * p:i + (r + 1) * p] == block:
                r += 1
            if r >= MIN_CYCLES and r * p > best_r * best_p:
                best_p, best_r = p, r
        if not best_p:
            out.append(events[i])
            i += 1
            continue
        run = events[i:i + best_p * best_r]
        head = run[:best_p]
        tail = run[-1]
        out.append({
            "time": head[0]["time"], "ts": head[0].get("ts"),
            "event": " / ".join(dict.fromkeys(str(e["event"]) for e in head)),
            "playbook": head[0]["playbook"], "pattern": "+".join(e["pattern"] for e in head),
            "source": head[0]["source"], "message": " → ".join(e["message"] for e in head),
            "groups": head[0].get("groups") or {}, "count": best_r, "cycle": best_p,
            "last": tail.get("last") or tail["time"],
        })
        i += best_p * best_r
    return out
