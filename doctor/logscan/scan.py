"""The scanner: sources -> candidate lines (engine) -> confirmed matches -> counted matches and events.

Repeated lines are counted, not kept: each (source, pattern) pair holds one
aggregate with its count, first and last time, the named groups and one real,
redacted sample line. Event lines feed a short, bounded timeline.

What it keeps is bounded whatever the input, and so is the report made from it:

* per (source, pattern), at most ``MAX_DISTINCT`` distinct values of the pattern's
  ``require`` groups (which user failed to log in) are kept apart; further values fold into
  one aggregate that counts their lines and how many distinct values there were ("and N
  more"). Values that matter to this node (its replication user) are never folded;
* every text taken from a line (sample, group values) is cut to ``SAMPLE_CAP`` characters,
  each group keeps at most ``MAX_GROUP_VALUES`` distinct values, the timeline at most
  ``MAX_EVENTS`` entries.

So ``matches`` has at most sources x patterns x (``MAX_DISTINCT`` + 2) entries of a few KB each.

An untimed line (tool output, DETAIL, a traceback) takes the time of the timed line before
it. That time is carried forward as the block is read: each line is looked at once at most,
so an untimed line costs O(1) however many come in a row. A line that cannot be parsed
(``ParseError``) is skipped and counted on its source; the source goes on.
"""

from __future__ import annotations

import codecs
import collections
import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from doctor.logscan.deadline import DeadlineReached, passed
from doctor.logscan.engines import Engine, make_engine
from doctor.logscan.parse import Line, ParseError, is_structured, parse_line
from doctor.logscan.persist import DEFAULT_LOOP_WAIT, SILENCE_LOOPS, Runs, describe
from doctor.logscan.regex import required_literals
from doctor.logscan.sources import LINE_CAP, STOPPED_AT_DEADLINE, Source, SourceStats, open_error_note, read_blocks
from doctor.playbooks import LogPattern

SAMPLE_CAP = 400
MAX_EVENTS = 400
MAX_DISTINCT = 20  # distinct required-group values kept apart per (source, pattern); the rest are folded
MAX_GROUP_VALUES = 5  # distinct values listed per named group
MAX_FOLDED_TRACKED = 100_000  # distinct folded values counted exactly up to this many ("more than" after)
MIN_CYCLES = 3  # a cycle of events seen this many times in a row is a retry loop
_STRICT_KINDS = ("patroni", "postgres", "etcd")
NOT_REACHED = "the time limit was reached before this source was read"


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
    idx: int = -1  # the pattern's index in the scanner
    folded: set[int] | None = None  # for the fold-over aggregate: hashes of the distinct values in it
    folded_more: bool = False  # more than MAX_FOLDED_TRACKED distinct values were folded
    head_groups: dict[str, Any] | None = None  # the groups of the first line counted (to merge block ranges)
    changes: int = 0  # how often the groups changed after the first line (to merge block ranges)
    runs: Runs | None = None  # for a ``persist`` pattern: its runs of lines without progress


class _Clock:
    """The time of the last timed line before a position, carried forward through one source.

    ``before(start)`` looks back only to where it looked last (the frontier), and stops at the
    first timed line; every line of a block is looked at once at most.
    """

    def __init__(self, kind: str | None) -> None:
        self.kind = kind
        self.last: tuple[str | None, float] | None = None
        self._block = b""
        self._frontier = 0

    def new_block(self, block: bytes) -> None:
        self._block, self._frontier = block, 0

    def before(self, start: int) -> tuple[str | None, float] | None:
        """(time, ts) of the nearest timed line that begins before offset ``start`` (a line start)."""
        if start > self._frontier:
            block, frontier = self._block, self._frontier
            end = start - 1  # the newline that ends the line before
            while end >= frontier:
                nl = block.rfind(b"\n", frontier, end)
                begin = nl + 1 if nl >= 0 else frontier
                line = _quiet_parse(block[begin:end], self.kind)
                if line is not None and line.ts is not None:
                    self.last = (line.time, line.ts)
                    break
                end = begin - 1
            self._frontier = start
        return self.last

    def seen(self, line_end: int, line: Line) -> None:
        """A line up to ``line_end`` was parsed: it is behind the frontier now, its time the latest."""
        if line.ts is not None:
            self.last = (line.time, line.ts)
        self._frontier = max(self._frontier, line_end)


def valid_utf8(block: bytes, step: int = 256 * 1024) -> bool:
    """Whether ``block`` is UTF-8, decoded a slice at a time: decoding an 8 MiB block whole makes a
    string of up to 32 MiB, the largest thing a scanning process would hold."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(block)
    try:
        for i in range(0, len(block), step):
            decoder.decode(view[i:i + step])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _quiet_parse(raw: bytes, kind: str | None) -> Line | None:
    """A line only looked at for its time: whatever is wrong with it, it has none."""
    try:
        return parse_line(raw[:LINE_CAP].decode("utf-8", "replace"), kind)
    except Exception:
        return None


def parse_or_skip(text: str, kind: str | None, stats: SourceStats) -> Line | None:
    """Parse one line; a line that cannot be parsed is counted on its source and skipped (None)."""
    try:
        return parse_line(text, kind)
    except ParseError as exc:
        stats.skip_line(str(exc))
    except RecursionError:
        stats.skip_line("nested too deeply")
    except Exception as exc:
        stats.skip_line(f"parser failed ({type(exc).__name__})")
    return None


class _Confirmers(dict[int, "re.Pattern[str]"]):
    """Each pattern's Python regex by number, compiled when a candidate line first needs it: in most
    logs most of the ~280 patterns never get one, and compiling them all costs ~40 ms."""

    def __init__(self, regexes: Iterable[str]) -> None:
        super().__init__()
        self._sources = list(regexes)

    def __missing__(self, idx: int) -> re.Pattern[str]:
        rx = self[idx] = re.compile(self._sources[idx], re.ASCII)
        return rx


class Scanner:
    """Scan sources for the playbooks' patterns; collect ``matches``, ``events`` and per-source facts."""

    def __init__(self, patterns: Sequence[LogPattern], engine: str | Engine = "auto", since: float | None = None,
                 until: float | None = None, redact: Callable[[str], str] | None = None,
                 deadline: float | None = None, block_size: int | None = None,
                 node_values: Mapping[str, Any] | None = None, workers: int | None = None,
                 loop_wait: float | None = None) -> None:
        """``deadline``: monotonic end time; reading stops there and each source says so.
        ``node_values``: this node's template values (e.g. ``replication_user``; the defaults without
        them): lines whose ``require`` groups fit them are always kept apart, never folded.
        ``workers``: processes that share a big plain file (None: one per core, 1: this process only);
        the answers are the same either way (``doctor.logscan.parallel``).
        ``loop_wait``: the HA loop's period from the config; ``persist`` patterns count loops of it
        (``DEFAULT_LOOP_WAIT`` when the config does not say)."""
        self.patterns = list(patterns)
        self.confirm = _Confirmers(p.regex for p in self.patterns)
        # Marker lines (benign, no event, nothing required: the heartbeat) can be most of a log and are
        # only needed for when they were last seen. They are found with bytes.find/rfind (C speed),
        # first and last of each block, and counted with bytes.count, instead of one callback per line.
        self._markers: list[tuple[int, bytes]] = []
        self.loop_seconds = float(loop_wait) if loop_wait else DEFAULT_LOOP_WAIT
        self.loop_from = "config" if loop_wait else "default"
        self._silence = SILENCE_LOOPS * max((p.persist.loops for p in self.patterns if p.persist), default=3) \
            * self.loop_seconds
        # persist patterns: which lines end their runs (progress), which lines they need beside them (with)
        self._progress_of: dict[str, list[int]] = {}
        self._with_of: dict[str, list[int]] = {}
        for i, p in enumerate(self.patterns):
            if p.persist is None:
                continue
            for name in p.persist.progress:
                self._progress_of.setdefault(name, []).append(i)
            if p.persist.with_pattern:
                self._with_of.setdefault(p.persist.with_pattern, []).append(i)
        if isinstance(engine, str):
            for i, p in enumerate(self.patterns):
                lits = required_literals(p.regex) if p.benign and not p.event and not p.require \
                    and p.id not in self._with_of else []
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
        self._distinct: collections.Counter[tuple[str, int]] = collections.Counter()  # kept-apart keys
        if node_values is None:  # the values the diagnosis takes when no config is given
            from doctor.model.node import NodeView
            node_values = NodeView().template_values()
        self._wanted = {i: {g: str(node_values[v]) for g, v in p.require.items() if node_values.get(v) is not None}
                        for i, p in enumerate(self.patterns) if p.require}
        self._members: dict[str, str] = {}  # source label -> the Patroni member its lines name as self
        self._persist_aggs: dict[tuple[str, int], list[_Agg]] = {}  # (source, persist pattern) -> aggregates
        self._progress_before: set[tuple[str, int]] = set()  # progress seen before any line of the pattern
        self._with_last: dict[tuple[str, str], float] = {}  # (source, with pattern id) -> last time seen
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_EVENTS)
        self.sources: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.shared: list[str] = []  # sources read by several processes (parallel.scan_file_parallel)
        self.events_added = 0  # events appended to the timeline (not counting repeats merged into one)
        self.values_cap = MAX_GROUP_VALUES
        from doctor.logscan.parallel import default_workers
        self.workers = default_workers() if workers is None else max(1, workers)

    # ------------------------------------------------------------------ sharing work

    def fresh(self) -> Scanner:
        """The same patterns, engine and limits with nothing recorded yet: a worker's scanner for one
        range of a file. It keeps a few more group values than are reported, so that merging ranges
        lists the same first values as one pass would."""
        child = copy.copy(self)
        child._aggs, child._distinct, child._members = {}, collections.Counter(), {}
        child._persist_aggs, child._progress_before, child._with_last = {}, set(), {}
        child._events = collections.deque(maxlen=MAX_EVENTS)
        child.sources, child.notes, child.shared, child.events_added = [], [], [], 0
        child.values_cap, child.workers = 2 * MAX_GROUP_VALUES, 1
        return child

    def partial(self, stats: SourceStats) -> dict[str, Any]:
        """What a worker's scanner found, to be merged in file order (``parallel.merge_result``)."""
        return {"aggs": list(self._aggs.items()), "events": list(self._events), "events_added": self.events_added,
                "members": dict(self._members), "stats": stats, "progress_before": set(self._progress_before),
                "with_last": dict(self._with_last)}

    # ------------------------------------------------------------------ reading

    def scan(self, sources: Iterable[Source]) -> Scanner:
        for src in sources:
            if passed(self.deadline):
                stats = src.stats()
                stats.stop(NOT_REACHED)
                stats.errors.append({"kind": "deadline", "message": f"{src.label}: not read, {NOT_REACHED}"})
                self.sources.append(stats.as_dict())
                continue
            self.sources.append(self.scan_source(src).as_dict())
        return self

    def scan_source(self, src: Source) -> SourceStats:
        expect = getattr(self.engine, "expect", None)
        if expect is not None:  # the engine may pick its way by the input's size
            expect(src.size_hint())
        if self.workers > 1:
            from doctor.logscan.parallel import scan_file_parallel
            stats = scan_file_parallel(self, src)
            if stats is not None:
                return stats
        return self.scan_sequential(src)

    def scan_sequential(self, src: Source) -> SourceStats:
        """Read ``src`` block by block in this process."""
        stats = src.stats()
        try:
            stream = src.open(stats, deadline=self.deadline)
        except DeadlineReached:  # a pipe or FIFO that gave nothing (no writer) before the deadline
            stats.read = True
            stats.stop(STOPPED_AT_DEADLINE)
            stats.errors.append({"kind": "deadline", "message": f"{src.label}: nothing came before the time limit"})
            src.close()
            return stats
        except Exception as exc:  # unreadable input is a note, never a crash
            stats.errors.append({"kind": type(exc).__name__, "message": open_error_note(exc, src.label)})
            src.close()
            return stats
        stats.read = True
        clock = _Clock(src.kind)
        mode: str | None = None
        first = True
        try:
            kwargs: dict[str, Any] = {"block_size": self.block_size} if self.block_size else {}
            for block in read_blocks(stream, stats, deadline=self.deadline, **kwargs):
                if first:
                    mode = is_structured(block[:4096])
                    first = False
                self.scan_block(block, mode, src, stats, clock)
                del block  # one block held at a time: not this one while the next is read
        except Exception as exc:  # a reader bug must not lose the other sources
            stats.stop(f"reading failed: {type(exc).__name__}: {exc}")
            stats.errors.append({"kind": type(exc).__name__, "message": f"{src.label}: {exc}"})
        finally:
            src.close()
        err = getattr(src, "stderr", "")
        if err:
            stats.notes.append(err.splitlines()[0][:300])
        return stats

    def scan_block(self, block: bytes, mode: str | None, src: Source, stats: SourceStats, clock: _Clock) -> None:
        """One block of whole lines: counted, cleaned of NUL bytes, searched, its matches recorded."""
        stats.lines += block.count(b"\n")
        if b"\x00" in block:
            stats.nul_bytes += block.count(b"\x00")
            block = block.replace(b"\x00", b"")
        if not stats.invalid_utf8 and not block.isascii() and not valid_utf8(block):
            stats.invalid_utf8 = True
        if mode:
            self._scan_structured(block, src, stats, clock)
        else:
            self._scan_raw(block, src, stats, clock)

    def _scan_raw(self, block: bytes, src: Source, stats: SourceStats, clock: _Clock) -> None:
        """Confirm and record the candidate lines in file order, so that the clock only moves forward."""
        clock.new_block(block)
        hits: dict[int, list[tuple[int, re.Match[str] | None]]] = {}
        for start, eidx in self.engine.candidates(block):
            hits.setdefault(start, []).append((self._engine_map[eidx], None))
        extra: dict[int, int] = {}  # marker pattern -> lines holding its text beyond the confirmed ones
        for idx, marked, count in self._marker_hits(block):
            for start, _text, m in marked:
                hits.setdefault(start, []).append((idx, m))
            extra[idx] = count - len(marked)
        last_agg: dict[int, _Agg] = {}
        for start in sorted(hits):
            text = self._line_text(block, start)
            line: Line | None = None
            for idx, m in hits[start]:
                m = m or self.confirm[idx].search(text)
                if not m:
                    continue
                if line is None:
                    line = self._parse(block, start, text, src, stats, clock)
                    if line is None:
                        break  # could not be parsed: skipped and counted
                agg = self._record(idx, m, text, line, src)
                if agg is not None and idx in extra:
                    last_agg[idx] = agg
        for idx, agg in last_agg.items():
            if extra[idx] > 0:
                agg.count += extra[idx]
        clock.before(len(block))  # carry the block's last time into the next block
        clock.new_block(b"")  # and let go of this one: the next is read while it would still be held

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

    @staticmethod
    def _parse(block: bytes, start: int, text: str, src: Source, stats: SourceStats, clock: _Clock) -> Line | None:
        """The line at ``start``, untimed lines taking the time of the timed line before them."""
        before = clock.before(start)
        line = parse_or_skip(text, src.kind, stats)
        end = block.find(b"\n", start)
        if line is None:
            clock.seen(end + 1 if end >= 0 else len(block), Line(""))
            return None
        if line.ts is None and before is not None:
            line.time, line.ts = before
        clock.seen(end + 1 if end >= 0 else len(block), line)
        return line

    def _scan_structured(self, block: bytes, src: Source, stats: SourceStats, clock: _Clock) -> None:
        lines: list[Line] = []
        for raw in block.split(b"\n")[:-1]:
            line = parse_or_skip(raw.decode("utf-8", "replace"), src.kind, stats)
            if line is None:
                continue
            if line.ts is None:
                if clock.last is not None:
                    line.time, line.ts = clock.last
            else:
                clock.last = (line.time, line.ts)
            lines.append(line)
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
        groups = {k: v[:SAMPLE_CAP] for k, v in m.groupdict().items() if v is not None}
        if "self_member" in groups:
            self._members.setdefault(src.label, groups["self_member"])
        agg = self._agg_for(idx, groups, line, src.label)
        agg.count += 1
        if p.persist is not None:
            self._persist_line(agg, idx, line, src.label)
        if line.time is not None:
            if agg.first is None:
                agg.first, agg.first_ts = line.time, line.ts
            agg.last, agg.last_ts = line.time, line.ts
        if agg.folded is not None:
            self._fold(agg, p, groups, text, line)
        elif agg.count == 1 or groups != agg.raw_groups:
            # the sample and its groups follow the latest distinct values: the current state.
            # Texts are kept as read; redaction is applied once, when the results are made.
            if agg.count == 1:
                agg.head_groups = groups
            else:
                agg.changes += 1
            agg.raw_groups = groups
            agg.sample = text.strip()[:SAMPLE_CAP]
            agg.level = line.level
            agg.groups = groups
            for k, v in groups.items():
                seen = agg.values.setdefault(k, [])
                if len(seen) < self.values_cap and v not in seen:
                    seen.append(v)
        if p.event:
            self._add_event(p, line, text, groups, src)
        if self._progress_of or self._with_of:
            self._progress_line(p, line, src.label)
        return agg

    @property
    def silence(self) -> float:
        """A gap this long ends a run of a persist pattern (the loop stopped; a later line is a new run)."""
        return self._silence

    def _persist_line(self, agg: _Agg, idx: int, line: Line, source: str) -> None:
        spec = self.patterns[idx].persist
        assert spec is not None
        if agg.runs is None:
            agg.runs = Runs(head_open=(source, idx) not in self._progress_before)
            self._persist_aggs.setdefault((source, idx), []).append(agg)
        with_last = self._with_last.get((source, spec.with_pattern)) if spec.with_pattern else None
        agg.runs.add(line.time, line.ts, spec, self.silence, with_last, self.loop_seconds)

    def _progress_line(self, p: LogPattern, line: Line, source: str) -> None:
        """A line that ends the runs of persist patterns (progress), or that they need beside them (with)."""
        for name in (p.id, p.event):
            for idx in self._progress_of.get(name or "", ()):
                aggs = self._persist_aggs.get((source, idx))
                if aggs is None:
                    self._progress_before.add((source, idx))
                for a in aggs or ():
                    assert a.runs is not None
                    a.runs.end("progress")
        if p.id in self._with_of and line.ts is not None:
            self._with_last[(source, p.id)] = line.ts

    def _agg_for(self, idx: int, groups: dict[str, Any], line: Line, source: str) -> _Agg:
        """The aggregate a line counts in. Lines that differ in a required group (e.g. which user
        failed) are kept apart, so the diagnosis can judge each one against this node's values; past
        ``MAX_DISTINCT`` such values, new ones share one fold-over aggregate per (source, pattern)."""
        p = self.patterns[idx]
        key = (source, idx, tuple(groups.get(g) for g in p.require))
        agg = self._aggs.get(key)
        if agg is not None:
            return agg
        if p.require and self._distinct[(source, idx)] >= MAX_DISTINCT and not self._fits_node(idx, groups):
            key = (source, idx, "folded")
            agg = self._aggs.get(key)
            if agg is None:
                agg = self._aggs[key] = _Agg(p, source, first=line.time, first_ts=line.ts, idx=idx, folded=set())
            return agg
        if p.require:
            self._distinct[(source, idx)] += 1
        agg = self._aggs[key] = _Agg(p, source, first=line.time, first_ts=line.ts, idx=idx)
        return agg

    def _fits_node(self, idx: int, groups: dict[str, Any]) -> bool:
        """Whether the diagnosis would take this line as this node's (see engine ``_meets_requirements``);
        without the node's values every line does, and any may be folded."""
        wanted = self._wanted.get(idx)
        if not wanted:
            return False
        return all(groups.get(g) is None or str(groups[g]) == v for g, v in wanted.items())

    def _fold(self, agg: _Agg, p: LogPattern, groups: dict[str, Any], text: str, line: Line) -> None:
        """Count a line in the fold-over aggregate: its distinct values, a few of them by name, one sample."""
        value = hash(tuple(groups.get(g) for g in p.require))
        if value not in agg.folded:  # type: ignore[operator]
            if len(agg.folded) < MAX_FOLDED_TRACKED:  # type: ignore[arg-type]
                agg.folded.add(value)  # type: ignore[union-attr]
            else:
                agg.folded_more = True
            for k in p.require:
                v = groups.get(k)
                seen = agg.values.setdefault(k, [])
                if v is not None and len(seen) < MAX_GROUP_VALUES:
                    seen.append(v)
        if agg.count == 1:
            agg.sample = text.strip()[:SAMPLE_CAP]
            agg.level = line.level
            # the required groups are left out: they differ line by line (see matches())
            agg.groups = {k: v for k, v in groups.items() if k not in p.require}

    def _add_event(self, p: LogPattern, line: Line, text: str, groups: dict[str, Any], src: Source) -> None:
        prev = self._events[-1] if self._events else None
        if prev and prev["pattern"] == p.id and prev["source"] == src.label:
            prev["count"] += 1
            prev["last"] = line.time
            return
        self.events_added += 1
        self._events.append({
            "time": line.time, "ts": line.ts, "event": p.event, "playbook": p.playbook, "pattern": p.id,
            "source": src.label, "message": line.message.strip()[:SAMPLE_CAP],
            "groups": {k: str(v) for k, v in groups.items()}, "count": 1, "last": None,
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
            persist = None
            if p.persist is not None:
                persist, transient = describe(agg.runs, p.persist, self.loop_seconds, self.loop_from)
                quiet_reason = quiet_reason or transient
            m: dict[str, Any] = {
                "playbook": p.playbook, "pattern": p.id, "log": p.log, "source": agg.source, "count": agg.count,
                "first": agg.first, "last": agg.last, "first_ts": agg.first_ts, "last_ts": agg.last_ts,
                "sample": self.redact(agg.sample), "level": agg.level,
                "groups": {k: self.redact(v) for k, v in agg.groups.items()},
                "values": {k: list(dict.fromkeys(self.redact(v) for v in vs)) for k, vs in agg.values.items()},
                "benign": quiet_reason is not None,
            }
            if agg.folded is not None:
                self._describe_fold(m, agg)
            if quiet_reason:
                m["quiet_reason"] = quiet_reason
            if persist is not None:
                m["persist"] = persist
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

    def _describe_fold(self, m: dict[str, Any], agg: _Agg) -> None:
        """A fold-over match: "and N more" in its sample; its required groups marked so that the
        diagnosis neither takes them for this node's values nor leaves them out when those are known."""
        p = agg.pattern
        n = len(agg.folded or ())
        more = f"more than {n}" if agg.folded_more else str(n)
        names = "/".join(p.require)
        m["folded"] = {"distinct": n, "more_than": agg.folded_more, "groups": list(p.require),
                       "kept_apart": MAX_DISTINCT}
        m["sample"] = f"{m['sample']} [and {more} more distinct {names} value(s) like it, {agg.count} line(s)]"
        wanted = self._wanted.get(agg.idx) or {}
        for g in p.require:
            if g in wanted:  # folded lines never fit this node (those are kept apart)
                m["groups"] = dict(m["groups"], **{g: f"<{more} other values>"})

    def events(self) -> list[dict[str, Any]]:
        evs = sorted(self._events, key=lambda e: (e["ts"] is None, e["ts"] or 0.0))
        merged: list[dict[str, Any]] = []
        for e in evs:
            prev = merged[-1] if merged else None
            if prev and prev["pattern"] == e["pattern"] and prev["source"] == e["source"]:
                prev["count"] += e["count"]
                prev["last"] = e["last"] or e["time"]
                continue
            merged.append(dict(e, message=self.redact(e["message"]),
                                 groups={k: self.redact(v) for k, v in e["groups"].items()}))
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
