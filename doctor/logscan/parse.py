"""Make sense of one log line whatever wrote it: time, level, which program, and the message.

Tolerant by design: a line is peeled layer by layer (quote marks of a pasted log, ``> ``; syslog or
journal prefix, then
Patroni's ``%(asctime)s %(levelname)s:`` or PostgreSQL's ``log_line_prefix`` or etcd's
capnslog/zap format), and whatever cannot be recognised is kept as a bare message.
Structured lines (journal ``-o json``, PostgreSQL jsonlog and csvlog, zap JSON) are
decoded first, because their message text is escaped inside the line.

A line that cannot be made sense of at all — JSON nested thousands deep, a timestamp
that is no time (``"ts": 1e20``, NaN, negative) — raises ``ParseError``; the scanner skips
and counts it, and reads on.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import re
from dataclasses import dataclass

MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z, the last second datetime can show


class ParseError(ValueError):
    """A line that is no usable log line; the message says why (it becomes a per-source count)."""


@dataclass
class Line:
    """One parsed line. ``time`` is ISO text as the log gave it; ``ts`` epoch seconds for ordering."""

    message: str
    time: str | None = None
    ts: float | None = None
    level: str | None = None
    kind: str | None = None  # patroni | postgres | etcd | pg_basebackup | pg_rewind | None
    raw: str | None = None  # for decoded structured lines: the text patterns are matched against


_ISO = r"(?P<date>\d{4}-\d\d-\d\d)[T ](?P<clock>\d\d:\d\d:\d\d)(?:[.,](?P<frac>\d+))?"
_TZ = r"(?:\s?(?P<tz>Z|[+-]\d\d:?\d\d|UTC|GMT|[A-Z]{2,5}))?"

_PATRONI = re.compile(_ISO + r" (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL|FATAL): (?P<msg>.*)$", re.S)
_PATRONICTL = re.compile(_ISO + r" - (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) - (?P<msg>.*)$", re.S)
_PG_LEVEL = re.compile(
    r"\b(?P<level>LOG|ERROR|FATAL|PANIC|WARNING|DETAIL|HINT|STATEMENT|CONTEXT|NOTICE|INFO|LOCATION|DEBUG[1-5]?):  ")
_GO_LOG = re.compile(r"^(?P<prog>[a-z]*)(?P<date>\d{4}/\d\d/\d\d) (?P<clock>\d\d:\d\d:\d\d) "
                     r"(?:(?P<level>[A-Z]+): )?(?P<msg>.*)$", re.S)
_ETCD_CAPNS = re.compile(_ISO + r" (?P<level>[DIWECN]) \| (?P<msg>.*)$", re.S)
_SYSLOG = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d) (?P<host>\S+) (?P<ident>[^\s\[:]+)(?:\[\d+\])?: (?P<rest>.*)$",
    re.S)
_JOURNAL_ISO = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) "
    r"(?P<ident>[^\s\[:]+)(?:\[\d+\])?: (?P<rest>.*)$", re.S)
_LEADING_TIME = re.compile(r"^\[?" + _ISO + _TZ)
_EPOCH = re.compile(r"^(?P<epoch>1\d{9})(?:\.(?P<frac>\d+))? ")
# a line quoted in a mail, an issue or a chat ("> ", ">> ", "> > "), or pasted indented before its time
_QUOTED = re.compile(r"^[ \t]*>(?:[ \t]?>)*[ \t]?|^[ \t]+(?=\d{4}-\d\d-\d\d[T ]|[A-Z][a-z]{2} +\d{1,2} \d\d:)")
_CSVLOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [A-Za-z0-9+:-]+,")

_ETCD_LEVELS = {"D": "DEBUG", "I": "INFO", "W": "WARNING", "E": "ERROR", "C": "CRITICAL", "N": "NOTICE"}
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), start=1)}


def ident_kind(ident: str) -> str | None:
    """The kind of program behind a syslog identifier or systemd unit name."""
    ident = ident.lower()
    for key, kind in (("patroni", "patroni"), ("postgres", "postgres"), ("etcd", "etcd"),
                      ("pg_basebackup", "pg_basebackup"), ("pg_rewind", "pg_rewind")):
        if key in ident:
            return kind
    return None


def _stamp(date: str, clock: str, frac: str | None, tz: str | None) -> tuple[str, float | None]:
    iso = f"{date}T{clock}" + (f".{frac[:6]}" if frac else "")
    try:
        dt = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso, None
    offset: _dt.timezone | None = None
    if tz in ("Z", "UTC", "GMT"):
        offset = _dt.timezone.utc
    elif tz and tz[0] in "+-" and tz[1:].replace(":", "").isdigit():
        digits = tz[1:].replace(":", "")
        delta = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        offset = _dt.timezone(delta if tz[0] == "+" else -delta)
    if offset is not None:
        dt = dt.replace(tzinfo=offset)
        iso = dt.isoformat()
    try:
        return iso, dt.timestamp()  # a naive time is taken as this machine's local time
    except (OverflowError, OSError, ValueError):  # year 1 or 9999 at the edge of a time zone
        return iso, None


def epoch_time(value: object) -> tuple[str, float]:
    """ISO text and epoch seconds for a numeric timestamp; ParseError when it is no time at all."""
    try:
        ts = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ParseError("timestamp is not a number") from None
    if not 0.0 < ts <= MAX_EPOCH:  # also false for NaN
        raise ParseError("timestamp out of range")
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(), ts


def _from_match(m: re.Match[str]) -> tuple[str, float | None]:
    gd = m.groupdict()
    return _stamp(gd["date"], gd["clock"], gd.get("frac"), gd.get("tz"))


def parse_line(text: str, source_kind: str | None = None) -> Line:
    """Parse one line (already decoded, without its newline)."""
    text = text.rstrip("\r\n")
    q = _QUOTED.match(text)
    if q and q.end() < len(text):
        text = text[q.end():]
    if text.startswith("{"):
        parsed = _parse_json(text)
        if parsed is not None:
            return parsed
    if _CSVLOG.match(text) and text.count(",") >= 12:
        parsed = _parse_csvlog(text)
        if parsed is not None:
            return parsed
    m = _JOURNAL_ISO.match(text)
    if m:
        inner = parse_line(m.group("rest"), ident_kind(m.group("ident")) or source_kind)
        if inner.time is None:
            stamp = m.group("stamp").replace(",", ".")
            try:
                dt = _dt.datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", stamp).replace("Z", "+00:00"))
                inner.time, inner.ts = dt.isoformat(), dt.timestamp()
            except ValueError:
                inner.time = stamp
        inner.kind = inner.kind or ident_kind(m.group("ident")) or source_kind
        return inner
    m = _SYSLOG.match(text)
    if m:
        inner = parse_line(m.group("rest"), ident_kind(m.group("ident")) or source_kind)
        if inner.time is None:
            inner.time, inner.ts = _syslog_time(m.group("mon"), int(m.group("day")), m.group("clock"))
        inner.kind = inner.kind or ident_kind(m.group("ident")) or source_kind
        return inner
    m = _PATRONI.match(text)
    if m:
        time, ts = _from_match(m)
        return Line(m.group("msg"), time, ts, "CRITICAL" if m.group("level") == "FATAL" else m.group("level"),
                    "patroni")
    m = _ETCD_CAPNS.match(text)
    if m:
        time, ts = _from_match(m)
        return Line(m.group("msg"), time, ts, _ETCD_LEVELS[m.group("level")], "etcd")
    m = _GO_LOG.match(text)
    if m:  # etcd's raft library and other Go loggers: "raft2024/08/28 19:39:26 INFO: ..."
        time, ts = _stamp(m.group("date").replace("/", "-"), m.group("clock"), None, None)
        return Line(m.group("msg"), time, ts, m.group("level"), "etcd" if m.group("prog") in ("raft", "etcd", "")
                    else source_kind)
    m = _PATRONICTL.match(text)
    if m:
        time, ts = _from_match(m)
        return Line(m.group("msg"), time, ts, m.group("level"), "patroni")
    for tool in ("pg_basebackup", "pg_rewind", "initdb"):
        if text.startswith(tool + ":"):
            return Line(text, kind=tool if tool != "initdb" else None)
    m = _PG_LEVEL.search(text, 0, 400)
    if m and m.start() < 300:
        prefix = text[:m.start()]
        lm = _LEADING_TIME.match(prefix)
        time = ts = None
        if lm:
            time, ts = _from_match(lm)
        else:
            em = _EPOCH.match(prefix)
            if em:
                time, ts = epoch_time(f"{em.group('epoch')}.{em.group('frac') or 0}")
        return Line(text[m.end():], time, ts, m.group("level"), "postgres")
    lm = _LEADING_TIME.match(text)
    if lm:
        time, ts = _from_match(lm)
        return Line(text[lm.end():].lstrip(" ]"), time, ts, None, source_kind)
    return Line(text, kind=source_kind)


def _syslog_time(mon: str, day: int, clock: str) -> tuple[str | None, float | None]:
    now = _dt.datetime.now()
    month = _MONTHS.get(mon)
    if not month:
        return None, None
    try:
        dt = _dt.datetime.fromisoformat(f"{now.year}-{month:02d}-{day:02d}T{clock}")
    except ValueError:
        return None, None
    if dt > now + _dt.timedelta(days=1):  # a December line read in January
        dt = dt.replace(year=now.year - 1)
    return dt.isoformat(), dt.timestamp()


def _text_of(value: object) -> str:
    if isinstance(value, list):  # journal gives binary messages as a list of byte values
        try:
            return bytes(int(x) & 0xFF for x in value).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return ""
    return "" if value is None else str(value)


def _parse_json(text: str) -> Line | None:
    try:
        doc = json.loads(text)
    except RecursionError:  # the C decoder stops at the interpreter's recursion limit: no crash, no line
        raise ParseError("JSON nested too deeply") from None
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if "MESSAGE" in doc:  # journalctl -o json
        ident = _text_of(doc.get("SYSLOG_IDENTIFIER") or doc.get("_SYSTEMD_UNIT") or doc.get("_COMM"))
        text = _text_of(doc["MESSAGE"])
        inner = parse_line(text, ident_kind(ident))
        inner.raw = text
        if inner.ts is None and doc.get("__REALTIME_TIMESTAMP") is not None:
            try:
                seconds = int(doc["__REALTIME_TIMESTAMP"]) / 1e6
            except (TypeError, ValueError, OverflowError):
                raise ParseError("timestamp is not a number") from None
            inner.time, inner.ts = epoch_time(seconds)
        inner.kind = inner.kind or ident_kind(ident)
        return inner
    if "error_severity" in doc and "message" in doc:  # PostgreSQL jsonlog
        return _with_time(Line(_text_of(doc["message"]), level=str(doc["error_severity"]), kind="postgres"),
                          str(doc.get("timestamp") or ""))
    if "msg" in doc and ("ts" in doc or "level" in doc):  # etcd zap
        line = Line(_text_of(doc["msg"]) + _zap_extra(doc), level=str(doc.get("level", "")).upper() or None,
                    kind="etcd")
        ts = doc.get("ts")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            line.time, line.ts = epoch_time(ts)
            return line
        return _with_time(line, str(ts or ""))
    if "message" in doc:  # Patroni log.type json, or another JSON logger
        level = doc.get("levelname") or doc.get("level")
        text = _text_of(doc["message"])
        for key in ("exc_info", "exc_text", "stack_info"):  # logger.exception()'s traceback, in its own field
            extra = _text_of(doc.get(key)).strip()
            if extra:
                text += " " + extra.replace("\n", " ")
        line = Line(text, level=str(level).upper() if level else None, kind=None)
        stamp = str(doc.get("asctime") or doc.get("time") or doc.get("timestamp") or "")
        if line.level:  # matched as the plain line Patroni's default format would have written
            line.raw = f"{stamp} {line.level}: {text}".lstrip()
        return _with_time(line, stamp)
    return None


def _zap_extra(doc: dict) -> str:
    """zap puts the details of an etcd message in extra fields; keep them searchable."""
    skip = {"level", "ts", "caller", "msg", "logger"}
    extra = [f'{k}: {v}' for k, v in doc.items() if k not in skip]
    return (" (" + ", ".join(extra) + ")") if extra else ""


def _with_time(line: Line, stamp: str) -> Line:
    m = _LEADING_TIME.match(stamp)
    if m:
        line.time, line.ts = _from_match(m)
    return line


def _parse_csvlog(text: str) -> Line | None:
    try:
        row = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return None
    if len(row) < 14:
        return None
    message = row[13]
    if len(row) > 14 and row[14]:
        message += f" DETAIL: {row[14]}"
    return _with_time(Line(message, level=row[11] or None, kind="postgres"), row[0])


def is_structured(sample: bytes) -> str | None:
    """'json' or 'csv' when a source's first lines need decoding before they can be searched."""
    for raw in sample.splitlines()[:5]:
        line = raw.strip()
        if not line:
            continue
        if line.startswith(b"{") and line.endswith(b"}"):
            return "json"
        if _CSVLOG.match(line.decode("utf-8", "replace")) and line.count(b",") >= 12:
            return "csv"
        return None
    return None
