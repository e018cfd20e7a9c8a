"""Multi-pattern search over blocks of log lines: Hyperscan when installed, else a literal prefilter.

Both engines answer the same question — which (line, pattern) pairs *may* match — and
both over-approximate; the scanner confirms every candidate with the pattern's Python
regex on the line itself. So the two engines give identical results by construction,
and the test suite checks it on every sample log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from doctor.logscan.regex import required_literals, to_hyperscan


class Engine(Protocol):
    name: str

    def candidates(self, block: bytes) -> list[tuple[int, int]]:
        """Sorted, unique (line start offset, pattern index) pairs worth confirming."""


class LiteralEngine:
    """Pure Python: find each pattern's required literal, then let the scanner confirm with ``re``.

    With ``pyahocorasick`` installed every literal is found in one pass over the block (an
    Aho-Corasick automaton, in C); without it, one ``bytes.find`` pass per literal (C speed each).
    """

    name = "re"

    def __init__(self, regexes: Sequence[str]) -> None:
        self._literals: list[list[bytes]] = []
        for rx in regexes:
            lits = required_literals(rx)
            if not lits:
                raise ValueError(f"pattern has no literal text to search for: {rx!r}")
            self._literals.append([lit.encode("utf-8") for lit in lits])
        self._automaton = _automaton(self._literals)

    def candidates(self, block: bytes) -> list[tuple[int, int]]:
        if self._automaton is not None:
            automaton, owners, longest = self._automaton
            found: list[tuple[int, int]] = []
            # A slice at a time (each starting early enough to hold a literal that ends in it), so that the
            # text and the hits of an 8 MiB block never exist whole. latin-1 maps each byte to one character:
            # offsets in a slice's text are offsets in the block from where the slice starts.
            for lo in range(0, len(block), SLICE):
                start = max(0, lo - longest + 1)
                text = block[start:lo + SLICE].decode("latin-1")
                hits = [(start + end + 1, idx) for end, lit in automaton.iter(text) if start + end >= lo
                        for idx in owners[lit]]
                found.extend(lines_of(block, hits))
            return sorted(set(found))
        found: set[tuple[int, int]] = set()
        find, rfind = block.find, block.rfind
        for idx, lits in enumerate(self._literals):
            for lit in lits:
                pos = find(lit)
                while pos >= 0:
                    start = rfind(b"\n", 0, pos) + 1
                    found.add((start, idx))
                    end = find(b"\n", pos)
                    if end < 0:
                        break
                    pos = find(lit, end)
        return sorted(found)


SLICE = 1 << 20  # bytes of a block the literal prefilter decodes and searches at once


def _automaton(literals: list[list[bytes]]) -> tuple[object, list[list[int]], int] | None:
    """An Aho-Corasick automaton of every literal (value: its number), which patterns own each, and the
    longest literal's length; None without pyahocorasick."""
    try:
        import ahocorasick
    except ImportError:
        return None
    numbers: dict[bytes, int] = {}
    owners: list[list[int]] = []
    for idx, lits in enumerate(literals):
        for lit in lits:
            if lit not in numbers:
                numbers[lit] = len(owners)
                owners.append([])
            if idx not in owners[numbers[lit]]:
                owners[numbers[lit]].append(idx)
    automaton = ahocorasick.Automaton()
    for lit, n in numbers.items():
        automaton.add_word(lit.decode("latin-1"), n)
    automaton.make_automaton()
    return automaton, owners, max(map(len, numbers), default=1)


def lines_of(block: bytes, hits: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, unique (line start, pattern) for match ends ``(end offset, pattern)`` given in order of end.

    An engine reports every end of every match (a literal twice on a line, a pattern whose tail can
    stop at several places): the line of each (pattern, line) is looked up once.
    """
    rfind, find = block.rfind, block.find
    found = []
    line_end: dict[int, int] = {}  # pattern -> end of the line of its last hit
    for to, idx in hits:
        if to <= line_end.get(idx, -1):
            continue
        start = rfind(b"\n", 0, to - 1) + 1 if to > 0 else 0  # the line holding byte to-1
        end = find(b"\n", start)
        line_end[idx] = end if end >= 0 else len(block)
        found.append((start, idx))
    return sorted(set(found))


class HyperscanEngine:
    """Hyperscan block mode: one pass over the block for every pattern at once."""

    name = "hyperscan"

    def __init__(self, regexes: Sequence[str]) -> None:
        import hyperscan

        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        flags = hyperscan.HS_FLAG_MULTILINE
        self._db.compile(expressions=[to_hyperscan(rx) for rx in regexes], ids=list(range(len(regexes))),
                         elements=len(regexes), flags=[flags] * len(regexes))
        self._scratch = hyperscan.Scratch(self._db)

    def candidates(self, block: bytes) -> list[tuple[int, int]]:
        hits: list[tuple[int, int]] = []
        append = hits.append

        def on_match(idx: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            append((to, idx))

        self._db.scan(block, match_event_handler=on_match, scratch=self._scratch)
        return lines_of(block, hits) if hits else []


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except Exception:  # an import that fails in any way means: not usable here
        return False
    return True


# Hyperscan compiles the playbooks' ~280 patterns in ~0.2 s of CPU before it reads a byte, and the literal
# prefilter searches a heartbeat-heavy log at ~30 MB/s of CPU: below a few MiB the prefilter is done first.
AUTO_SWITCH_BYTES = 4 * 2**20


class AutoEngine:
    """``auto``: the literal prefilter while the input is small, Hyperscan (where it imports and compiles
    these patterns) once ``AUTO_SWITCH_BYTES`` have been or are about to be searched.

    Both engines over-approximate and the scanner confirms every candidate, so switching part-way
    changes no answer; ``name`` says which engine searched the input (Hyperscan once it took over).
    """

    def __init__(self, regexes: Sequence[str]) -> None:
        self._regexes = list(regexes)
        self._fast: Engine | None = None
        self._tried = False
        self._searched = 0
        try:
            self._literal: Engine | None = LiteralEngine(self._regexes)
        except ValueError:  # a pattern without literal text: only Hyperscan can search for it
            self._literal = None
            self._switch()
            if self._fast is None:
                raise

    @property
    def name(self) -> str:
        return "hyperscan" if self._fast is not None else "re"

    def expect(self, nbytes: int) -> None:
        """``nbytes`` more are coming (a file's size): switch now, before the work is shared out to
        forked processes (each would compile its own database)."""
        if self._searched + nbytes >= AUTO_SWITCH_BYTES:
            self._switch()

    def candidates(self, block: bytes) -> list[tuple[int, int]]:
        self._searched += len(block)
        if self._searched >= AUTO_SWITCH_BYTES:
            self._switch()
        engine = self._fast or self._literal
        assert engine is not None  # __init__ raised otherwise
        return engine.candidates(block)

    def _switch(self) -> None:
        if self._tried:
            return
        self._tried = True
        if hyperscan_available():
            try:
                self._fast = HyperscanEngine(self._regexes)
            except Exception:  # a pattern Hyperscan cannot compile: the prefilter goes on
                self._fast = None


def make_engine(regexes: Sequence[str], name: str = "auto") -> Engine:
    """``hyperscan`` or ``re`` as asked; ``auto`` is ``AutoEngine`` (Hyperscan for big inputs, where installed)."""
    if name == "hyperscan":
        if not hyperscan_available():
            raise RuntimeError("the hyperscan module is not installed (it has wheels for Linux x86_64 and aarch64)")
        return HyperscanEngine(regexes)
    if name == "auto":
        return AutoEngine(regexes)
    return LiteralEngine(regexes)
