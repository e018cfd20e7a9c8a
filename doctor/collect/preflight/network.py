"""Preflight, network: do the peers answer on their ports, which etcd members does the config
miss, will etcd run here, and what does the firewall let in?

Peers come from ``--peer`` (a host or another member's patroni.yml), the etcd membership and
the Patroni members in the DCS. Each port gets one short TCP connect within the ``member``
share of the deadline; ``checks/preflight.py`` judges what the results mean.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import yaml

from doctor.collect._parallel import parallel
from doctor.collect.command import run_command
from doctor.collect.deadline import GRACE, Deadline
from doctor.errors import error_data
from doctor.etcd import client_for, probe
from doctor.model.node import NodeView, split_host_port

DEFAULT_PEER_PORTS = {"postgresql": 5432, "restapi": 8008, "etcd": 2379}


def tcp_probe(host: str, port: int, timeout: float) -> dict[str, Any]:
    """One short TCP connect: connected / refused / timeout / another error kind, with the time taken."""
    t0 = time.monotonic()
    out: dict[str, Any] = {"port": port}
    try:
        with socket.create_connection((host, port), timeout=timeout):
            out["result"] = "connected"
    except TimeoutError:
        out["result"] = "timeout"
    except ConnectionRefusedError:
        out["result"] = "refused"
    except OSError as exc:
        err = error_data(exc)
        out["result"] = err["kind"]
        out["message"] = err["message"]
    out["ms"] = round((time.monotonic() - t0) * 1000, 1)
    return out


def _peer_from_config(path: str) -> dict[str, Any]:
    """A peer given as another member's patroni.yml: its addresses and ports."""
    try:
        data = yaml.safe_load(Path(path).read_text(errors="replace"))
    except (OSError, yaml.YAMLError) as exc:
        return {"spec": path, "source": f"config {path}", "error": error_data(exc)}
    view = NodeView(data if isinstance(data, dict) else {}, path)
    hosts, pg_port = split_host_port(view.pg_connect, view.pg_port)
    rhosts, rest_port = split_host_port(view.rest_connect, view.rest_port)
    host = (hosts or rhosts or [None])[0]
    return {"spec": path, "host": host, "name": view.name, "source": f"config {path}",
            "ports": {"postgresql": pg_port or 5432, "restapi": rest_port or 8008}}


def _host_of(url: str) -> str | None:
    try:
        return urlparse(url if "://" in url else f"http://{url}").hostname
    except ValueError:
        return None


def own_hosts(node: NodeView) -> set[str]:
    """Addresses that mean "this node": its connect and listen hosts and its interface addresses."""
    hosts = set()
    for value in (node.pg_connect, node.rest_connect):
        hosts.update(split_host_port(value)[0])
    hosts.update(h for h in node.pg_hosts + node.rest_hosts if h not in ("0.0.0.0", "::", "*", ""))
    try:
        for addrs in psutil.net_if_addrs().values():
            hosts.update(a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)
                         and not a.address.startswith("127.0.0.1") and a.address != "::1")
    except (OSError, psutil.Error):
        pass
    return hosts


def peer_specs(node: NodeView, cli_peers: list[str], dcs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every peer to probe, deduplicated by host, with where it came from and which ports matter."""
    etcd_hosts = {h for h in (_host_of(u) for u in node.etcd_endpoints) if h}
    for m in dcs.get("members_etcd") or []:
        etcd_hosts.update(h for h in (_host_of(u) for u in m.get("client_urls") or []) if h)
    peers: dict[str, dict[str, Any]] = {}

    def add(host: str | None, source: str, ports: dict[str, int] | None = None, name: str | None = None,
            running_member: bool = False) -> None:
        if not host:
            return
        p = peers.setdefault(host, {"host": host, "sources": [], "ports": dict(ports or {}), "names": []})
        if source not in p["sources"]:
            p["sources"].append(source)
        if name and name not in p["names"]:
            p["names"].append(name)
        for k, v in (ports or {}).items():
            p["ports"].setdefault(k, v)
        p["running_member"] = p.get("running_member", False) or running_member

    errors = []
    for spec in cli_peers:
        if os.path.isfile(spec):
            cfg = _peer_from_config(spec)
            if cfg.get("error"):
                errors.append(cfg)
                continue
            add(cfg["host"], cfg["source"], cfg["ports"], cfg.get("name"))
        else:
            add(spec.strip().strip("[]"), "--peer")
    for m in dcs.get("members_etcd") or []:
        for u in (m.get("peer_urls") or []) + (m.get("client_urls") or []):
            add(_host_of(u), f"etcd member {m.get('name') or m.get('id')}")
    for m in dcs.get("members") or []:
        if m.get("name") == node.name:
            continue
        ports: dict[str, int] = {}
        host = None
        if m.get("conn_url"):
            u = urlparse(str(m["conn_url"]))
            host, ports["postgresql"] = u.hostname, u.port or 5432
        if m.get("api_url"):
            u = urlparse(str(m["api_url"]))
            host, ports["restapi"] = host or u.hostname, u.port or 8008
        add(host, f"Patroni member {m.get('name')} in the DCS", ports, m.get("name"), running_member=True)
    mine = own_hosts(node)
    out = []
    for host, p in peers.items():
        p["self"] = host in mine
        p["etcd_expected"] = host in etcd_hosts
        for role, port in DEFAULT_PEER_PORTS.items():
            p["ports"].setdefault(role, node.pg_port if role == "postgresql" else node.rest_port if role == "restapi"
                                  else port)
        out.append(p)
    return out + [{"host": None, "sources": [e["source"]], "error": e["error"]} for e in errors]


def probe_peers(specs: list[dict[str, Any]], deadline: Deadline) -> list[dict[str, Any]]:
    timeout = deadline.share("member")
    calls = {}
    for i, p in enumerate(specs):
        if not p.get("host") or p.get("self"):
            continue
        for role, port in p["ports"].items():
            calls[f"{i}:{role}"] = (lambda h=p["host"], port=port: tcp_probe(h, port, timeout))
    results = parallel(calls, timeout + GRACE, lambda k: {"result": "timeout", "ms": round(timeout * 1000, 1)})
    for i, p in enumerate(specs):
        if not p.get("host") or p.get("self"):
            continue
        p["probes"] = []
        for role, port in p["ports"].items():
            r = results[f"{i}:{role}"]
            if isinstance(r, Exception):
                r = {"port": port, "result": "error", "message": str(r)}
            r.setdefault("port", port)
            p["probes"].append({"role": role, **r})
    return specs


def extra_etcd_members(node: NodeView, dcs: dict[str, Any], deadline: Deadline) -> list[dict[str, Any]]:
    """Probe the etcd members the config does not list (``endpoint health --cluster``)."""
    configured = {u.rstrip("/") for u in dcs.get("endpoint_urls") or []}
    extra: list[str] = []
    for m in dcs.get("members_etcd") or []:
        for u in m.get("client_urls") or []:
            if u.rstrip("/") not in configured and u not in extra:
                extra.append(u.rstrip("/"))
    if not extra:
        return []
    section = node.get(node.dcs_section_name) if node.dcs_section_name else None
    timeout = deadline.share("member")
    probes = parallel({u: (lambda u=u: probe(client_for(u, section, timeout))) for u in extra}, deadline.wait_budget(),
                      lambda u: {"url": u, "ok": False, "error": {"kind": "timeout", "message": f"no answer within {timeout:.0f}s"}})
    return [p if not isinstance(p, Exception) else {"url": u, "ok": False, "error": error_data(p)}
            for u, p in probes.items()]


def etcd_runs_here(node: NodeView, dcs: dict[str, Any]) -> bool:
    """Will an etcd member run on this node? One of its endpoints is one of this node's addresses."""
    mine = own_hosts(node)
    hosts = {_host_of(u) for u in node.etcd_endpoints}
    for m in dcs.get("members_etcd") or []:
        hosts.update(_host_of(u) for u in m.get("client_urls") or [])
    return bool(mine & {h for h in hosts if h})


def firewall(deadline: Deadline) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if shutil.which("ufw"):
        res = run_command(["ufw", "status", "verbose"], deadline)
        text = res.get("stdout") or ""
        entry: dict[str, Any] = {"readable": res.get("exit_code") == 0 and "Status:" in text}
        if not entry["readable"]:
            entry["error"] = res.get("error") or {"kind": "permission" if "root" in (res.get("stderr") or "") else "error",
                                                  "message": res.get("stderr") or "no output"}
        else:
            m = re.search(r"Status:\s*(\w+)", text)
            entry["active"] = bool(m and m.group(1) == "active")
            d = re.search(r"Default:\s*(\w+)\s*\(incoming\)", text)
            entry["default_incoming"] = d.group(1) if d else None
            rules = []
            for line in text.splitlines():
                r = re.match(r"^(\S+(?:\s\(v6\))?)\s+(ALLOW|DENY|REJECT|LIMIT)(?:\s+IN)?\s+(.+?)\s*$", line)
                if r:
                    rules.append({"to": r.group(1), "action": r.group(2), "from": r.group(3)})
            entry["rules"] = rules
        out["ufw"] = entry
    if shutil.which("nft"):
        res = run_command(["nft", "list", "ruleset"], deadline)
        entry = {"readable": res.get("exit_code") == 0}
        if not entry["readable"]:
            entry["error"] = res.get("error") or {"kind": "error", "message": res.get("stderr") or "no output"}
        else:
            entry["input_chains"] = _nft_input_chains(res.get("stdout") or "")
        out["nft"] = entry
    return out


def _nft_input_chains(text: str) -> list[dict[str, Any]]:
    """Input-hook chains with their policy and the rule lines (enough to see dport accepts)."""
    chains = []
    for m in re.finditer(r"chain\s+(\S+)\s*\{(.*?)\n\s*\}", text, re.DOTALL):
        body = m.group(2)
        if "hook input" not in body:
            continue
        pol = re.search(r"policy\s+(\w+)", body)
        rules = [l.strip() for l in body.splitlines() if l.strip() and "hook input" not in l]
        chains.append({"chain": m.group(1), "policy": pol.group(1) if pol else "accept", "rules": rules[:200]})
    return chains
