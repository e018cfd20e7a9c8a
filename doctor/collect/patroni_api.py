"""Patroni REST API facts: this node's ``/patroni``, ``/cluster``, ``/history``, ``/config``,
and ``/patroni`` of every member the DCS (or this node's ``/cluster``) lists.

Uses the config's REST credentials and TLS files, as patronictl does. This node's calls
start at once; member calls follow the DCS read (``after=("dcs",)``), each within the
``member`` share of the deadline (Patroni itself gives members 2 s). The Patroni daemons on this
host come from the ``system`` collector's scan of the process table (``after=("dcs", "system")``).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import requests

from doctor.collect import CollectContext, collector
from doctor.collect._parallel import parallel
from doctor.collect.deadline import GRACE
from doctor.etcd import classify, short_message
from doctor.model.node import NodeView

LOCAL_PATHS = ("patroni", "cluster", "history", "config")


def _auth_kw(node: NodeView, url: str, timeout: float) -> dict[str, Any]:
    kw: dict[str, Any] = {"timeout": timeout}
    user = node.get("restapi", "authentication", "username") or node.get("ctl", "authentication", "username")
    password = node.get("restapi", "authentication", "password") or node.get("ctl", "authentication", "password")
    if user:
        kw["auth"] = (str(user), str(password or ""))
    if url.startswith("https"):
        ca = node.get("ctl", "cacert") or node.get("restapi", "cafile")
        insecure = node.get("ctl", "insecure")
        kw["verify"] = False if insecure else (ca or True)
        cert, key = node.get("ctl", "certfile"), node.get("ctl", "keyfile")
        if cert:
            kw["cert"] = (cert, key) if key else cert
    return kw


def fetch(url: str, kw: dict[str, Any]) -> dict[str, Any]:
    """GET one REST path: {"status", "body"} or {"error": {kind, message}} with the latency."""
    t0 = time.monotonic()
    try:
        r = requests.get(url, **kw)
    except requests.RequestException as exc:
        return {"url": url, "error": {"kind": classify(exc), "message": short_message(exc)},
                "latency_ms": round((time.monotonic() - t0) * 1000, 1)}
    out: dict[str, Any] = {"url": url, "status": r.status_code, "latency_ms": round((time.monotonic() - t0) * 1000, 1)}
    try:
        out["body"] = r.json()
    except ValueError:
        out["body"] = None
        out["text"] = r.text.strip()[:300]
    if r.status_code == 401:
        out["error"] = {"kind": "auth", "message": f"HTTP 401 from {url}: check restapi.authentication"}
    return out


def local_patronis(processes: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every Patroni process on this host with the cluster its config names (scope, namespace, etcd
    endpoints; no secrets), so a check can tell this cluster's members from other clusters' daemons.

    ``processes``: the ``system`` collector's ``processes`` (one scan of the process table per run);
    without it (or when that scan failed) the table is scanned here.
    """
    from doctor.collect.config import load_yaml
    from doctor.errors import error_data

    if processes is None or not isinstance(processes.get("patroni"), list):
        from doctor.collect.system import relevant_processes
        try:
            processes = relevant_processes()
        except Exception as exc:  # psutil may refuse on a locked-down host
            return [{"error": error_data(exc)}]
    out = []
    for p in processes["patroni"]:
        row: dict[str, Any] = {"pid": p.get("pid"), "config": p.get("config")}
        if p.get("config"):
            try:
                with open(p["config"], encoding="utf-8") as fh:
                    data = load_yaml(fh.read(1 << 20))  # libyaml, bounded: another cluster's file is input too
                view = NodeView(data if isinstance(data, dict) else {}, p["config"])
                row.update(scope=view.scope, namespace=view.namespace, dcs_endpoints=view.etcd_endpoints)
            except Exception as exc:  # unreadable (permissions) or not YAML: recorded, not raised
                row["error"] = error_data(exc)
        out.append(row)
    return out


def _base(api_url: str) -> str:
    """``http://h:8008/patroni`` -> ``http://h:8008``."""
    p = urlparse(api_url)
    return f"{p.scheme}://{p.netloc}" if p.scheme and p.netloc else api_url.rstrip("/")


@collector("patroni_api", after=("dcs", "system"))
def collect_patroni_api(ctx: CollectContext) -> dict[str, Any]:
    node = NodeView(ctx.config or {}, ctx.config_path)
    deadline = ctx.deadline
    local = node.rest_url
    out: dict[str, Any] = {"url": local, "name": node.name}
    if not local:
        return {"error": {"kind": "not-configured", "message": "restapi.listen/connect_address are not set"}}
    call = deadline.share("call")
    calls = {p: (lambda p=p: fetch(f"{local}/{p}", _auth_kw(node, local, call))) for p in LOCAL_PATHS}
    got = parallel(calls, call + GRACE,
                   lambda name: {"error": {"kind": "timeout", "message": f"no answer within {call:.0f}s"}})
    for p in LOCAL_PATHS:
        value = got[p]
        out[p] = value if isinstance(value, dict) else {"error": {"kind": "error", "message": str(value)}}
    out["reachable"] = "status" in out["patroni"]
    dcs = ctx.upstream.result("dcs")  # read concurrently with the calls above; bounded by its own share
    targets: dict[str, str] = {}
    for m in dcs.get("members") or []:
        if m.get("api_url") and m.get("name") != node.name:
            targets[m["name"]] = _base(str(m["api_url"]))
    cluster_body = (out["cluster"].get("body") or {}) if isinstance(out["cluster"], dict) else {}
    for m in cluster_body.get("members") or [] if isinstance(cluster_body, dict) else []:
        if m.get("api_url") and m.get("name") != node.name:
            targets.setdefault(m["name"], _base(str(m["api_url"])))
    member_timeout = deadline.share("member")
    member_calls = {name: (lambda b=base: fetch(f"{b}/patroni", _auth_kw(node, b, member_timeout)))
                    for name, base in targets.items()}
    answers = parallel(member_calls, member_timeout + GRACE,
                       lambda name: {"error": {"kind": "timeout", "message": f"no answer within {member_timeout:.0f}s"}})
    members = {}
    for name, base in sorted(targets.items()):
        a = answers.get(name)
        a = a if isinstance(a, dict) else {"error": {"kind": "error", "message": str(a)}}
        a["api_url"] = base
        members[name] = a
    if node.name:
        members[node.name] = {**out["patroni"], "api_url": local, "self": True}
    out["members"] = members
    out["local_patronis"] = local_patronis(ctx.upstream.result("system").get("processes"))
    return out
