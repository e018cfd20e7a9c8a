"""Cluster checks on facts captured from the real lab (tests/unit/capture_cluster_fixtures.py).

Each problem id has a fixture where the check fails and the healthy lab's facts where it
passes; summaries must name the real members, endpoints, keys and users of those facts.
A few cases derive a variant from real facts by changing one value, said in the test.
"""

from __future__ import annotations

import copy

import pytest

from doctor.engine import CheckContext, load_checks
from doctor.facts import Facts
from doctor.model.node import NodeView
from doctor.pipeline import analyze
from tests.unit.conftest import load_facts

ENDPOINTS = ["http://127.0.3.11:2379", "http://127.0.3.12:2379", "http://127.0.3.13:2379"]


def findings(facts: Facts, check_id: str) -> list:
    """Run one registered check on ``facts`` and return its findings."""
    from doctor.engine import _run_one

    node = NodeView(facts.get("config.data") or {}, facts.get("config.path"))
    return _run_one(load_checks()[check_id], CheckContext(facts=facts, node=node, settings={}))


def first(facts: Facts, only: str):
    rep = analyze(facts, profiles=("run", "replication"), only=[only])
    assert rep.diagnoses, f"no {only} diagnosis"
    return rep.diagnoses[0], rep


def test_healthy_lab_passes_every_cluster_check():
    facts = load_facts("healthy.cluster.json")
    rep = analyze(facts, profiles=("run", "replication"))
    assert rep.diagnoses == [] and rep.exit_code == 0
    by_check = {f.check: f for f in rep.findings}
    for cid in ("dcs.api", "dcs.reachable", "cluster.initialize-key", "cluster.leader", "cluster.paused",
                "cluster.system-id", "cluster.rest-api", "auth.replication-login", "auth.hba-replication",
                "timeline.members"):
        assert by_check[cid].status == "ok", (cid, by_check[cid].summary)
    assert "quorum 3/3" in by_check["dcs.reachable"].summary
    assert "node3 holds /service/postgres/leader" in by_check["cluster.leader"].summary
    view = rep.extra["cluster"]
    assert [m["name"] for m in view["members"]] == ["node1", "node2", "node3"]
    assert [m["role"] for m in view["members"]] == ["Replica", "Replica", "Leader"]
    assert all(m["state"] == "streaming" for m in view["members"] if m["role"] == "Replica")


def test_dcs_api_mismatch():
    d, rep = first(load_facts("dcs-api-mismatch.json"), "dcs-api-mismatch")
    assert d.id == "dcs-api-mismatch" and d.status == "fail"
    assert "/var/tmp/lab-dev3/node2/patroni.yml has an etcd: section" in d.summary
    assert "HTTP 404" in d.summary and "3.4.23" in d.summary
    assert any("sed -i 's/^etcd:/etcd3:/' /var/tmp/lab-dev3/node2/patroni.yml" in b for b in d.fix)


def test_dcs_api_ok_with_etcd3_section():
    assert findings(load_facts("healthy.cluster.json"), "dcs.api")[0].status == "ok"


def test_dcs_unreachable_all_endpoints_refused():
    d, _ = first(load_facts("dcs-unreachable.json"), "dcs-unreachable")
    assert d.status == "fail"
    for url in ENDPOINTS:
        assert f"{url} refused" in d.summary
    assert any(f"--endpoints={','.join(ENDPOINTS)} endpoint health" in b for b in d.fix)


def test_dcs_unreachable_no_quorum_names_the_live_and_the_dead():
    d, _ = first(load_facts("dcs-unreachable.quorum-lost.json"), "dcs-unreachable")
    assert d.summary.startswith("etcd has no quorum: 1 of 3 members answer (http://127.0.3.11:2379)")
    assert "down: http://127.0.3.12:2379, http://127.0.3.13:2379" in d.summary
    assert any("endpoint status -w table" in b for b in d.fix)


def test_one_endpoint_down_with_quorum_is_a_warning_naming_it():
    facts = Facts(copy.deepcopy(load_facts("healthy.cluster.json").data))
    # derived from real facts: the third endpoint as the collector records a refused one
    ep = facts.data["dcs"]["endpoints"][2]
    facts.data["dcs"]["endpoints"][2] = {"url": ep["url"], "ok": False, "latency_ms": 0.4,
                                         "error": {"kind": "refused", "message": "[Errno 111] Connection refused"}}
    facts.data["dcs"]["quorum"].update(healthy=2, reachable=2)
    out = findings(facts, "dcs.reachable")
    assert [f.status for f in out] == ["warn"]
    assert "http://127.0.3.13:2379 does not answer (refused" in out[0].summary
    assert "quorum with 2 of 3 members" in out[0].summary


def test_initialize_key_stuck():
    d, rep = first(load_facts("initialize-key-stuck.json"), "initialize-key-stuck")
    assert d.status == "fail"
    assert "/service/postgres/initialize exists with an empty value" in d.summary
    assert "node2 (uninitialized, stopped)" in d.summary
    fix = "\n".join(d.fix)
    assert ("ETCDCTL_API=3 etcdctl --endpoints=" + ",".join(ENDPOINTS) + " del /service/postgres/initialize") in fix
    # the real node1 data dir did not exist after the kill: nothing to move, and the fix says so
    assert "sudo mv /var/tmp/lab-dev3/node1/data" not in fix
    assert "does not exist, so there is nothing to move here" in d.fix_text
    assert "Only when **no** member is bootstrapping" in d.fix_text


def test_initialize_key_not_stuck_while_a_member_bootstraps():
    facts = Facts(copy.deepcopy(load_facts("initialize-key-stuck.json").data))
    # derived: node2 reports the state a bootstrapping member publishes
    for m in facts.data["dcs"]["members"]:
        if m["name"] == "node2":
            m["state"] = "initializing new cluster"
    out = findings(facts, "cluster.initialize-key")
    assert out[0].status == "ok" and "node2 is initializing new cluster" in out[0].summary


def test_initialize_key_ok_on_healthy_cluster():
    out = findings(load_facts("healthy.cluster.json"), "cluster.initialize-key")
    assert out and {v.status for v in out} == {"ok"}


def test_no_leader_derived_from_real_facts():
    facts = Facts(copy.deepcopy(load_facts("healthy.cluster.json").data))
    del facts.data["dcs"]["leader"]  # derived: the leader key expired
    out = findings(facts, "cluster.leader")
    assert out[0].status == "fail"
    assert "cluster postgres has no leader: /service/postgres/leader is missing" in out[0].summary
    assert findings(load_facts("healthy.cluster.json"), "cluster.leader")[0].status == "ok"


def test_replication_auth_failed_wrong_password():
    d, _ = first(load_facts("replication-auth-failed.json"), "replication-auth-failed")
    assert d.status == "fail"
    assert d.summary.startswith("wrong replication password: the password for replicator in "
                                "/var/tmp/lab-dev3/node2/patroni.yml")
    assert "leader node3 (127.0.3.13:5432)" in d.summary
    assert 'password authentication failed for user "replicator"' in d.summary
    assert any("-h 127.0.3.13 -p 5432" in b for b in d.fix)


@pytest.mark.parametrize("role, reason, text", [
    ({"exists": False}, "missing-role", "role replicator does not exist on the leader node3"),
    ({"exists": True, "rolreplication": False, "rolcanlogin": True}, "no-replication",
     "lacks the REPLICATION attribute"),
])
def test_replication_auth_failed_tells_missing_role_from_missing_replication(role, reason, text):
    facts = Facts(copy.deepcopy(load_facts("replication-auth-failed.json").data))
    # derived: what the superuser reads from pg_authid on the leader in those two cases
    facts.data["postgres"]["replication_login"]["role"] = {"as": "postgres", "user": "replicator", **role}
    d, _ = first(facts, "replication-auth-failed")
    assert text in d.summary
    assert d.fix_text and ("CREATE ROLE" in d.fix_text if reason == "missing-role" else "WITH REPLICATION" in d.fix_text)


def test_pg_hba_replication_missing():
    d, _ = first(load_facts("pg-hba-replication-missing.json"), "pg-hba-replication-missing")
    assert d.status == "fail"
    assert 'leader node3 (127.0.3.13:5432) has no rule for a replication connection from host "127.0.0.1", ' \
           'user "replicator"' in d.summary
    assert any("host replication replicator" in e and "127.0.0.1" in e for e in d.evidence)
    # the lab's members set postgresql.pg_hba locally, which wins over the DCS: edit-config would not help
    assert any("host replication replicator 127.0.0.1/32" in b for b in d.fix)
    assert any("reload postgres --force" in b for b in d.fix)
    assert not any("edit-config" in b for b in d.fix)
    # the same refusal is not blamed on the credentials
    assert findings(load_facts("pg-hba-replication-missing.json"), "auth.replication-login")[0].status == "ok"


def test_timeline_diverged():
    d, _ = first(load_facts("timeline-diverged.json"), "timeline-diverged")
    assert d.status == "fail"
    assert d.summary.startswith("node3 diverged: it is on timeline 1 at 0/7038AB0, but the leader node2's "
                                "timeline 2 forked off timeline 1 at 0/7000060")
    assert "pg_rewind will not fix it: use_pg_rewind is off" in d.summary
    assert any("reinit postgres node3 --force" in b for b in d.fix)
    assert any("use_pg_rewind=true" in b for b in d.fix)


def test_timeline_ok_on_healthy_cluster():
    assert findings(load_facts("healthy.cluster.json"), "timeline.members")[0].status == "ok"


def test_cluster_paused():
    d, rep = first(load_facts("cluster-paused.json"), "cluster-paused")
    assert d.status == "warn" and rep.exit_code == 1
    assert "cluster postgres is in maintenance mode (/service/postgres/config has pause: true)" in d.summary
    assert "leader node2" in d.summary
    assert d.fix == ["patronictl -c /var/tmp/lab-dev3/node1/patroni.yml resume postgres --wait"]
    assert findings(load_facts("healthy.cluster.json"), "cluster.paused")[0].status == "ok"


def test_rest_api_unreachable_on_a_node_whose_patroni_waits_on_etcd():
    out = findings(load_facts("dcs-api-mismatch.json"), "cluster.rest-api")
    assert [f.status for f in out] == ["fail"]
    assert "this node's (node2) Patroni REST API at http://127.0.3.12:8008/patroni does not answer (refused" \
        in out[0].summary
    assert findings(load_facts("healthy.cluster.json"), "cluster.rest-api")[0].status == "ok"


def test_system_id_mismatch_derived_from_real_facts():
    facts = Facts(copy.deepcopy(load_facts("healthy.cluster.json").data))
    real = facts.data["dcs"]["initialize"]
    # derived: this node's data dir holds another database system
    facts.data["postgres"]["controldata"]["system_identifier"] = "7000000000000000001"
    out = findings(facts, "cluster.system-id")
    assert [f.status for f in out] == ["fail"]
    assert out[0].summary.startswith(f"node1 has database system identifier 7000000000000000001 (pg_controldata "
                                     f"/var/tmp/lab-dev3/node1/data), but the cluster's is {real} "
                                     "(/service/postgres/initialize)")
    assert findings(load_facts("healthy.cluster.json"), "cluster.system-id")[0].status == "ok"


def test_stale_leader_key_with_every_member_a_replica_is_no_writable_primary():
    # `lab break dcs-unreachable.quorum-lost --node node1`: etcd1 alone still serves /leader = node1 from its local
    # copy, but node1 demoted itself; every REST says replica and pg_is_in_recovery() is true
    facts = load_facts("no-leader.stale-leader.json")
    [v] = findings(facts, "cluster.leader")
    assert v.status == "fail", v.summary
    assert v.summary.startswith("no writable primary: writes blocked in cluster postgres")
    assert "names node1" in v.summary and "etcd has no quorum" in v.summary
    assert "node3: REST role replica, pg_is_in_recovery() = true" in v.summary


def test_healthy_leader_key_still_ok():
    [v] = findings(load_facts("healthy.cluster.json"), "cluster.leader")
    assert v.status == "ok" and v.summary == "node3 holds /service/postgres/leader"


def test_members_without_a_role_are_not_shown_as_replicas():
    # initialize-key-stuck: every member key says role uninitialized (node1's REST is down)
    from doctor.views.cluster import cluster_view
    view = cluster_view(load_facts("initialize-key-stuck.json"))
    assert {m["name"]: m["role"] for m in view["members"]} == {
        "node1": "uninitialized", "node2": "uninitialized", "node3": "uninitialized"}
    assert all(m["sync_state"] == "" for m in view["members"])
    # replication-auth-failed: node2 is re-cloning (never initialised), the others are leader and replica
    view = cluster_view(load_facts("replication-auth-failed.json"))
    assert {m["name"]: m["role"] for m in view["members"]} == {
        "node1": "Replica", "node2": "uninitialized", "node3": "Leader"}


def test_member_table_marks_the_dcs_rest_role_disagreement():
    from doctor.views.cluster import cluster_view
    view = cluster_view(load_facts("no-leader.stale-leader.json"))
    node1 = next(m for m in view["members"] if m["name"] == "node1")
    assert node1["role"] == "Replica" and node1["role_note"] == "DCS: Leader, stale"
    assert view["leader"] is None and view["dcs_leader"] == "node1"


def test_patroni_not_running_names_only_this_clusters_other_daemons():
    # `lab break patroni-not-running` (node3's Patroni SIGKILLed), facts on node3; another engineer's lab
    # (scope postgres too, but its own etcd 127.0.5.x and base dir /var/tmp/lab-dev5) ran on the same host
    facts = load_facts("patroni-not-running.other-clusters.json")
    [v] = findings(facts, "processes.patroni")
    assert v.status == "fail"
    assert "2 Patroni processes of the same cluster run other configs here" in v.summary
    same = [e for e in v.evidence if e.startswith("Patroni of the same cluster")]
    assert len(same) == 2 and all("/var/tmp/lab-dev3/" in e for e in same)
    assert not any("lab-dev5" in e for e in v.evidence)
    assert "3 Patroni processes of other clusters run here (pids 2851, 2852, 4917)" in v.evidence


def test_rest_api_unreachable_is_not_blamed_on_problems_where_patroni_keeps_running():
    # initialize-key-stuck (real facts): node1's REST is refused and no-leader / initialize-key-stuck are
    # present; neither stops a Patroni's REST API (a member waiting for the bootstrap, re-cloning with a
    # wrong password or on a forked timeline answers on its REST port). A dead Patroni is
    # patroni-not-running's to explain.
    rep = analyze(load_facts("initialize-key-stuck.json"), profiles=("run", "replication"))
    rest = next(d for d in rep.diagnoses if d.id == "rest-api-unreachable")
    assert {"no-leader", "initialize-key-stuck"} & {d.id for d in rep.diagnoses} == {"no-leader", "initialize-key-stuck"}
    assert rest.caused_by == [], rest.caused_by
    # the SIGKILLed Patroni (patroni-not-running) still explains a closed REST port
    rep = analyze(load_facts("patroni-not-running.other-clusters.json"), profiles=("run", "replication"))
    rest = next(d for d in rep.diagnoses if d.id == "rest-api-unreachable")
    assert rest.caused_by == ["patroni-not-running"]
