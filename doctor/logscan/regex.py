"""Pattern text helpers: the literal a regex cannot match without, and its POSIX ERE / Hyperscan forms.

Playbook patterns are written once, in Python ``re`` syntax with named groups. The
fast path (Hyperscan), the fallback (literal prefilter + ``re``) and the benchmark's
``grep -E`` all derive from that one text, so the three agree on what a pattern means.
Patterns must avoid look-around and back-references (neither Hyperscan nor ERE has them).
"""

from __future__ import annotations

import functools
import re

try:  # Python 3.11+
    import re._parser as _sre_parse  # type: ignore[import-not-found]
    from re import _constants as _sre_c  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]


def required_literals(pattern: str) -> list[str]:
    """Strings of which at least one occurs in every line the pattern matches.

    One string for a plain pattern (its longest contiguous literal run); one per branch
    for a top-level alternation. An empty list means no usable literal was found.
    """
    return list(_required_literals(pattern))


@functools.lru_cache(maxsize=1024)  # the scanner and its engine both ask, and parsing is the cost
def _required_literals(pattern: str) -> tuple[str, ...]:
    parsed = _sre_parse.parse(pattern)
    items = list(parsed)
    if len(items) == 1 and items[0][0] is _sre_c.BRANCH:
        out = []
        for alt in items[0][1][1]:
            lit = _longest_run(list(alt))
            if not lit:
                return ()
            out.append(lit)
        return tuple(out)
    lit = _longest_run(items)
    return (lit,) if lit else ()


def _longest_run(items: list) -> str:
    best = ""
    run: list[str] = []

    def flush() -> None:
        nonlocal best, run
        s = "".join(run)
        if len(s) > len(best):
            best = s
        run = []

    for op, av in items:
        if op is _sre_c.LITERAL:
            run.append(chr(av))
        elif op is _sre_c.SUBPATTERN:
            sub = list(av[-1])
            if all(o is _sre_c.LITERAL for o, _ in sub):
                run.extend(chr(a) for _, a in sub)
            else:
                flush()
                inner = _longest_run(sub)
                if len(inner) > len(best):
                    best = inner
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT) and av[0] >= 1:
            flush()
            inner = _longest_run(list(av[2]))
            if len(inner) > len(best):
                best = inner
        elif op is _sre_c.AT:
            continue
        else:
            flush()
    flush()
    return best


_CLASS_ERE = {"d": "[0-9]", "D": "[^0-9]", "s": "[[:space:]]", "S": "[^[:space:]]", "w": "[[:alnum:]_]",
              "W": "[^[:alnum:]_]"}
_CLASS_IN_BRACKET = {"d": "0-9", "s": "[:space:]", "w": "[:alnum:]_"}
_ERE_KEEP_ESCAPED = set(".[]()*+?{}|^$\\")


def to_ere(pattern: str) -> str:
    """The pattern as a POSIX extended regex for ``grep -E`` (same matches on a line)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_bracket = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if in_bracket:
                if nxt in _CLASS_IN_BRACKET:
                    out.append(_CLASS_IN_BRACKET[nxt])
                elif nxt in "]\\":
                    out.append("\\" + nxt if nxt == "\\" else nxt)  # placed by caller order
                else:
                    out.append(nxt)
            elif nxt in _CLASS_ERE:
                out.append(_CLASS_ERE[nxt])
            elif nxt == "b":
                out.append("\\b")
            elif nxt in _ERE_KEEP_ESCAPED:
                out.append("\\" + nxt)
            elif nxt == "t":
                out.append("\t")
            elif nxt == "n":
                raise ValueError("patterns match single lines; \\n is not allowed")
            else:
                out.append(nxt)
            i += 2
            continue
        if in_bracket:
            if c == "]" and not (out and out[-1] in ("[", "[^")):
                in_bracket = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_bracket = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
            else:
                out.append("[")
                i += 1
            continue
        if c == "(" and pattern.startswith("(?", i):
            if pattern.startswith("(?P<", i):
                i = pattern.index(">", i) + 1
            elif pattern.startswith("(?:", i):
                i += 3
            else:
                raise ValueError(f"unsupported group syntax at {pattern[i:i + 4]!r}")
            out.append("(")
            continue
        if c in "*+?}" and i + 1 < n and pattern[i + 1] == "?":
            out.append(c)  # lazy quantifiers match the same lines as greedy ones
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


def to_hyperscan(pattern: str) -> bytes:
    """The pattern for Hyperscan: PCRE syntax, named groups made plain (captures are not used)."""
    return _NAMED_GROUP.sub("(?:", pattern).encode("utf-8")
