"""Find this node's log sources from its Patroni config, the way an operator would look for them.

Patroni's own files come from ``log.dir``; PostgreSQL's from ``log_directory`` and
``log_filename`` (read from the ``postgresql.conf`` Patroni wrote into the data dir, else from
the config's parameters), relative to the data dir; the systemd journal for the units
``patroni``, ``etcd`` and ``postgresql*`` when this host has a journal. Each place that
cannot be used is explained in a note, so the report says what was *not* read too.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from typing import Any

from doctor.logscan.sources import FileSource, JournalSource, Source
from doctor.model.node import NodeView

DEFAULT_UNITS = ("patroni", "etcd", "postgresql*")
PG_DEFAULT_LOG_DIRECTORY = "log"
PG_DEFAULT_LOG_FILENAME = "postgresql-%Y-%m-%d_%H%M%S.log"
MAX_PG_FILES = 6
TAIL_BYTES = 256 * 1024 * 1024

_CONF_LINE = re.compile(r"^\s*(?P<key>[a-z_]+)\s*=?\s*(?P<value>'(?:[^']|'')*'|[^\s#]+)")


def postgresql_conf(data_dir: str) -> tuple[dict[str, str], str | None]:
    """Settings from the postgresql.conf Patroni writes (and its include postgresql.base.conf)."""
    out: dict[str, str] = {}
    path = os.path.join(data_dir, "postgresql.conf")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(1024 * 1024)
    except OSError as exc:
        return out, f"{path}: {exc.strerror or exc}"
    for line in text.splitlines():
        m = _CONF_LINE.match(line)
        if m:
            value = m.group("value")
            if value.startswith("'"):
                value = value[1:-1].replace("''", "'")
            out[m.group("key")] = value
    return out, None


def _param(node: NodeView, conf: dict[str, str], key: str) -> Any:
    if key in conf:
        return conf[key]
    for path in (("postgresql", "parameters", key), ("bootstrap", "dcs", "postgresql", "parameters", key)):
        v = node.get(*path)
        if v is not None:
            return v
    return None


def _newer_than(path: str, since: float | None) -> bool:
    if since is None:
        return True
    try:
        return os.stat(path).st_mtime >= since
    except OSError:
        return True  # let the reader report why it cannot read it


def patroni_files(node: NodeView, since: float | None, notes: list[str]) -> list[Source]:
    log_dir = node.log_dir
    if not log_dir:
        notes.append("Patroni logs to stderr (no log.dir in the config): read through the journal")
        return []
    if not os.path.isdir(log_dir):
        notes.append(f"Patroni log.dir {log_dir} does not exist or is not a directory")
        return []
    files = glob.glob(os.path.join(glob.escape(log_dir), "patroni.log*"))

    def rotation(p: str) -> int:
        tail = p.rsplit("patroni.log", 1)[-1].lstrip(".").split(".")[0]
        return int(tail) if tail.isdigit() else 0

    files.sort(key=rotation, reverse=True)  # oldest rotated file first, the live file last
    chosen = [f for f in files if _newer_than(f, since)]
    if not files:
        notes.append(f"no patroni.log in {log_dir}")
    elif len(chosen) < len(files):
        notes.append(f"{len(files) - len(chosen)} older Patroni log file(s) in {log_dir} skipped (before --since)")
    return [FileSource(f, kind="patroni", tail_bytes=TAIL_BYTES) for f in chosen]


def postgres_files(node: NodeView, since: float | None, notes: list[str]) -> tuple[list[Source], str | None]:
    data_dir = node.data_dir
    if not data_dir:
        notes.append("no postgresql.data_dir in the config: PostgreSQL logs not looked for")
        return [], None
    conf, err = postgresql_conf(data_dir)
    if err and os.path.isdir(data_dir):
        notes.append(f"could not read {err}; using the config's parameters")
    collector = str(_param(node, conf, "logging_collector") or "off").lower()
    if collector not in ("on", "true", "1", "yes"):
        notes.append("PostgreSQL's logging_collector is off: its messages go to Patroni's output (the journal)")
        return [], None
    directory = str(_param(node, conf, "log_directory") or PG_DEFAULT_LOG_DIRECTORY)
    filename = str(_param(node, conf, "log_filename") or PG_DEFAULT_LOG_FILENAME)
    log_dir = directory if os.path.isabs(directory) else os.path.join(data_dir, directory)
    if not os.path.isdir(log_dir):
        notes.append(f"PostgreSQL log_directory {log_dir} does not exist or is not readable")
        return [], log_dir
    base = re.sub(r"%.", "*", glob.escape(filename))
    stem = base[:-4] if base.endswith(".log") else base
    patterns = {base, stem + ".csv", stem + ".json"}
    files: set[str] = set()
    for pat in patterns:
        files.update(glob.glob(os.path.join(glob.escape(log_dir), pat)))
    ordered = sorted((f for f in files if os.path.isfile(f)), key=lambda f: _mtime(f))
    chosen = [f for f in ordered if _newer_than(f, since)][-MAX_PG_FILES:]
    if not ordered:
        notes.append(f"no PostgreSQL log file matching {filename} in {log_dir}")
    elif len(chosen) < len(ordered):
        notes.append(f"{len(ordered) - len(chosen)} older PostgreSQL log file(s) in {log_dir} skipped")
    return [FileSource(f, kind="postgres", tail_bytes=TAIL_BYTES) for f in chosen], log_dir


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def has_journal() -> bool:
    return bool(shutil.which("journalctl")) and any(
        os.path.isdir(d) for d in ("/run/systemd/journal", "/var/log/journal", "/run/log/journal"))


def journal_sources(units: list[str] | None, since: float | None, until: float | None, timeout: float,
                    notes: list[str]) -> list[Source]:
    if not has_journal():
        notes.append("no systemd journal on this host: journal units not read")
        return []
    return [JournalSource(u, since=since, until=until, timeout=timeout) for u in (units or DEFAULT_UNITS)]


def given_files(paths: list[str]) -> list[Source]:
    """Files named by the user; a directory stands for the files in it."""
    out: list[Source] = []
    for p in paths:
        if os.path.isdir(p):
            for f in sorted(os.listdir(p)):
                full = os.path.join(p, f)
                if os.path.isfile(full):
                    out.append(FileSource(full))
        else:
            out.append(FileSource(p))
    return out


def node_sources(node: NodeView, since: float | None, until: float | None, timeout: float,
                 units: list[str] | None = None, extra_files: list[str] | None = None
                 ) -> tuple[list[Source], list[str], dict[str, Any]]:
    """Every log source of this node, the notes on what could not be used, and where they were found."""
    notes: list[str] = []
    sources: list[Source] = []
    sources += patroni_files(node, since, notes)
    pg, pg_dir = postgres_files(node, since, notes)
    sources += pg
    sources += journal_sources(units, since, until, timeout, notes)
    sources += given_files(extra_files or [])
    seen: set[str] = set()
    unique: list[Source] = []
    for s in sources:
        key = os.path.realpath(s.path) if s.path else s.label
        if key not in seen:
            seen.add(key)
            unique.append(s)
    where = {"patroni_log_dir": node.log_dir, "postgres_log_dir": pg_dir}
    return unique, notes, where
