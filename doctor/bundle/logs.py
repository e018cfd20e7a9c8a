"""The logs that go into a bundle: newest first, within ``--since`` and a size cap.

Sources, in order: what the log collector recorded (``facts["logs"]["sources"]``),
the config's ``log.dir`` (Patroni), PostgreSQL's ``log_directory`` under the data dir,
files named with ``--log-file``, and the journal of the ``patroni`` unit where systemd
runs. Files older than ``--since`` are left out; a file bigger than what is left of
the cap keeps its newest part. Every excerpt is redacted before it is packed. A file
that cannot be read is recorded with the reason, and the bundle goes on. Only regular
files are read (a device or FIFO named with ``--log-file`` is recorded as not collected).
All of it runs within the bundle command's ``Deadline``: once it is spent, the files not
yet read are left out with that reason.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import os
import re
import shutil
import stat
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from doctor.collect.command import failure_message, run_command
from doctor.collect.deadline import Deadline
from doctor.errors import error_data
from doctor.facts import Facts
from doctor.model.node import NodeView
from doctor.redact import Redactor

# A leading timestamp as Patroni, PostgreSQL and etcd write it: 2024-05-01 12:00:00 / 2024-05-01T12:00:00.
_TS_RE = re.compile(r"^(?:\S+\s+)?(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,]\d+)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?")
OUT_OF_TIME = "the time budget (--timeout) was spent"


@dataclass
class LogExcerpt:
    """One log in the bundle: where it came from and how much of it was kept."""

    source: str
    name: str
    text: str
    size: int
    kept: int
    truncated: bool
    since_cut_lines: int = 0

    def manifest_entry(self) -> dict[str, Any]:
        return {"source": self.source, "file": self.name, "size": self.size, "kept_bytes": self.kept,
                "truncated": self.truncated, "dropped_lines_before_since": self.since_cut_lines}


@dataclass
class LogHarvest:
    excerpts: list[LogExcerpt] = field(default_factory=list)
    not_collected: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)


def _paths_in(value: Any) -> Iterable[str]:
    """File paths named anywhere in the log collector's ``sources`` record."""
    if isinstance(value, str):
        if value.startswith("/"):
            yield value
    elif isinstance(value, dict):
        for key in ("path", "file", "files", "paths"):
            if key in value:
                yield from _paths_in(value[key])
        for key, item in value.items():
            if key not in ("path", "file", "files", "paths") and isinstance(item, (dict, list)):
                yield from _paths_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _paths_in(item)


def _files_in_dir(path: str) -> list[str]:
    try:
        return [os.path.join(path, n) for n in sorted(os.listdir(path)) if os.path.isfile(os.path.join(path, n))]
    except OSError:
        return []


def candidate_files(facts: Facts, extra: Iterable[str] = ()) -> tuple[list[str], list[dict[str, Any]]]:
    """Every log file this node's facts and config point to, and the directories that could not be listed."""
    node = NodeView(facts.get("config.data") or {}, facts.get("config.path"))
    files: list[str] = []
    problems: list[dict[str, Any]] = []
    for p in _paths_in(facts.get("logs.sources")):
        files.extend(_files_in_dir(p) if os.path.isdir(p) else [p])
    dirs: list[str] = []
    if node.log_dir:
        dirs.append(node.log_dir)
    params = node.get("postgresql", "parameters") or {}
    log_directory = str(params.get("log_directory") or "log") if isinstance(params, dict) else "log"
    if node.data_dir:
        dirs.append(log_directory if log_directory.startswith("/") else os.path.join(node.data_dir, log_directory))
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append({"what": f"log directory {d}", "error": error_data(exc)})
            continue
        files.extend(os.path.join(d, n) for n in names if os.path.isfile(os.path.join(d, n)))
    files.extend(extra)
    seen: list[str] = []
    for f in files:
        real = os.path.realpath(f)
        if real not in seen:
            seen.append(real)
    return seen, problems


def _tail_bytes(path: str, limit: int, deadline: Deadline) -> tuple[bytes, int, bool]:
    """The last ``limit`` bytes of a file (decompressed for .gz), its full size, and whether it was cut.

    Decompressing stops with ``TimeoutError`` once ``deadline`` is spent (its newest part is at the end)."""
    if path.endswith(".gz"):
        buf: deque[bytes] = deque()
        kept = total = 0
        with gzip.open(path, "rb") as fh:
            while True:
                if deadline.expired():
                    raise TimeoutError(f"{OUT_OF_TIME} while decompressing")
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                buf.append(chunk)
                kept += len(chunk)
                while buf and kept - len(buf[0]) >= limit:
                    kept -= len(buf.popleft())
        data = b"".join(buf)
        return data[-limit:] if limit else b"", total, total > limit
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if size > limit:
            fh.seek(size - limit)
        return fh.read(limit), size, size > limit


def _line_time(line: str) -> float | None:
    m = _TS_RE.match(line)
    if not m:
        return None
    try:
        stamp = _dt.datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    zone = m.group(3)
    if zone in ("Z", "UTC"):
        return stamp.replace(tzinfo=_dt.timezone.utc).timestamp()
    if zone:
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]))
        return stamp.replace(tzinfo=_dt.timezone(sign * offset)).timestamp()
    return stamp.timestamp()  # local time, as Patroni writes it


def drop_before(text: str, cutoff: float) -> tuple[str, int]:
    """Drop leading lines stamped before ``cutoff``; lines without a stamp follow the line before them."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        t = _line_time(line)
        if t is not None and t >= cutoff:
            return "".join(lines[i:]), i
    stamped = any(_line_time(l) is not None for l in lines[:200])
    return ("", len(lines)) if stamped else (text, 0)


def bundle_name(path: str) -> str:
    name = path.lstrip("/")
    if name.endswith(".gz"):
        name = name[:-3]
    return "logs/" + re.sub(r"[^A-Za-z0-9._/-]", "_", name)


def journal_excerpt(unit: str, since_seconds: float, limit: int,
                    deadline: Deadline) -> tuple[bytes | None, dict[str, Any] | None]:
    """The unit's journal since ``since_seconds`` ago (newest ``limit`` bytes), or the reason it is missing."""
    exe = shutil.which("journalctl")
    if not exe or not os.path.isdir("/run/systemd/system"):
        return None, None  # no systemd here: nothing to say
    res = run_command([exe, "-u", unit, "--since", f"-{int(since_seconds)}s", "--no-pager", "-o", "short-iso"],
                      deadline, "slow-command", limit=limit, keep_tail=True)
    if res.get("error"):
        return None, {"what": f"journal of unit {unit}", "error": res["error"]}
    if res["exit_code"] != 0:
        return None, {"what": f"journal of unit {unit}",
                      "error": {"kind": "error", "message": failure_message(res).splitlines()[0][:300]}}
    return res["stdout"].encode("utf-8")[-limit:], None


def harvest(facts: Facts, redactor: Redactor, since_seconds: float, max_bytes: int,
            extra_files: Iterable[str] = (), now: float | None = None, *, deadline: Deadline) -> LogHarvest:
    """Read, bound and redact the logs for a bundle, within ``deadline``."""
    now = time.time() if now is None else now
    cutoff = now - since_seconds
    out = LogHarvest()
    files, problems = candidate_files(facts, extra_files)
    out.not_collected.extend(problems)
    stats: list[tuple[float, str, int]] = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError as exc:
            out.not_collected.append({"what": f"log file {path}", "error": error_data(exc)})
            continue
        if not stat.S_ISREG(st.st_mode):  # /dev/urandom never ends; a FIFO may never start
            out.not_collected.append({"what": f"log file {path}", "error": {
                "kind": "not a regular file", "message": f"{path} is not a regular file (a device, FIFO or socket)"}})
            continue
        if st.st_mtime < cutoff:
            out.left_out.append({"file": path, "reason": "not written since --since"})
            continue
        stats.append((st.st_mtime, path, st.st_size))
    remaining = max_bytes
    for _mtime, path, _size in sorted(stats, reverse=True):  # newest first
        if remaining <= 0:
            out.left_out.append({"file": path, "reason": "size cap (--max-log-mb) reached"})
            continue
        if deadline.expired():
            out.left_out.append({"file": path, "reason": OUT_OF_TIME})
            continue
        try:
            raw, size, cut = _tail_bytes(path, remaining, deadline)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            out.not_collected.append({"what": f"log file {path}", "error": error_data(exc)})
            continue
        text = raw.decode("utf-8", "replace")
        if cut and "\n" in text:
            text = text.split("\n", 1)[1]  # a cut first line is half a line
        text, dropped = drop_before(text, cutoff)
        name = bundle_name(path)
        redacted = redactor.text(text, name)
        remaining -= len(raw)
        out.excerpts.append(LogExcerpt(source=path, name=name, text=redacted, size=size, kept=len(text.encode()),
                                       truncated=cut, since_cut_lines=dropped))
    if remaining > 0 and deadline.expired():
        out.left_out.append({"file": "journalctl -u patroni", "reason": OUT_OF_TIME})
    elif remaining > 0:
        data, problem = journal_excerpt("patroni", since_seconds, remaining, deadline)
        if problem:
            out.not_collected.append(problem)
        elif data:
            name = "logs/journal/patroni.log"
            out.excerpts.append(LogExcerpt(source="journalctl -u patroni", name=name,
                                           text=redactor.text(data.decode("utf-8", "replace"), name),
                                           size=len(data), kept=len(data), truncated=len(data) >= remaining))
    return out
