"""DCS facts: every etcd endpoint of the config, the etcd membership and quorum, and the
cluster's keys under ``/<namespace>/<scope>/`` decoded.

Collected once per run within the ``dcs`` share of the deadline; the collectors that
need the member list and the leader (``patroni_api``, ``postgres``, ``replication``,
``preflight``) declare ``after=("dcs",)`` and read this result from the runner.
"""

from __future__ import annotations

import json
from typing import Any

from doctor.collect import CollectContext, collector
from doctor.collect._parallel import parallel
from doctor.collect.deadline import GRACE, Deadline
from doctor.etcd import EtcdClient, EtcdError, client_for, probe
from doctor.model.node import NodeView

JSON_KEYS = ("config", "history", "sync", "failover", "status", "failsafe")


def _decode(name: str, raw: str) -> Any:
    if name in JSON_KEYS or name.startswith("members/"):
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return {"raw": raw[:500], "error": {"kind": "parse", "message": f"/{name} is not JSON"}}
    return raw


def decode_keys(prefix: str, kvs: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn raw etcd key/values under ``prefix`` into Patroni's keys (members as a list)."""
    out: dict[str, Any] = {"members": [], "keys": []}
    for kv in kvs:
        name = kv["key"][len(prefix):] if kv["key"].startswith(prefix) else kv["key"]
        out["keys"].append(name)
        value = _decode(name, kv["value"])
        if name.startswith("members/"):
            member = {"name": name.split("/", 1)[1]}
            if isinstance(value, dict):
                member.update(value)
            else:
                member["raw"] = kv["value"][:500]
            member["lease"] = kv.get("lease")
            out["members"].append(member)
        elif name in ("initialize", "leader") or name in JSON_KEYS:
            out[name] = value
            if name == "leader":
                out["leader_lease"] = kv.get("lease")
        elif name == "optime/leader":
            out["optime_leader"] = value
    out["members"].sort(key=lambda m: m["name"])
    return out


def _quorum(endpoints: list[dict[str, Any]], members: list[dict[str, Any]] | None) -> dict[str, Any]:
    reachable = [e for e in endpoints if "version" in e]
    healthy = [e for e in endpoints if e.get("ok")]
    total = len(members) if members else len(endpoints)
    leader_ids = sorted({e["leader_id"] for e in healthy if e.get("leader_id")})
    return {"total": total, "configured": len(endpoints), "reachable": len(reachable), "healthy": len(healthy),
            "needed": total // 2 + 1, "has_quorum": bool(healthy), "leader_ids": leader_ids,
            "raft_terms": sorted({e["raft_term"] for e in healthy if e.get("raft_term") is not None})}


def _read_keys(clients: list[EtcdClient], endpoints: list[dict[str, Any]], prefix: str,
               deadline: Deadline) -> dict[str, Any]:
    """Linearizable read from a healthy endpoint; without quorum, a (possibly stale) serializable one."""
    by_url = {e["url"]: e for e in endpoints}
    healthy = [c for c in clients if by_url.get(c.url, {}).get("ok")]
    reachable = [c for c in clients if "version" in by_url.get(c.url, {}) and c not in healthy]
    errors = []
    for serializable, group in ((False, healthy), (True, reachable)):
        for c in group:
            if deadline.remaining() <= 0.2:
                errors.append({"url": c.url, "kind": "timeout", "message": "no time left for the key read"})
                break
            c.timeout = deadline.share("call")
            try:
                kvs, header = c.range_prefix(prefix, serializable=serializable)
            except EtcdError as exc:
                errors.append({"url": c.url, **exc.data()})
                continue
            out = decode_keys(prefix, kvs)
            out.update(keys_read=True, keys_from=c.url,
                       keys_consistency="serializable" if serializable else "linearizable",
                       keys_revision=header.get("revision"))
            if serializable:
                out["keys_note"] = "etcd has no quorum: keys read from one member's local copy, possibly stale"
            if errors:
                out["keys_errors"] = errors
            return out
    return {"keys_read": False, "keys_errors": errors,
            "keys_error": errors[0] if errors else {"kind": "unreachable", "message": "no etcd endpoint answered"}}


@collector("dcs", share="dcs")
def collect_dcs(ctx: CollectContext) -> dict[str, Any]:
    """Endpoint probes within one call's time, then the member list and the keys in what is left."""
    node = NodeView(ctx.config or {}, ctx.config_path)
    section_name = node.dcs_section_name
    if section_name is None:
        return {"section": None, "error": {"kind": "not-configured",
                                           "message": "the config has no etcd3: or etcd: section"}}
    section = node.get(section_name) or {}
    urls = node.etcd_endpoints
    out: dict[str, Any] = {"section": section_name, "prefix": node.dcs_prefix, "endpoint_urls": urls,
                           "auth": bool(isinstance(section, dict) and section.get("username")),
                           "tls": any(u.startswith("https") for u in urls)}
    if not urls:
        out["error"] = {"kind": "not-configured", "message": f"the {section_name}: section names no host, hosts, url or proxy"}
        return out
    deadline = ctx.deadline
    per_request = deadline.share("call")
    clients = [client_for(u, section, per_request) for u in urls]
    probes = parallel({c.url: (lambda c=c: probe(c, v2=section_name == "etcd")) for c in clients},
                      per_request + GRACE,
                      lambda url: {"url": url, "ok": False,
                                   "error": {"kind": "timeout", "message": f"no answer within {per_request:.0f}s"}})
    endpoints = []
    for c in clients:
        p = probes[c.url]
        if isinstance(p, Exception):
            p = {"url": c.url, "ok": False, "error": {"kind": "error", "message": str(p)}}
        endpoints.append(p)
    out["endpoints"] = endpoints
    members = None
    answering = {e["url"] for e in endpoints if "version" in e}
    for c in clients:
        if c.url in answering:
            try:
                c.timeout = deadline.share("member")
                members = [{"id": m.get("ID"), "name": m.get("name"), "client_urls": m.get("clientURLs") or [],
                            "peer_urls": m.get("peerURLs") or []} for m in c.members()]
                break
            except EtcdError as exc:
                out["members_etcd_error"] = exc.data()
    out["members_etcd"] = members
    out["quorum"] = _quorum(endpoints, members)
    if section_name == "etcd":
        answers = [e.get("v2") for e in endpoints if isinstance(e.get("v2"), dict) and "status" in e["v2"]]
        out["v2"] = {"checked": len(answers), "served": any(a.get("served") for a in answers),
                     "statuses": sorted({a["status"] for a in answers})}
    out.update(_read_keys(clients, endpoints, node.dcs_prefix, deadline))
    out["keys_api"] = "v3"
    return out
