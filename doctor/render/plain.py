"""Collected text is shown, never obeyed: no terminal escape, no rich markup gets through.

A log line, a DCS value or a member name can carry ``ESC[2J`` (clear the screen), an OSC 8
hyperlink, an OSC 52 clipboard write, a C1 CSI (U+009B), a BEL, a carriage return that
overwrites what came before, or rich markup such as ``[bold red]``. ``clean`` strips whole
escape sequences (they are instructions to a terminal, not words) and shows every other
control character as a visible escape (``\\x07``), keeping tabs and newlines; ``escape``
does that and then escapes rich markup, in that order, so a stripped sequence cannot join
two halves of a tag. pgdoctor's own colours are added later by rich, from styles, and are
untouched. rich itself only removes BEL, BS, VT, FF and CR, and lets ESC and C1 through.
"""

from __future__ import annotations

import re
from typing import Any

# ECMA-48 control sequences and strings, 7-bit (ESC ...) and 8-bit (C1) forms:
# CSI ... final byte; OSC/DCS/SOS/PM/APC ... up to BEL or ST (or the end, if unterminated);
# any other two-or-more-byte escape (ESC c, ESC ( B, ESC 7).
_SEQUENCE_RE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# What is left that a terminal would act on: C0 but tab and newline, DEL, C1, and the bidirectional
# overrides that make text read differently from what it is.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\r": "\\r", "\x0b": "\\v", "\x0c": "\\f", "\x08": "\\b", "\x07": "\\a", "\x00": "\\0"}


def _visible(m: re.Match[str]) -> str:
    ch = m.group(0)
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def clean(text: Any) -> str:
    """``text`` as a string a terminal only displays: escape sequences removed, other controls made visible."""
    text = str(text)
    if text.isprintable():  # the common case: nothing to do (tabs and newlines are not "printable")
        return text
    text = text.replace("\r\n", "\n")
    text = _SEQUENCE_RE.sub("", text)
    return _CONTROL_RE.sub(_visible, text)


def escape(text: Any) -> str:
    """Collected text ready to sit inside pgdoctor's rich markup: cleaned, then markup-escaped."""
    from rich.markup import escape as markup_escape  # here: JSON output never loads rich

    return markup_escape(clean(text))
