"""The message catalogue: what Patroni, its DCS clients and PostgreSQL can print, and what each message means.

``<source>.tsv`` files are facts extracted from the released programs by
``scripts/build-message-catalogue.py`` (never edited by hand); ``mapping.yml`` says for each
message which problem it reveals, which timeline event it marks, or why it is benign. See
docs/message-catalogue.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CATALOGUE_DIR = Path(__file__).resolve().parent
COLUMNS = ("source", "kind", "level", "message", "style", "versions", "origins")


@dataclass(frozen=True)
class Message:
    """One row of a catalogue file."""

    source: str  # patroni | python-etcd | urllib3 | postgres | pg_basebackup | pg_rewind
    kind: str  # log | exception | raise | msgid | string
    level: str  # the log level for log calls, '-' where the program does not say
    message: str  # the format text as the program holds it
    style: str  # % (printf), {} (str.format / f-string), - (printed as written)
    versions: tuple[str, ...]
    origins: tuple[str, ...]  # modules (Python) or catalogue files / binaries (PostgreSQL)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_UNESCAPE = re.compile(r"\\(.)")


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), text)


def write_tsv(path: Path, rows: Iterable[Message]) -> int:
    """Write rows sorted and deduplicated; returns how many. Tabs, newlines and backslashes are escaped."""
    uniq = sorted(set(rows), key=lambda m: (m.source, m.message, m.kind, m.level, m.style, m.versions, m.origins))
    lines = ["\t".join(COLUMNS)]
    for m in uniq:
        lines.append("\t".join((m.source, m.kind, m.level, _escape(m.message), m.style, ",".join(m.versions),
                                ",".join(m.origins))))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(uniq)


def read_tsv(path: Path) -> list[Message]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path}: columns {header} are not {COLUMNS}")
        for line in fh:
            f = line.rstrip("\n").split("\t")
            rows.append(Message(f[0], f[1], f[2], _unescape(f[3]), f[4], tuple(x for x in f[5].split(",") if x),
                                tuple(x for x in f[6].split(",") if x)))
    return rows


def load_catalogue(directory: Path = CATALOGUE_DIR) -> list[Message]:
    """Every row of every ``*.tsv`` in the catalogue directory."""
    out: list[Message] = []
    for path in sorted(directory.glob("*.tsv")):
        out.extend(read_tsv(path))
    return out


# ---------------------------------------------------------------- what each message means

MAPPING_FILE = CATALOGUE_DIR / "mapping.yml"
TARGET_KINDS = ("problem", "event", "benign")


@dataclass(frozen=True)
class Mapped:
    """What one catalogue message means: ``problem:<playbook id>``, ``event:<timeline event>`` or
    ``benign`` with its reason. ``args`` fill the message's placeholders when it is rendered into a
    concrete line (the defaults are neutral words and numbers)."""

    source: str
    message: str
    target: str  # problem | event | benign
    value: str  # the playbook id, the event name, or the benign reason
    args: tuple[str, ...] = ()


def load_mapping(path: Path = MAPPING_FILE) -> list[Mapped]:
    """``mapping.yml``: source -> ``problem:<id>`` / ``event:<name>`` / ``benign`` -> messages.

    Under ``benign`` the messages are grouped by their one-line reason. A message is written as its
    exact format text, or as ``{message: ..., args: [...]}`` when it needs particular values to render."""
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: list[Mapped] = []
    for source, targets in doc.items():
        for key, entries in (targets or {}).items():
            kind, _, value = str(key).partition(":")
            if kind not in TARGET_KINDS:
                raise ValueError(f"{path}: {source}: '{key}' is not problem:<id>, event:<name> or benign")
            groups = entries.items() if kind == "benign" else [(value, entries)]
            for val, items in groups:
                for item in items or []:
                    if isinstance(item, dict):
                        out.append(Mapped(source, str(item["message"]), kind, str(val),
                                          tuple(str(a) for a in item.get("args") or ())))
                    else:
                        out.append(Mapped(source, str(item), kind, str(val)))
    return out


def required(m: Message) -> bool:
    """Must this message be mapped? Everything a program prints above DEBUG, every exception text, every
    state line of Patroni's loop and every PostgreSQL message kept by the domain filter."""
    return m.level != "DEBUG"


# ---------------------------------------------------------------- rendering a format into a line

_PRINTF = re.compile(r"%(?:\((?P<name>\w+)\))?(?:\d+\$)?[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
                     r"(?:hh|h|ll|l|L|z|j|t|q|I64)?(?P<conv>[diouxXeEfFgGcsrpma%])")
_DEFAULTS = {"d": "1", "i": "1", "u": "1", "o": "1", "x": "3000060", "X": "3000060", "e": "1.0", "E": "1.0",
             "f": "1.0", "F": "1.0", "g": "1", "G": "1", "c": "x", "s": "node1", "r": "'node1'", "a": "node1",
             "p": "0x7f00", "m": "No such file or directory"}


def render(message: str, style: str, args: tuple[str, ...] = ()) -> str:
    """A concrete line from a format text: placeholders filled with ``args`` in order, then with defaults."""
    queue = list(args)

    def take(default: str) -> str:
        return queue.pop(0) if queue else default

    if style in ("%", "printf"):
        def sub(m: re.Match[str]) -> str:
            conv = m.group("conv")
            return "%" if conv == "%" else take(_DEFAULTS[conv])
        return _PRINTF.sub(sub, message)
    if style == "{}":
        import string

        out = []
        for literal, field, spec, _conv in string.Formatter().parse(message):
            out.append(literal)
            if field is not None:
                if spec and spec[-1:] in "fdeg%":
                    out.append(take(format(1.0 if spec[-1] in "feg%" else 1, spec)))
                else:
                    out.append(take("node1"))
        return "".join(out)
    return message


_CLASS_OF = re.compile(r":([\w.]+)$")


def as_log_line(m: Message, args: tuple[str, ...] = (), error: bool = True) -> str:
    """The message as its program writes it into a log: Patroni's ``%(asctime)s %(levelname)s:`` prefix,
    PostgreSQL's ``log_line_prefix``, a tool's ``name: error:``, or an exception's last traceback line.

    The .mo catalogues do not say at which level a tool prints a message; ``error=False`` renders it as
    the tool prints information (``pg_basebackup: base backup completed``)."""
    text = render(m.message, m.style, args)
    if m.kind == "raise":
        cls = _CLASS_OF.search(m.origins[0]) if m.origins else None
        name = cls.group(1) if cls and cls.group(1) != "message" else "Exception"
        return f"{name.split('.')[-1]}: {text}"
    if m.source in ("pg_basebackup", "pg_rewind"):
        return f"{m.source}: error: {text}" if error else f"{m.source}: {text}"
    if m.source == "postgres":
        level = m.level if m.level not in ("-", "") else "LOG"
        return f"2026-01-10 10:00:00.000 UTC [4242] {level}:  {text}"
    return f"2026-01-10 10:00:00,000 {m.level if m.level != '-' else 'ERROR'}: {text}"
