"""``pgdoctor preflight``: the pre-bootstrap checklist, in the style of kubeadm's preflight checks.

Collect (profile ``preflight``), run the checks of profile ``preflight``, then turn the findings
into a checklist whose every item carries its fix filled with this node's values. ``--ignore``
(or ``pgdoctor: {preflight_ignore: [...]}`` in the config) demotes chosen failures to warnings
and still prints them, as kubeadm's ``--ignore-preflight-errors`` does.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from doctor.cli import ConfigOpt, Format, TimeoutOpt, app
from doctor.errors import UsageError

GROUPS = (
    ("etcd", ("dcs.", "preflight.etcd-")),
    ("PostgreSQL", ("preflight.pg-", "ports.postgres-outside-patroni", "datadir.postmaster-pid")),
    ("Patroni", ("preflight.patroni-",)),
    ("Config", ("config.", "preflight.config-", "preflight.connect-")),
    ("Data dir", ("datadir.", "preflight.datadir-")),
    ("Ports of this node", ("ports.",)),
    ("Peers", ("preflight.peers",)),
    ("Firewall", ("preflight.firewall",)),
    ("System", ("disk.", "preflight.time-")),
)


def group_of(check_id: str) -> str:
    for name, prefixes in GROUPS:
        if any(check_id.startswith(p) for p in prefixes):
            return name
    return "Other"


def parse_ignore(values: list[str] | str | None) -> set[str]:
    """``--ignore a,b --ignore c`` (or a YAML list/string) as a lower-cased set."""
    if values is None:
        return set()
    items = [values] if isinstance(values, str) else [str(v) for v in values]
    out: set[str] = set()
    for v in items:
        out.update(x.strip().lower() for x in v.split(",") if x.strip())
    return out


def known_ids() -> set[str]:
    from doctor.engine import load_checks
    reg = load_checks()
    return {c.id.lower() for c in reg.values() if "preflight" in c.profiles} | \
        {c.playbook.lower() for c in reg.values() if "preflight" in c.profiles}


def apply_ignore(findings: list[Any], ignore: set[str]) -> list[Any]:
    """Demote the chosen failures to warnings; return the demoted findings."""
    demoted = []
    for f in findings:
        if f.status != "fail":
            continue
        if "all" in ignore or f.check.lower() in ignore or (f.playbook or "").lower() in ignore:
            f.status = "warn"
            f.values = {**f.values, "ignored": True}
            demoted.append(f)
    return demoted


def checklist(findings: list[Any], playbooks: dict[str, Any], node_values: dict[str, Any]) -> list[dict[str, Any]]:
    """One item per finding, grouped, each failure or warning with its own rendered fix."""
    order = {name: i for i, (name, _) in enumerate(GROUPS)}
    items = []
    for f in findings:
        book = playbooks.get(f.playbook or "")
        fix: list[str] = []
        if f.status in ("fail", "warn") and book is not None:
            fix = book.fix_commands({**node_values, **f.values})
        items.append({"group": group_of(f.check), "check": f.check, "problem": f.playbook, "status": f.status,
                      "summary": f.summary, "subject": f.subject, "ignored": bool(f.values.get("ignored")),
                      "evidence": list(f.evidence), "fix": fix})
    items.sort(key=lambda i: order.get(i["group"], 99))
    return items


def live_node(facts: Any) -> dict[str, Any] | None:
    """This node's Patroni, when one already runs this config (preflight on a live member)."""
    from doctor.model.node import NodeView
    from doctor.model.processes import node_patroni
    node = NodeView(facts.get("config.data") or {}, facts.get("config.path"))
    ours = node_patroni(facts, node)
    if not ours:
        return None
    return {"patroni_pids": [p["pid"] for p in ours],
            "postmasters": [p["pid"] for p in facts.get("system.processes.postmasters") or []
                            if p.get("patroni_style_args") and node.data_dir and p.get("data_dir") == node.data_dir]}


@app.command()
def preflight(
    config: Optional[str] = ConfigOpt,
    peer: Optional[list[str]] = typer.Option(None, "--peer", help="Another member's host (or its patroni.yml) "
                                             "to test on 5432, 8008 and 2379; repeatable."),
    ignore: Optional[list[str]] = typer.Option(None, "--ignore", help="Make these checks or problem ids non-fatal "
                                               "(comma-separated or repeated; 'all' for every one). Also read from "
                                               "pgdoctor.preflight_ignore in the config."),
    format: Format = typer.Option(Format.text, "--format", "-f", help="text for people, json for scripts."),
    timeout: float = TimeoutOpt,
    pg_user: Optional[str] = typer.Option(None, "--pg-user", help="OS user Patroni runs as (default: owner of the "
                                          "PostgreSQL binaries, else postgres)."),
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
    from doctor.engine import diagnose, verdict_of
    from doctor.model.node import NodeView
    from doctor.pipeline import node_values, Report, analyze, collect
    from doctor.playbooks import load_playbooks

    if format == Format.html:
        raise UsageError("preflight prints text or json; --format html is for run and analyze")
    peers = [p.strip() for p in peer or [] if p.strip()]
    if peer and len(peers) != len(peer):
        raise UsageError("--peer needs a host name, an address or a patroni.yml path")
    import os
    for p in peers:
        if ("/" in p or p.endswith((".yml", ".yaml"))) and not os.path.isfile(p):
            raise UsageError(f"--peer {p}: no such config file (give a host, an address or a peer's patroni.yml)")
    cli_ignore = parse_ignore(ignore)
    known = known_ids()
    bad = sorted(i for i in cli_ignore if i != "all" and i not in known)
    if bad:
        import difflib
        close = sorted({c for b in bad for c in difflib.get_close_matches(b, known, n=2, cutoff=0.5)})
        problems = sorted(k for k in known if "." not in k)
        raise UsageError(f"--ignore: unknown id {', '.join(bad)}"
                         + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" Problem ids here: {', '.join(problems)}")
    options = CollectOptions(config_path=config, timeout=timeout, pg_user=pg_user, read_logs=False, peers=peers)
    facts, _ = collect(options, profile="preflight")
    cfg_ignore_raw = facts.get("config.data.pgdoctor.preflight_ignore")
    cfg_ignore = parse_ignore(cfg_ignore_raw if isinstance(cfg_ignore_raw, (list, str)) else None)
    settings = {"etcd_here": bool(facts.get("preflight.etcd_here"))}
    # ``command`` lets a playbook say "start" rather than "restart" for a node that never ran.
    report = analyze(facts, command="preflight", profiles=("preflight",), settings=settings,
                     values={"command": "preflight"})
    ignored_ids = cli_ignore | {i for i in cfg_ignore if i == "all" or i in known}
    demoted = apply_ignore(report.findings, ignored_ids)
    node = NodeView(facts.get("config.data") or {}, facts.get("config.path"),
                    pg_user=facts.get("system.pg_user.name") or "postgres")
    books = load_playbooks()
    values = {**node_values(facts, node), "command": "preflight"}
    diagnoses = diagnose(report.findings, books, values) if demoted else report.diagnoses
    verdict, code = verdict_of(report.findings, diagnoses)
    extra = dict(report.extra)
    extra["preflight"] = {
        "items": checklist(report.findings, books, values),
        "ignore": sorted(ignored_ids),
        "ignore_from_config": sorted(cfg_ignore),
        "ignore_unknown_in_config": sorted(i for i in cfg_ignore if i != "all" and i not in known),
        "ignored": sorted({f.playbook or f.check for f in demoted}),
        "live_node": live_node(facts),
        "peers_given": peers,
        "etcd_here": settings["etcd_here"],
        "ports": {"postgresql": node.pg_port, "restapi": node.rest_port},
    }
    final = Report(command="preflight", facts=facts, findings=report.findings, diagnoses=diagnoses,
                   verdict=verdict, exit_code=code, extra=extra)
    doc = final.as_dict()
    if format == Format.json:
        from doctor.render.jsonout import render_json
        sys.stdout.write(render_json(doc))
    else:
        from doctor.render.checklist import render_checklist
        from doctor.render.console import make_console
        render_checklist(make_console(), doc)
    raise typer.Exit(code)
