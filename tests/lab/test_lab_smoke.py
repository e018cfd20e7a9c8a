"""The lab comes up as one leader and two streaming replicas, and `down` leaves nothing behind.

The full up -> status -> down cycle runs on a second, private lab (its own loopback addresses and
base dir) so that it never disturbs the session lab other tests share.  Its addresses are the
session lab's with the third octet moved by 100 (127.0.0.11 -> 127.0.100.11), or
PGDOCTOR_LAB_SMOKE_ADDRS.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from doctor.lab import cluster
from doctor.lab.layout import Layout, parse_addrs

pytestmark = pytest.mark.lab


def _rest_roles(lay: Layout) -> dict:
    roles = {}
    for n in lay.nodes:
        doc = requests.get(f"{n.rest_url}/patroni", timeout=3).json()
        assert doc["patroni"]["scope"] == "postgres"
        roles[n.name] = (doc["role"], doc.get("replication_state"))
    return roles


def _assert_one_leader_two_streaming(lay: Layout) -> None:
    roles = _rest_roles(lay)
    leaders = [k for k, (role, _) in roles.items() if role == "primary"]
    assert len(leaders) == 1, roles
    replicas = [k for k, (role, rs) in roles.items() if role == "replica" and rs == "streaming"]
    assert len(replicas) == 2, roles
    # /cluster reads the members' DCS keys, which each Patroni rewrites once per HA loop: right after the
    # bootstrap a replica's key may still say 'running' while its /patroni already says 'streaming'.
    deadline = time.monotonic() + 30
    while True:
        members = requests.get(f"{lay.nodes[0].rest_url}/cluster", timeout=3).json()["members"]
        streaming = sorted(m["name"] for m in members if m.get("state") == "streaming")
        if streaming == sorted(replicas) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(m["name"] for m in members) == ["node1", "node2", "node3"]
    assert [m["name"] for m in members if m["role"] == "leader"] == leaders
    assert streaming == sorted(replicas), members


def _assert_status_running(lay: Layout) -> None:
    st = cluster.status(lay)
    assert st["base_dir"] == str(lay.base_dir)
    assert [n["name"] for n in st["nodes"]] == ["node1", "node2", "node3"]
    assert st["scope"] == "postgres" and st["namespace"] == "/service"
    assert st["etcd_endpoints"] == [f"http://{a}:2379" for a in lay.addrs]
    for n, addr in zip(st["nodes"], lay.addrs, strict=False):
        assert n["address"] == addr
        assert n["running"] == {"patroni": True, "postgres": True, "etcd": True}, n
        assert all(n["pids"].values()), n
        for key in ("config", "data_dir", "patroni_log", "postgres_log_dir", "etcd_log"):
            assert n[key].startswith(st["base_dir"] + "/"), (key, n[key])
        assert Path(n["config"]).is_file() and Path(n["patroni_log"]).is_file()
        assert (n["pg_port"], n["rest_port"], n["etcd_client_port"], n["etcd_peer_port"]) == \
            (5432, 8008, 2379, 2380)
    roles = sorted(n["role"] for n in st["nodes"])
    assert roles == ["primary", "replica", "replica"], roles


def _private_layout(session: Layout) -> Layout:
    env = os.environ.get("PGDOCTOR_LAB_SMOKE_ADDRS")
    if env:
        addrs = parse_addrs(env)
    else:
        addrs = tuple(".".join([a.split(".")[0], a.split(".")[1],
                                str((int(a.split(".")[2]) + 100) % 256), a.split(".")[3]])
                      for a in session.addrs)
    return Layout(base_dir=Path(str(session.base_dir) + "-smoke"), addrs=addrs)


def test_session_lab_is_healthy(healthy_lab):
    _assert_status_running(healthy_lab.layout)
    _assert_one_leader_two_streaming(healthy_lab.layout)


def test_up_is_idempotent(healthy_lab):
    before = {n["name"]: n["pids"] for n in healthy_lab.status()["nodes"]}
    res = healthy_lab.up()
    assert res["started"] == []
    after = {n["name"]: n["pids"] for n in healthy_lab.status()["nodes"]}
    assert before == after


def test_up_status_down_on_a_private_lab(lab):
    lay = _private_layout(lab.layout)
    cluster.down(lay, purge=True)
    try:
        res = cluster.up(lay)
        assert len(res["started"]) == 6, res
        _assert_status_running(lay)
        _assert_one_leader_two_streaming(lay)
    finally:
        cluster.down(lay)
    assert cluster.lab_processes(lay) == []
    for n in cluster.status(lay)["nodes"]:
        assert n["running"] == {"patroni": False, "postgres": False, "etcd": False}
        for port in (n["pg_port"], n["rest_port"], n["etcd_client_port"], n["etcd_peer_port"]):
            assert not cluster.procs.port_accepts(n["address"], port), (n["name"], port)
    cluster.down(lay, purge=True)
    assert not lay.base_dir.exists()
