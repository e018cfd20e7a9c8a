"""Who listens on this node's ports, and whether a PostgreSQL runs behind Patroni's back."""

from __future__ import annotations

import os
from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn
from doctor.model.node import WILDCARDS, NodeView
from doctor.model.processes import describe, node_patroni, postmaster_is_patroni_managed, runs_node_config
from doctor.model.resolved import node_data_dir


def _overlaps(listen_addr: str, wanted: list[str]) -> bool:
    if listen_addr in WILDCARDS or not wanted:
        return True
    return any(w in WILDCARDS or w == listen_addr or (w == "localhost" and listen_addr in ("127.0.0.1", "::1"))
               for w in wanted)


def _etcd_runs_here(ctx: CheckContext) -> bool:
    """Does an etcd of this node exist: one listening on one of this node's addresses?

    The preflight collector answers it from the DCS endpoints; otherwise the processes tell."""
    for known in (ctx.settings.get("etcd_here"), ctx.facts.get("preflight.etcd_here")):
        if known is not None:
            return bool(known)
    mine = set(ctx.node.pg_hosts + ctx.node.rest_hosts) - set(WILDCARDS)
    for proc in ctx.facts.get("system.processes.etcd") or []:
        args = " ".join(proc.get("cmdline") or [])
        if not mine or any(f"//{h}:" in args for h in mine) or "//0.0.0.0:" in args:
            return True
    return False


def wanted_ports(ctx: CheckContext) -> list[dict[str, Any]]:
    """The (role, hosts, port) triples this node needs."""
    node: NodeView = ctx.node
    wanted = [
        {"role": "postgresql", "hosts": node.pg_hosts, "port": node.pg_port},
        {"role": "restapi", "hosts": node.rest_hosts, "port": node.rest_port},
    ]
    if _etcd_runs_here(ctx):
        hosts = [h for h in node.pg_hosts + node.rest_hosts if h not in WILDCARDS]
        for p in (2379, 2380):
            wanted.append({"role": "etcd", "hosts": sorted(set(hosts)) or ["*"], "port": p})
    return wanted


@check("ports.in-use", "ports taken by another process", playbook="port-in-use",
       profiles=("run", "preflight"), needs=("system.listeners", "config.data"))
def port_in_use(ctx: CheckContext) -> list[Verdict]:
    listeners = ctx.facts.get("system.listeners") or []
    ours = node_patroni(ctx.facts, ctx.node)
    our_pids = {p["pid"] for p in ours}
    verdicts: list[Verdict] = []
    for want in wanted_ports(ctx):
        port, role = want["port"], want["role"]
        if not want["hosts"]:
            verdicts.append(skip(f"{role}: no listen address in the config (see config-invalid)", subject=role))
            continue
        hosts_label = ",".join(want["hosts"]) or "*"
        taken = [l for l in listeners if l["port"] == port and _overlaps(l["address"], want["hosts"])]
        foreign = []
        for l in taken:
            name = l.get("name") or ""
            if role == "postgresql" and name in ("postgres", "postmaster"):
                continue  # judged by postgres-outside-patroni
            if role == "restapi" and (l.get("pid") in our_pids or runs_node_config(l, ctx.facts, ctx.node)):
                continue
            if role == "etcd" and name == "etcd":
                continue
            foreign.append(l)
        subject = f"{role} {hosts_label}:{port}"
        if not foreign:
            verdicts.append(ok(f"{subject}: " + ("served by this node's own process" if taken else "free"),
                               subject=subject))
            continue
        l = foreign[0]
        who = describe(l)
        if l.get("pid") is None:
            verdicts.append(warn(f"{l['address']}:{port} ({role}) is taken by a process pgdoctor cannot see; run it as root "
                                 "to learn which", subject=subject, values={"port": port, "address": l["address"]}))
            continue
        verdicts.append(fail(
            f"{l['address']}:{port}, needed by this node's {'PostgreSQL' if role == 'postgresql' else 'Patroni REST API' if role == 'restapi' else 'etcd'}, "
            f"is taken by {who}",
            evidence=[f"listening {l['address']}:{port} pid {l.get('pid')} user {l.get('user')}: "
                      f"{' '.join(l.get('cmdline') or [])}"],
            values={"port": port, "address": l["address"], "pid": l.get("pid"), "process": l.get("name"),
                    "role": role, "cmdline": " ".join(l.get("cmdline") or [])},
            subject=subject))
    return verdicts


@check("ports.postgres-outside-patroni", "no PostgreSQL outside Patroni's control", playbook="postgres-outside-patroni",
       profiles=("run", "preflight"), needs=("system.processes", "config.data"))
def postgres_outside_patroni(ctx: CheckContext) -> list[Verdict] | Verdict:
    node = ctx.node
    data_dir = node_data_dir(ctx.facts, node)
    listeners = ctx.facts.get("system.listeners") or []
    pg_listener_pids = {l.get("pid") for l in listeners
                        if node.pg_hosts and l["port"] == node.pg_port and _overlaps(l["address"], node.pg_hosts)}
    verdicts = []
    for pm in ctx.facts.get("system.processes.postmasters") or []:
        on_our_dir = data_dir is not None and pm.get("data_dir") == data_dir
        on_our_port = pm.get("pid") in pg_listener_pids
        if not (on_our_dir or on_our_port):
            continue
        managed = postmaster_is_patroni_managed(pm) and on_our_dir
        if managed:
            continue
        where = f"on this node's data dir {data_dir}" if on_our_dir else \
            f"on this node's port {node.pg_port} (data dir {pm.get('data_dir')})"
        parent = pm.get("parent") or {}
        verdicts.append(fail(
            f"PostgreSQL pid {pm['pid']} runs {where} but was not started by Patroni "
            f"(parent: {parent.get('name') or '?'} pid {parent.get('pid')})",
            evidence=[f"pid {pm['pid']} user {pm.get('user')}: {' '.join(pm.get('cmdline') or [])}",
                      ("its command line is Patroni's, but for another data dir: another Patroni's PostgreSQL "
                       "holds this node's address and port" if postmaster_is_patroni_managed(pm) else
                       "Patroni starts postgres with --config-file=... and its controlled settings on the command "
                       "line; this one has none of them")],
            values={"pid": pm["pid"], "pm_data_dir": pm.get("data_dir"), "pm_cmdline": " ".join(pm.get("cmdline") or []),
                    "pm_bin_dir": os.path.dirname((pm.get("cmdline") or [""])[0]) or ctx.node.bin_dir,
                    "on_our_dir": on_our_dir},
            subject=f"pid {pm['pid']}"))
    return verdicts or ok("every PostgreSQL on this node's data dir and port is Patroni's")
