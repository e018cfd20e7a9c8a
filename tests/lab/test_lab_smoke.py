"""The lab comes up as one leader and two streaming replicas, and `down` leaves nothing behind."""

from __future__ import annotations

import requests
import pytest

from doctor.lab import cluster

pytestmark = pytest.mark.lab


def test_status_lists_three_running_nodes(healthy_lab):
    st = healthy_lab.status()
    assert [n["name"] for n in st["nodes"]] == ["node1", "node2", "node3"]
    assert st["scope"] == "postgres" and st["namespace"] == "/service"
    assert len(st["etcd_endpoints"]) == 3
    for n in st["nodes"]:
        assert n["running"] == {"patroni": True, "postgres": True, "etcd": True}, n
        for key in ("config", "data_dir", "patroni_log", "postgres_log_dir", "etcd_log"):
            assert n[key].startswith(st["base_dir"])
        assert (n["pg_port"], n["rest_port"], n["etcd_client_port"], n["etcd_peer_port"]) == \
            (5432, 8008, 2379, 2380)


def test_rest_api_shows_one_leader_two_streaming_replicas(healthy_lab):
    roles = {}
    for n in healthy_lab.nodes:
        doc = requests.get(f"{n.rest_url}/patroni", timeout=3).json()
        assert doc["patroni"]["scope"] == "postgres"
        roles[n.name] = (doc["role"], doc.get("replication_state"))
    leaders = [k for k, (role, _) in roles.items() if role == "primary"]
    assert len(leaders) == 1, roles
    replicas = [k for k, (role, rs) in roles.items() if role == "replica" and rs == "streaming"]
    assert len(replicas) == 2, roles

    members = requests.get(f"{healthy_lab.nodes[0].rest_url}/cluster", timeout=3).json()["members"]
    assert sorted(m["name"] for m in members) == ["node1", "node2", "node3"]
    assert [m["name"] for m in members if m["role"] == "leader"] == leaders
    assert sorted(m["name"] for m in members if m.get("state") == "streaming") == sorted(replicas)


def test_up_is_idempotent(healthy_lab):
    before = {n["name"]: n["pids"] for n in healthy_lab.status()["nodes"]}
    res = healthy_lab.up()
    assert res["started"] == []
    after = {n["name"]: n["pids"] for n in healthy_lab.status()["nodes"]}
    assert before == after


def test_down_leaves_no_lab_process_then_up_again(lab):
    lay = lab.layout
    lab.down()
    assert cluster.lab_processes(lay) == []
    st = lab.status()
    for n in st["nodes"]:
        assert n["running"] == {"patroni": False, "postgres": False, "etcd": False}
        for port in (n["pg_port"], n["rest_port"], n["etcd_client_port"]):
            assert not cluster.procs.port_accepts(n["address"], port)
    lab.up()  # leave the session lab running for whatever runs next
    assert cluster.health(lay)[0]
