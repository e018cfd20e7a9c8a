"""How a shell would read a rendered fix: its words and the operators it would act on.

Shared by the fix-safety property test (tests/unit/test_fix_safety.py) and the fuzz tests, which
check the same invariant end to end."""

from __future__ import annotations

import re
import shlex

from doctor.playbooks import CODE_RE


def code_lines(text: str) -> list[tuple[str, str]]:
    """(kind, line) for every line of a fenced code block and every inline code span."""
    lines = [("fence", ln) for block in CODE_RE.findall(text) for ln in block.splitlines()]
    prose = CODE_RE.sub("", text).replace("\\`", "")  # an escaped backtick is text, not code
    lines += [("inline", span) for span in re.findall(r"`([^`\n]+)`", prose)]
    return lines


def words(line: str) -> list[str]:
    """Shell words and operators (``;``, ``|``, ``&&``, ``(``, redirections) as separate tokens."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


def active(line: str) -> list[str]:
    """The shell operators and expansions in a line that the shell would act on (outside quotes,
    or ``$``/backtick inside double quotes), in order."""
    found: list[str] = []
    quote, i = "", 0
    while i < len(line):
        ch = line[i]
        if quote == "'":
            quote = "" if ch == "'" else quote
        elif ch == "\\":
            i += 1
        elif quote == '"' and ch == '"':
            quote = ""
        elif ch in "$`":
            found.append(line[i:i + 2] if line.startswith("$(", i) else ch)
        elif not quote and ch in "'\"":
            quote = ch
        elif not quote and ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break  # a comment
        elif not quote and ch in ";|&<>\n":
            found.append(ch)
        i += 1
    return found
