"""``pgdoctor preflight``: the pre-bootstrap checklist, in the style of kubeadm's preflight checks.

Collect (profile ``preflight``), run the checks of profile ``preflight`` and render the report's
``preflight`` view as a checklist. ``--ignore`` (or ``pgdoctor: {preflight_ignore: [...]}`` in the
config) makes the engine demote chosen failures to warnings that are still printed, as kubeadm's
``--ignore-preflight-errors`` does.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import typer

from doctor.commands.options import ConfigOpt, Format, FormatOpt, OutputOpt, PgUserOpt, TimeoutOpt, split_ids
from doctor.errors import UsageError

PROFILES = ("preflight",)


def check_ignore_ids(ids: list[str]) -> None:
    """A usage error naming the ``--ignore`` ids no preflight check has, with the likely ones meant."""
    from doctor.engine import known_ids, load_checks

    known = {i.lower() for i in known_ids(load_checks(), PROFILES)}
    bad = sorted(i for i in ids if i != "all" and i not in known)
    if not bad:
        return
    close = sorted({c for b in bad for c in difflib.get_close_matches(b, known, n=2, cutoff=0.5)})
    problems = sorted(k for k in known if "." not in k)
    raise UsageError(f"--ignore: unknown id {', '.join(bad)}"
                     + (f"; did you mean {', '.join(close)}?" if close else "")
                     + f" Problem ids here: {', '.join(problems)}")


def check_peers(peer: list[str]) -> list[str]:
    """The ``--peer`` values: host names, addresses, or patroni.yml files that exist."""
    peers = [p.strip() for p in peer if p.strip()]
    if len(peers) != len(peer):
        raise UsageError("--peer needs a host name, an address or a patroni.yml path")
    for p in peers:
        if ("/" in p or p.endswith((".yml", ".yaml"))) and not os.path.isfile(p):
            raise UsageError(f"--peer {p}: no such config file (give a host, an address or a peer's patroni.yml)")
    return peers


def preflight(
    config: str | None = ConfigOpt,
    peer: list[str] | None = typer.Option(None, "--peer", help="Another member's host (or its patroni.yml) "
                                             "to test on 5432, 8008 and 2379; repeatable."),
    ignore: list[str] | None = typer.Option(None, "--ignore", help="Make these checks or problem ids non-fatal "
                                               "(comma-separated or repeated; 'all' for every one). Also read from "
                                               "pgdoctor.preflight_ignore in the config."),
    format: Format = FormatOpt,
    output: Path | None = OutputOpt,
    timeout: float = TimeoutOpt,
    pg_user: str | None = PgUserOpt,
) -> None:
    """Before the first start of Patroni: check etcd, PostgreSQL, Patroni, config, data dir, ports, peers.

    Each item is ✓ ok, ! warning or ✗ failure, with the command that fixes it. Works on a live
    node too: its own Patroni and PostgreSQL do not count as port conflicts.

    Examples:

      pgdoctor preflight -c /etc/patroni/patroni.yml --peer 10.0.0.2 --peer 10.0.0.3

      pgdoctor preflight --ignore preflight-time-sync,preflight-pg-service

      pgdoctor preflight --format json | jq '.preflight.items[] | select(.status=="fail")'
    """
    from doctor.collect import CollectOptions
    from doctor.pipeline import analyze, collect
    from doctor.render.emit import emit_report

    peers = check_peers(list(peer or []))
    ignore_ids = [i.lower() for i in split_ids(ignore)]
    check_ignore_ids(ignore_ids)
    options = CollectOptions(config_path=config, timeout=timeout, pg_user=pg_user, read_logs=False, peers=peers)
    facts, _ = collect(options, profile="preflight")
    # ``command`` lets a playbook say "start" rather than "restart" for a node that never ran.
    report = analyze(facts, command="preflight", profiles=PROFILES, ignore=ignore_ids, values={"command": "preflight"})
    raise typer.Exit(emit_report(report, format, output))
