"""Judgement about the processes the system collector saw, shared by several checks: which Patroni
runs this node's config, which postmasters run on its data directory, and whether Patroni started them."""

from __future__ import annotations

from typing import Any

from doctor.facts import Facts
from doctor.model.node import NodeView
from doctor.model.resolved import node_config, node_data_dir

Process = dict[str, Any]  # one entry of ``system.processes.*`` as the system collector wrote it


def describe(proc: Process) -> str:
    """'python3 (pid 4242, user nobody): python3 -m http.server 8008'."""
    cmd = " ".join(proc.get("cmdline") or [])
    if len(cmd) > 160:
        cmd = cmd[:157] + "..."
    return f"{proc.get('name') or '?'} (pid {proc.get('pid')}, user {proc.get('user') or '?'})" + (f": {cmd}" if cmd else "")


def node_patroni(facts: Facts, node: NodeView) -> list[Process]:
    """The Patroni processes that run this node's config."""
    procs = facts.get("system.processes.patroni") or []
    if not node.config_path:
        return procs
    ours = node_config(facts, node)
    matched = [p for p in procs if p.get("config") == ours]
    if matched:
        return matched
    # A Patroni whose config path we could not read from its command line: only claim it when alone.
    unknown = [p for p in procs if not p.get("config")]
    return unknown if len(procs) == 1 and unknown else []


def runs_node_config(proc: Process, facts: Facts, node: NodeView) -> bool:
    """Is this (a listener's) process a Patroni running this node's config? The listener table records the
    config as the process table does, so a Patroni exiting after a fatal error — still holding its REST port
    when the process table, read at another instant, no longer lists it — is still known as this node's own."""
    ours = node_config(facts, node)
    return ours is not None and proc.get("config") == ours


def postmaster_is_patroni_managed(pm: Process) -> bool:
    """Patroni starts postgres with ``--config-file=`` and its controlled GUCs on the command line."""
    return bool(pm.get("patroni_style_args"))


def node_postmasters(facts: Facts, node: NodeView) -> list[Process]:
    """The postmasters running on this node's data dir (whoever started them)."""
    if not node.data_dir:
        return []
    ours = node_data_dir(facts, node)
    return [pm for pm in facts.get("system.processes.postmasters") or [] if pm.get("data_dir") == ours]
