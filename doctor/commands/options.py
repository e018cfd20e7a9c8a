"""Options shared by the commands, defined once: where the config is, how long to wait, the output
(``--format text|json|html``, ``-o FILE``), the team's playbooks, and the replication thresholds."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Any

import typer

from doctor.errors import UsageError
from doctor.logscan.deadline import DEADLINE_HELP, DEFAULT_DEADLINE


class Format(str, Enum):
    text = "text"
    json = "json"
    html = "html"
    prometheus = "prometheus"


ConfigOpt = typer.Option(None, "-c", "--config-file", help="patroni.yml of this node (default: $PATRONICTL_CONFIG_FILE, "
                         "/etc/patroni/patroni.yml, /etc/patroni.yml).", show_default=False)
TimeoutOpt = typer.Option(5.0, "--timeout", min=0.1, help="Seconds one network call or local command may take (member calls "
                          "and port probes at most 2 s, Patroni's own commands up to 10 s). Calls run concurrently; "
                          "collection stops at 2 x timeout + 2 s whatever hangs.")
DeadlineOpt = typer.Option(DEFAULT_DEADLINE, "--deadline", min=0.1, help=DEADLINE_HELP)
FormatOpt = typer.Option(Format.text, "--format", "-f", help="text for people, json for scripts, html for a report file. prometheus: a textfile for "
                         "node_exporter's textfile collector.")
OutputOpt = typer.Option(None, "-o", "--output", help="Write the report to this file instead of stdout.")
PlaybooksOpt = typer.Option(None, "--playbooks", help="A directory of your own playbooks (added to the built-in ones).")
PgUserOpt = typer.Option(None, "--pg-user", help="OS user that must own the data dir and runs Patroni (default: owner "
                         "of the PostgreSQL binaries, else postgres).")
MaxLagBytesOpt = typer.Option(None, "--max-lag-bytes", help="Warn when a replica lags more than this (e.g. 16MB).")
MaxLagSecondsOpt = typer.Option(None, "--max-lag-seconds", help="Warn when a replica's replay lags more than this.")
SlotRetainedOpt = typer.Option(None, "--slot-retained-bytes", help="Warn when a slot that is inactive (or unbounded by "
                               "max_slot_wal_keep_size) retains more WAL than this (default 1GB).")
ExpectMembersOpt = typer.Option(None, "--expect-members", min=1, help="How many members the cluster should have; fewer "
                                "is a warning (default: the members the DCS still knows of).")
RoundTripTimeoutOpt = typer.Option(5.0, "--round-trip-timeout", min=0.1, help="Seconds a replica may take to replay "
                                   "the round trip's WAL record before it counts as not arrived.")


def thresholds(max_lag_bytes: str | None, max_lag_seconds: float | None,
               slot_retained: str | None, expect_members: int | None = None) -> dict[str, Any]:
    """The replication thresholds given on the command line, as check settings (unset ones left out)."""
    from doctor.units import parse_size

    try:
        settings = {"max_lag_bytes": parse_size(max_lag_bytes) if max_lag_bytes else None,
                    "max_lag_seconds": max_lag_seconds,
                    "slot_retained_bytes": parse_size(slot_retained) if slot_retained else None,
                    "expect_members": expect_members}
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return {k: v for k, v in settings.items() if v is not None}


def split_ids(values: list[str] | None) -> list[str]:
    """``--only a,b --only c`` as [a, b, c]."""
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def progress_status(enabled: bool):
    """A spinner on stderr while collecting, only for a person at a terminal."""
    import contextlib
    if not enabled or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from doctor.render.console import make_console
    return make_console(stderr=True).status("collecting facts…")
