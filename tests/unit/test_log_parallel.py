"""A file read by several processes gives the same answers as one pass, with either engine."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from doctor.logscan import patterns_from
from doctor.logscan.engines import hyperscan_available
from doctor.logscan.scan import MAX_DISTINCT, Scanner
from doctor.logscan.sources import FileSource

SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"
PATTERNS = patterns_from()
ENGINES = ["re"] + (["hyperscan"] if hyperscan_available() else [])


def _answers(path: Path, workers: int, engine: str, block_size: int, **kw) -> tuple:
    s = Scanner(PATTERNS, engine=engine, workers=workers, block_size=block_size, **kw).scan([FileSource(str(path))])
    return s.matches(), s.events(), s.sources, s.shared


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.log")), ids=lambda p: p.name)
def test_parallel_equals_sequential_on_every_sample(path: Path) -> None:
    """One process with the pure engine against two with the best one: both differences at once."""
    one = _answers(path, 1, "re", 1024)
    two = _answers(path, 2, ENGINES[-1], 1024)
    assert two[:3] == one[:3]
    if path.stat().st_size >= 8 * 1024:
        assert two[3] == [str(path)], "a file of many blocks is shared out"


def _mixed_log(path: Path, size: int, seed: int = 3) -> None:
    """Sample lines with heartbeats, runs of untimed lines (tracebacks) and a few users failing to log in."""
    rnd = random.Random(seed)
    samples = [ln for f in sorted(SAMPLES.glob("*.log")) for ln in f.read_text(errors="replace").splitlines() if ln]
    out, written, sec = [], 0, 0
    while written < size:
        sec += 1
        t = f"2026-11-01 {(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d},{sec % 1000:03d}"
        r = rnd.random()
        if r < 0.1:
            line = rnd.choice(samples)
        elif r < 0.13:
            line = "\n".join(["Traceback (most recent call last):", '  File "x.py", line 1', "OSError: boom"]
                             * rnd.randint(1, 40))
        else:
            line = f"{t} INFO: no action. I am (node2), a secondary, and following a leader (node1)"
        out.append(line)
        written += len(line) + 1
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("engine", ENGINES)
def test_parallel_equals_sequential_on_a_generated_log(tmp_path: Path, engine: str) -> None:
    log = tmp_path / "mixed.log"
    _mixed_log(log, 3 * 1024 * 1024)
    one = _answers(log, 1, "re", 64 * 1024)
    two = _answers(log, 2, engine, 64 * 1024)
    assert two[3] == [str(log)]
    assert one[0] and one[1], "the generated log has matches and events"
    assert two[:3] == one[:3]
    since = one[0][len(one[0]) // 2]["first_ts"] or 0.0
    assert _answers(log, 2, engine, 64 * 1024, since=since)[:3] == _answers(log, 1, engine, 64 * 1024, since=since)[:3]


def test_more_distinct_values_than_kept_apart_are_read_in_one_process(tmp_path: Path) -> None:
    lines = [f"2026-11-01 10:00:{i % 60:02d}.000 UTC [{100 + i}] FATAL:  password authentication failed for "
             f'user "user{i:03d}"' for i in range(4 * MAX_DISTINCT)]
    log = tmp_path / "auth.postgres.log"
    log.write_text("\n".join(lines * 40) + "\n")
    one = _answers(log, 1, "re", 4096)
    two = _answers(log, 2, "re", 4096)
    assert two[3] == [] and two[:3] == one[:3]
    assert any(m.get("folded") for m in one[0])


def test_literal_prefilter_finds_the_same_lines_with_and_without_the_automaton() -> None:
    from doctor.logscan.engines import LiteralEngine

    engine = LiteralEngine([p.regex for p in PATTERNS])
    block = b"".join(f.read_bytes() for f in sorted(SAMPLES.glob("*.log")))
    with_automaton = engine.candidates(block)
    engine._automaton = None  # the bytes.find loop, as where pyahocorasick is not installed
    assert with_automaton and engine.candidates(block) == with_automaton


@pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed")
def test_auto_engine_takes_hyperscan_part_way_with_the_same_answers(tmp_path: Path, monkeypatch) -> None:
    """``auto`` starts with the literal prefilter and hands over to Hyperscan past a size: a small log is
    searched without compiling Hyperscan's database, a big one with it, and the answers never change."""
    from doctor.logscan import engines

    log = tmp_path / "mixed.log"
    _mixed_log(log, 512 * 1024)
    small = Scanner(PATTERNS, engine="auto", workers=1, block_size=16 * 1024).scan([FileSource(str(log))])
    assert small.engine.name == "re", "512 KiB stays below the switch"
    monkeypatch.setattr(engines, "AUTO_SWITCH_BYTES", 200 * 1024)
    sized = Scanner(PATTERNS, engine="auto", workers=1, block_size=16 * 1024).scan([FileSource(str(log))])
    assert sized.engine.name == "hyperscan", "a file's size is known: Hyperscan from its first byte"
    monkeypatch.setattr(FileSource, "size_hint", lambda self: 0)  # a stream of unknown size switches as it reads
    unknown = Scanner(PATTERNS, engine="auto", workers=1, block_size=16 * 1024).scan([FileSource(str(log))])
    assert unknown.engine.name == "hyperscan"
    pure = Scanner(PATTERNS, engine="re", workers=1, block_size=16 * 1024).scan([FileSource(str(log))])
    for got in (small, sized, unknown):
        assert got.matches() == pure.matches() and got.events() == pure.events()


@pytest.mark.parametrize("trailing_newline", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_block_bounds_are_where_read_blocks_ends_its_blocks(tmp_path: Path, seed: int, trailing_newline: bool) -> None:
    """Blocks much larger than the line cap (as in real use: 8 MiB blocks, 64 KiB lines): the cut-up that the
    workers get is exactly the one-process reader's, the file's last line included."""
    import os

    from doctor.logscan.parallel import block_bounds
    from doctor.logscan.sources import read_blocks

    rnd = random.Random(seed)
    text = "\n".join("x" * rnd.randint(0, 200) for _ in range(3000)) + ("\n" if trailing_newline else "")
    log = tmp_path / "lines.log"
    log.write_text(text)
    fd = os.open(log, os.O_RDONLY)
    try:
        bounds = block_bounds(fd, log.stat().st_size, block_size=8192, line_cap=256)
    finally:
        os.close(fd)
    with open(log, "rb") as fh:
        sizes = [len(b) for b in read_blocks(fh, FileSource(str(log)).stats(), block_size=8192, line_cap=256)]
    if not trailing_newline:
        sizes[-1] -= 1  # read_blocks ends the file's last line with the newline it lacks
    assert bounds is not None and bounds == [sum(sizes[:i + 1]) for i in range(len(sizes))]


def test_a_file_of_many_real_sized_blocks_is_shared_out(tmp_path: Path) -> None:
    """The default line cap (64 KiB) with blocks of 256 KiB: the file is read by several processes."""
    log = tmp_path / "mixed.log"
    _mixed_log(log, 3 * 1024 * 1024)
    one = _answers(log, 1, "re", 256 * 1024)
    two = _answers(log, 2, ENGINES[-1], 256 * 1024)
    assert two[3] == [str(log)]
    assert two[:3] == one[:3]


@pytest.mark.parametrize("slice_size", [7, 64, 4096])
def test_literal_prefilter_finds_the_same_lines_a_slice_at_a_time(monkeypatch, slice_size: int) -> None:
    """The automaton searches a block in slices (memory); literals cut by a slice's edge are still found once."""
    from doctor.logscan import engines

    engine = engines.LiteralEngine([p.regex for p in PATTERNS])
    block = b"".join(f.read_bytes() for f in sorted(SAMPLES.glob("*.log")))
    whole = engine.candidates(block)
    monkeypatch.setattr(engines, "SLICE", slice_size)
    assert whole and engine.candidates(block) == whole
