"""Safe substitution of values into a playbook's Markdown: shell-quoted in code, plain text in prose.

A fix is copied and run as root, so a value that reaches a command must stay one shell word
whatever it contains. Playbooks do not quote by hand: while a template renders, every ``{{ }}``
output is fenced with private-use marks (``finalize``); afterwards ``place_values`` walks the
template's own text, knows for each value whether it stands in prose, in a fenced code block or an
inline code span, and inside code whether the shell is unquoted or within ``'…'`` / ``"…"``, and
writes the value the one way that keeps it a single literal word there (in a ``#`` comment, as it is). The quoting state is taken
from the template's text only, never from a value, so no value can change how the next one is read.

In code, a value the shell or the Markdown around it cannot carry as one word (a line break or
other unprintable character, a backtick that would close the code) is not written at all: the
command shows ``<name>`` instead and stays generic.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

_QUOTE, _VERBATIM, _END = "\ue000", "\ue001", "\ue002"
_MARKS = frozenset((_QUOTE, _VERBATIM, _END))
_MARKED = re.compile(f"([{_QUOTE}{_VERBATIM}])(.*?){_END}", re.DOTALL)
_DOUBLE_SPECIAL = set('"$`\\!')
# Values that code builds as whole shell fragments (a command and its quoted arguments): written as they are.
FRAGMENTS = frozenset({"patronictl", "leader_psql", "member_psql", "set_count", "set_not_strict"})


class ShellWords(str):
    """Shell text a builder already quoted word by word (``shell_join``); placed as it is."""


def shell_join(*words: Any) -> ShellWords:
    """Words joined into one command fragment, each shell-quoted."""
    return ShellWords(shlex.join(str(w) for w in words))


def mark(value: Any) -> str:
    """Jinja ``finalize``: fence one output so that ``place_values`` can quote it for where it stands."""
    kind = _VERBATIM if isinstance(value, ShellWords) else _QUOTE
    return f"{kind}{_unmarked(str(value))}{_END}"


def _unmarked(text: str) -> str:
    """A value's own mark characters made harmless (NUL: unprintable, so never placed into code)."""
    return "".join("\x00" if ch in _MARKS else ch for ch in text)


def wrap_fragments(values: dict[str, Any]) -> dict[str, Any]:
    """The values, with the code-built command fragments typed as such."""
    return {k: ShellWords(v) if k in FRAGMENTS and isinstance(v, str) else v for k, v in values.items()}


def prose_text(value: str) -> str:
    """A value shown as text: no line breaks or control characters, no backtick that would open code."""
    out = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)
    return out.replace("`", "\\`")


def code_safe(value: str, inline: bool) -> bool:
    """Can this value stand in code at all (one line, printable, not closing the code around it)?"""
    return value.isprintable() and ("`" not in value if inline else "```" not in value)


def shell_word(value: str, state: str) -> str:
    """The value as one literal shell word, for a place that is unquoted (``""``) or inside ``'`` or ``"``."""
    if state == "'":
        return value.replace("'", "'\"'\"'")
    if state == '"':
        return value if not _DOUBLE_SPECIAL & set(value) else f'"{shlex.quote(value)}"'
    return shlex.quote(value)


class _Scanner:
    """Where the template's own text stands: prose, fenced code or inline code, and the shell quote state."""

    def __init__(self) -> None:
        self.mode = "prose"  # prose | fence | inline
        self.quote = ""  # "" | "'" | '"'
        self.escaped = False
        self.comment = False
        self.last = "\n"

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self.mode != "inline" and text.startswith("```", i):
                self.mode = "prose" if self.mode == "fence" else "fence"
                self.quote, self.escaped, self.comment, self.last = "", False, False, "\n"
                i += 3
                continue
            ch = text[i]
            if self.mode == "prose":
                if ch == "`":
                    self.mode, self.quote, self.escaped, self.comment, self.last = "inline", "", False, False, "\n"
            elif self.mode == "inline" and ch == "`":
                self.mode = "prose"
            else:
                self._shell(ch)
            i += 1

    def _shell(self, ch: str) -> None:
        if self.comment:
            self.comment = ch != "\n"
        elif self.escaped:
            self.escaped = False
        elif self.quote == "'":
            if ch == "'":
                self.quote = ""
        elif ch == "\\":
            self.escaped = True
        elif ch == self.quote:
            self.quote = ""
        elif not self.quote and ch in "'\"":
            self.quote = ch
        elif not self.quote and ch == "#" and self.last in " \t\n":
            self.comment = True  # the rest of the line is read by no one but the reader
        self.last = ch


def place_values(rendered: str, values: dict[str, Any]) -> str:
    """Replace each marked value by its text for where it stands (see the module doc).

    ``values`` are the ones rendered, for the name in the ``<name>`` shown instead of a value that
    code cannot carry.
    """
    names: dict[str, str] = {}
    for k, v in reversed(list(values.items())):
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(item, (str, int)):
                names[_unmarked(str(item))] = k
    scan = _Scanner()
    out: list[str] = []
    pos = 0
    for m in _MARKED.finditer(rendered):
        literal = rendered[pos:m.start()]
        scan.feed(literal)
        out.append(literal)
        kind, value = m.group(1), m.group(2)
        if scan.mode == "prose":
            out.append(prose_text(value))
        elif kind == _VERBATIM and code_safe(value, scan.mode == "inline"):
            out.append(value)
        elif code_safe(value, scan.mode == "inline"):
            out.append(value if scan.comment else shell_word(value, scan.quote))
        else:
            out.append(shell_word(f"<{names.get(value, 'value')}>", scan.quote))
        pos = m.end()
    out.append(rendered[pos:])
    return "".join(out)


def strip_marks(text: str) -> str:
    """The rendered text with the marks removed and values as they are (for a pattern's own values)."""
    return _MARKED.sub(lambda m: m.group(2), text)
