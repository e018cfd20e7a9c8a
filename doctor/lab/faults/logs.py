"""Log marks: the size of every lab log when a fault began, so that the text it caused can be read back
(``logs_since``) and a breaker can wait for its real symptom (``symptom``)."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

from ..layout import Layout, Node
from .registry import Ctx
from .state import read_state

SYMPTOM_TIMEOUT = 45.0


def log_files(lay: Layout) -> list[Path]:
    files = []
    for n in lay.nodes:
        files += [n.patroni_log, n.patroni_stdout, n.etcd_log, n.dir / "pg_ctl.log"]
        with contextlib.suppress(OSError):
            files += sorted(n.postgres_log_dir.iterdir())
    return files


def log_marks(lay: Layout) -> dict[str, int]:
    marks = {}
    for f in log_files(lay):
        try:
            marks[str(f)] = f.stat().st_size
        except OSError:
            marks[str(f)] = 0
    return marks


def logs_since(lay: Layout, marks: dict[str, int] | None = None) -> dict[str, str]:
    """New text in each lab log file since ``marks`` (default: since the active fault began).

    A file that shrank or was recreated (e.g. a re-cloned data dir) is read from its start."""
    if marks is None:
        marks = (read_state(lay) or {}).get("log_marks", {})
    out = {}
    for f in log_files(lay):
        try:
            size = f.stat().st_size
            start = marks.get(str(f), 0)
            if start > size:
                start = 0
            if size > start:
                with open(f, "rb") as fh:
                    fh.seek(start)
                    out[str(f)] = fh.read().decode(errors="replace")
        except OSError:
            continue
    return out


def wait_log(lay: Layout, pattern: str, paths: list[Path], marks: dict[str, int],
             timeout: float = SYMPTOM_TIMEOUT) -> str | None:
    """Wait until a line matching ``pattern`` appears in one of ``paths`` after ``marks``;
    returns that line (or None after ``timeout``)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    wanted = {str(p) for p in paths}
    while True:
        for path, text in logs_since(lay, marks).items():
            if path in wanted or any(path.startswith(w.rstrip("/") + "/") for w in wanted):
                for line in text.splitlines():
                    if rx.search(line):
                        return line
        if time.monotonic() > deadline:
            return None
        time.sleep(0.3)


def symptom(ctx: Ctx, pattern: str, paths: list[Path], timeout: float = SYMPTOM_TIMEOUT) -> None:
    """Wait for the fault's real symptom; record the line, or a warning when it did not show."""
    if not ctx.wait:
        return
    line = wait_log(ctx.lay, pattern, paths, ctx.state["log_marks"], timeout)
    ctx.details["symptom"] = line
    ctx.details["symptom_pattern"] = pattern
    if line is None:
        ctx.details["warning"] = f"no log line matching {pattern!r} within {timeout:.0f}s"


def patroni_logs(n: Node) -> list[Path]:
    """Patroni's log file and its stdout/stderr (tracebacks from before logging starts)."""
    return [n.patroni_log, n.patroni_stdout]


def postgres_logs(n: Node) -> list[Path]:
    return [n.postgres_log_dir]
