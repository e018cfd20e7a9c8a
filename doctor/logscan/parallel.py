"""A big plain log file scanned by several processes at once, with the answers of one.

The file is cut into exactly the blocks the sequential reader (``read_blocks``) would make,
and runs of consecutive blocks are taken in turn by this process and ``workers - 1`` forked ones
(one process per core, none of them idle: the memory of one fewer). Each block is processed by
the same code as in one process, so what can differ is only what crosses a range boundary,
and each such thing is carried over or merged exactly:

* the time an untimed line borrows from the timed line before it: before the ranges are
  scanned, the last timed line of each range is found (looking back from its end, each line
  at most once) and handed to the next range as its starting clock;
* counted matches: counts add up; first/last times come from the first/last range that has
  them; the sample and groups follow the same "latest distinct values" rule as one pass;
* the timeline: a range's first event merges with the previous range's last one as it would
  have in one pass; the timeline stays bounded (``MAX_EVENTS``);
* lines that differ in a required group are kept apart up to ``MAX_DISTINCT`` values; when a
  file has more (an authentication flood), which ones are kept apart depends on the order
  they came in, so that file is read again in one process.

A file read in parallel stops at the deadline like any other: the ranges after the first
stopped one are left out, so what is reported is always a prefix of the file.

Only regular, uncompressed files of at least ``MIN_PARALLEL_BLOCKS`` blocks without over-long lines
are shared out; everything else (pipes, .gz, the journal, tails) is read in one process.
Blocks are read with ``os.pread`` rather than mapped: a mapping of a 1 GiB file would count
every page touched in the process's resident size.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from doctor.logscan.deadline import passed
from doctor.logscan.parse import is_structured
from doctor.logscan.sources import BLOCK_SIZE, LINE_CAP, STOPPED_AT_DEADLINE, FileSource, SourceStats

if TYPE_CHECKING:
    from doctor.logscan.scan import Scanner, _Agg

MIN_PARALLEL_BLOCKS = 4  # smaller files are read in one process (a pool costs more than it saves)
RANGES_PER_WORKER = 3  # a few ranges each, so that a worker that finishes early takes another
_PARENT: Scanner | None = None  # the scanner a forked worker works for (inherited through fork)
_TASKS: list[tuple] = []  # the ranges of the file being shared out (inherited through fork)
_NEXT: Any = None  # a shared counter: the next range not taken by any process


def default_workers() -> int:
    """One process per core this process may run on; 1 where fork is unavailable."""
    if not hasattr(os, "fork"):
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def block_bounds(fd: int, size: int, block_size: int = BLOCK_SIZE, line_cap: int = LINE_CAP) -> list[int] | None:
    """Where ``read_blocks`` would end each block of this file (offsets just past a newline; the
    last one is ``size``), or None when it would cut an over-long line (then read in one process)."""
    bounds: list[int] = []
    prev = 0
    window = block_size
    while window < size:
        # read_blocks reads whole block_size chunks and cuts at the last newline read so far
        look = min(line_cap + 1, window - prev)
        tail = os.pread(fd, look, window - look)
        nl = tail.rfind(b"\n")
        if nl >= 0:
            end = window - look + nl + 1
            if end > prev:
                bounds.append(end)
                prev = end
        if window - prev > line_cap:
            return None  # read_blocks would cut an over-long line here
        window += block_size
    if size > prev:
        # The last read: read_blocks gives up to its last newline, then the file's last line when it
        # has no newline of its own (as a block by itself), unless that line is longer than line_cap.
        look = min(line_cap + 1, size - prev)
        nl = os.pread(fd, look, size - look).rfind(b"\n")
        end = size - look + nl + 1 if nl >= 0 else prev
        if size - end > line_cap:
            return None
        if prev < end < size:
            bounds.append(end)
        bounds.append(size)
    return bounds


def scan_file_parallel(scanner: Scanner, src: Any) -> SourceStats | None:
    """Scan ``src`` across processes and merge into ``scanner``; None when it must be read in one."""
    if type(src) is not FileSource or src.tail_bytes or passed(scanner.deadline):
        return None
    block_size = scanner.block_size or BLOCK_SIZE
    try:  # stat before open: opening a FIFO without a writer would block
        st = os.stat(src.path)
        if not stat.S_ISREG(st.st_mode) or st.st_size < MIN_PARALLEL_BLOCKS * block_size:
            return None
        fd = os.open(src.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None  # the one-process reader reports why
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the two looks
            return None
        head = os.pread(fd, 4096, 0)
        if head[:2] == b"\x1f\x8b":
            return None
        bounds = block_bounds(fd, st.st_size, block_size)
        if bounds is None or len(bounds) < 2 or is_structured(head[:bounds[0]][:4096]):
            return None
        starts = [0] + bounds[:-1]
        blocks = list(zip(starts, bounds, strict=False))
        per = -(-len(blocks) // (scanner.workers * RANGES_PER_WORKER))
        ranges = [blocks[i:i + per] for i in range(0, len(blocks), per)]
        carries = _carried_clocks(fd, ranges, src.kind)
    finally:
        os.close(fd)
    results = _run(scanner, src, ranges, carries)
    if results is None or not _mergeable(scanner, src.label, results):
        return None
    stats = src.stats()
    stats.read = True
    scanner.shared.append(src.label)
    for res in results:
        merge_result(scanner, stats, res)
        if res["stats"].stopped:
            break  # what comes after a stopped range is left out: the report is a prefix of the file
    return stats


def _carried_clocks(fd: int, ranges: list[list[tuple[int, int]]], kind: str | None) -> list[Any]:
    """The clock each range starts with: the last timed line before it (None for the first range)."""
    from doctor.logscan.scan import _Clock

    carries: list[Any] = [None]
    for rng in ranges[:-1]:
        clock = _Clock(kind)
        for start, end in reversed(rng):
            block = os.pread(fd, end - start, start).replace(b"\x00", b"")
            clock.new_block(block)
            clock.before(len(block))
            if clock.last is not None:
                break
        carries.append(clock.last if clock.last is not None else carries[-1])
    return carries


def _run(scanner: Scanner, src: FileSource, ranges: list, carries: list) -> list[dict[str, Any]] | None:
    """Every range's result, in file order. This process is one of the workers: it takes ranges from the
    same counter as the ``workers - 1`` forked ones, so the work needs one process fewer in memory."""
    global _PARENT, _TASKS, _NEXT
    ctx = get_context("fork")
    _PARENT = scanner
    _TASKS = [(src.path, src.kind, src.label, rng, carry) for rng, carry in zip(ranges, carries, strict=False)]
    _NEXT = ctx.Value("i", 0)
    try:
        helpers = min(scanner.workers, len(ranges)) - 1
        with ProcessPoolExecutor(max_workers=max(1, helpers), mp_context=ctx) as pool:
            theirs = [pool.submit(_take_ranges) for _ in range(helpers)]
            done = dict(_take_ranges())
            for future in theirs:
                done.update(future.result())
        return [done[i] for i in range(len(_TASKS))]
    except Exception:
        return None
    finally:
        _PARENT, _TASKS, _NEXT = None, [], None


def _take_ranges() -> list[tuple[int, dict[str, Any]]]:
    """Scan the next range not taken yet, until none is left: (range number, its result) of each taken."""
    assert _NEXT is not None
    out = []
    while True:
        with _NEXT.get_lock():
            i = _NEXT.value
            _NEXT.value += 1
        if i >= len(_TASKS):
            return out
        out.append((i, _scan_range(_TASKS[i])))


def _scan_range(task: tuple) -> dict[str, Any]:
    """In a worker: scan a run of blocks with a fresh scanner state; return it, picklable."""
    from doctor.logscan.scan import _Clock

    path, kind, label, rng, carry = task
    parent = _PARENT
    assert parent is not None
    child = parent.fresh()
    src = FileSource(path, kind)
    stats = src.stats()
    clock = _Clock(kind)
    clock.last = carry
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        stats.stop(f"read error: {exc.strerror or exc}; read what came before")
        return child.partial(stats)
    try:
        for start, end in rng:
            if passed(child.deadline):
                stats.stop(STOPPED_AT_DEADLINE)
                break
            block = os.pread(fd, end - start, start)
            stats.bytes += len(block)
            if not block.endswith(b"\n"):
                block += b"\n"  # the file's last line, as read_blocks gives it
            child.scan_block(block, None, src, stats, clock)
            del block  # not held while the next one is read
    except Exception as exc:
        stats.stop(f"reading failed: {type(exc).__name__}: {exc}")
        stats.errors.append({"kind": type(exc).__name__, "message": f"{label}: {exc}"})
    finally:
        os.close(fd)
    return child.partial(stats)


def _mergeable(scanner: Scanner, label: str, results: list[dict[str, Any]]) -> bool:
    """False when merging could differ from one pass: a range folded values, or the ranges together
    keep more than ``MAX_DISTINCT`` values of a required group apart."""
    from doctor.logscan.scan import MAX_DISTINCT

    keys: dict[int, set] = {}
    for res in results:
        for key, agg in res["aggs"]:
            if agg.folded is not None:
                return False
            if agg.pattern.require:
                keys.setdefault(key[1], set()).add(key)
    for idx, ks in keys.items():
        known = {k for k in scanner._aggs if k[0] == label and k[1] == idx}
        if len(ks | known) > MAX_DISTINCT:
            return False
    return True


def merge_result(scanner: Scanner, stats: SourceStats, res: dict[str, Any]) -> None:
    """Add one range's results to ``scanner`` and ``stats`` as if its lines had followed in one pass."""
    from doctor.logscan.persist import see_companion_before
    from doctor.logscan.scan import MAX_GROUP_VALUES

    part: SourceStats = res["stats"]
    for name in ("lines", "bytes", "nul_bytes", "long_lines"):
        setattr(stats, name, getattr(stats, name) + getattr(part, name))
    stats.invalid_utf8 = stats.invalid_utf8 or part.invalid_utf8
    for reason, n in part.unparsed.items():
        for _ in range(n):
            stats.skip_line(reason)
    if part.stopped:
        stats.stop(part.stopped)
    stats.notes += part.notes
    stats.errors += part.errors
    for label, member in res["members"].items():
        scanner._members.setdefault(label, member)
    has_lines = {(key[0], key[1]) for key, _ in res["aggs"]}
    for key in res.get("progress_before", set()) - has_lines:  # progress in the range, no line of the pattern
        for agg in scanner._persist_aggs.get(key, ()):
            assert agg.runs is not None
            agg.runs.end("progress")
    for key, b in res["aggs"]:
        b.pattern = scanner.patterns[key[1]]  # the scanner's own object, not the pickled copy
        a = scanner._aggs.get(key)
        spec = b.pattern.persist
        if b.runs is not None and spec is not None and spec.with_pattern:
            see_companion_before(b.runs, spec, scanner._with_last.get((key[0], spec.with_pattern)),
                                 scanner.loop_seconds, a.runs if a is not None else None)
        if a is None:
            for vs in b.values.values():
                del vs[MAX_GROUP_VALUES:]
            scanner._aggs[key] = b
            if b.runs is not None:
                scanner._persist_aggs.setdefault((key[0], key[1]), []).append(b)
            if b.pattern.require:
                scanner._distinct[(key[0], key[1])] += 1
            continue
        _merge_agg(a, b, scanner.silence)
    for wkey, ts in res.get("with_last", {}).items():
        scanner._with_last[wkey] = max(ts, scanner._with_last.get(wkey, ts))
    _merge_events(scanner, res["events"], res["events_added"])


def _merge_agg(a: _Agg, b: _Agg, silence: float) -> None:
    from doctor.logscan.persist import merge
    from doctor.logscan.scan import MAX_GROUP_VALUES

    if a.runs is not None and b.runs is not None and a.pattern.persist is not None:
        a.runs = merge(a.runs, b.runs, a.pattern.persist, silence)
    a.count += b.count
    if a.first is None and b.first is not None:
        a.first, a.first_ts = b.first, b.first_ts
    if b.last is not None:
        a.last, a.last_ts = b.last, b.last_ts
    if b.changes or b.head_groups != a.raw_groups:  # b's first line changed the groups, or a later one did
        a.sample, a.level, a.groups = b.sample, b.level, b.groups
        a.changes += 1 + b.changes
    a.raw_groups = b.raw_groups
    for k, vs in b.values.items():
        seen = a.values.setdefault(k, [])
        for v in vs:
            if len(seen) < MAX_GROUP_VALUES and v not in seen:
                seen.append(v)


def _merge_events(scanner: Scanner, events: list[dict[str, Any]], added: int) -> None:
    """Append a range's timeline; its first event continues the last one when one pass would have merged them."""
    if not events:
        return
    prev = scanner._events[-1] if scanner._events else None
    first = events[0]
    start = 0
    if prev and added <= len(events) and prev["pattern"] == first["pattern"] and prev["source"] == first["source"]:
        prev["count"] += first["count"]
        prev["last"] = first["last"] if first["count"] > 1 else first["time"]
        start = 1
    scanner._events.extend(events[start:])
    scanner.events_added += added - start
