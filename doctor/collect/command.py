"""The one way pgdoctor runs a local command: read-only, bounded by the deadline, failures as data.

Every collector that asks the system something through a program (``systemctl``,
``postgres --version``, ``pg_controldata``, ``patroni --validate-config``, ``journalctl``,
``nft``, ``timedatectl``...) goes through ``run_command``, so they all get the same
timeout rule (a named share of the ``Deadline``), the same C locale, no stdin, and the
same record: ``{"argv", "exit_code", "stdout", "stderr"}`` or ``{"argv", "error"}``.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from doctor.collect.deadline import Deadline
from doctor.errors import error_data

MAX_TEXT = 20000


def run_command(argv: list[str], deadline: Deadline, share: str = "command", *, env: dict[str, str] | None = None,
                limit: int = MAX_TEXT, keep_tail: bool = False) -> dict[str, Any]:
    """Run ``argv`` for at most ``deadline.share(share)`` seconds; its output or its failure as data.

    ``env`` replaces the environment (the C locale is always set); by default the command
    inherits pgdoctor's. ``limit`` caps stdout and stderr in characters, keeping the start of
    stdout, or its end with ``keep_tail`` (a journal's newest lines).
    """
    base = dict(os.environ) if env is None else dict(env)
    base.update(LC_ALL="C", LANG="C", SYSTEMD_PAGER="")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
                              timeout=deadline.share(share), env=base)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"argv": argv, "error": error_data(exc)}
    out = proc.stdout or ""
    if len(out) > limit:
        out = out[-limit:] if keep_tail else out[:limit]
    return {"argv": argv, "exit_code": proc.returncode, "stdout": out, "stderr": (proc.stderr or "").strip()[:limit]}


def failure_message(res: dict[str, Any]) -> str:
    """What says why a command did not give what was asked: its error, its stderr, or its exit code."""
    if res.get("error"):
        return str(res["error"].get("message") or res["error"].get("kind"))
    text = (res.get("stderr") or res.get("stdout") or "").strip()
    return text[:300] if text else f"exit {res.get('exit_code')}"
