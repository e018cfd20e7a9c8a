"""``pgdoctor monitor``: check_patroni's services over facts holding check_patroni's own REST answers
(/work/shared/peer-data/check_patroni, PostgreSQL licence; copied into tests/unit/fixtures/check_patroni/),
and the Nagios lines check_patroni 2.2.0 prints for the same answers (its published test expectations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.errors import UsageError
from doctor.facts import Facts
from doctor.monitor import SERVICES, Args, evaluate
from doctor.pipeline import FULL_PROFILES, analyze

PEER = Path(__file__).parent / "fixtures" / "check_patroni"
PATRONI_310 = "cluster_has_replica_patroni_verion_3.1.0.json"


def peer(name: str) -> dict:
    return json.loads((PEER / name).read_text())


def report(cluster: str | None = None, patroni: str | None = PATRONI_310, config: str | None = None,
           leader: str | None = None):
    api: dict = {"name": "srv1"}
    if cluster:
        api["cluster"] = {"status": 200, "body": peer(cluster)}
    if patroni:
        api["patroni"] = {"status": 200, "body": peer(patroni)}
    if config:
        api["config"] = {"status": 200, "body": peer(config)}
    facts = Facts({"version": 1, "patroni_api": api, "config": {"data": {"name": "srv1", "scope": "patroni-demo"}}})
    if leader:
        facts.set("dcs", {"keys_read": True, "leader": leader})
    return analyze(facts, command="monitor", profiles=FULL_PROFILES)


def line(service: str, rep, **kw) -> tuple[str, int]:
    out = evaluate(service, rep, Args(**kw))
    return out.line(), out.state


@pytest.mark.parametrize("cluster,service,kw,expected,state", [
    ("cluster_node_count_ok.json", "cluster_node_count", {},
     "CLUSTERNODECOUNT OK - members is 3 | healthy_members=3 members=3 role_leader=1 role_replica=2 "
     "state_running=1 state_streaming=2", 0),
    ("cluster_node_count_ok.json", "cluster_node_count",
     {"warning": "@0:1", "critical": "@0:2", "healthy_warning": "@2", "healthy_critical": "@1"},
     "CLUSTERNODECOUNT OK - members is 3 | healthy_members=3;@2;@1 members=3;@1;@2 role_leader=1 role_replica=2 "
     "state_running=1 state_streaming=2", 0),
    ("cluster_has_leader_ok.json", "cluster_has_leader", {},
     "CLUSTERHASLEADER OK - The cluster has a running leader. | has_leader=1;;@0 is_leader=1 is_standby_leader=0 "
     "is_standby_leader_in_arc_rec=0;@1:1", 0),
    ("cluster_has_leader_ko.json", "cluster_has_leader", {},
     "CLUSTERHASLEADER CRITICAL - The cluster has no running leader or the standby leader is in archive recovery. | "
     "has_leader=0;;@0 is_leader=0 is_standby_leader=0 is_standby_leader_in_arc_rec=0;@1:1", 2),
    ("cluster_has_replica_ok.json", "cluster_has_replica", {},
     "CLUSTERHASREPLICA OK - healthy_replica is 2 | healthy_replica=2 srv2_lag=0 srv2_sync=0 srv2_timeline=51 "
     "srv3_lag=0 srv3_sync=1 srv3_timeline=51 sync_replica=1 unhealthy_replica=0", 0),
    ("cluster_has_replica_ok_lag.json", "cluster_has_replica", {"warning": "@1", "critical": "@0", "max_lag": "1MB"},
     "CLUSTERHASREPLICA OK - healthy_replica is 2 | healthy_replica=2;@1;@0 srv2_lag=1024 srv2_sync=0 "
     "srv2_timeline=51 srv3_lag=0 srv3_sync=0 srv3_timeline=51 sync_replica=0 unhealthy_replica=0", 0),
    ("cluster_is_in_maintenance_ok.json", "cluster_is_in_maintenance", {},
     "CLUSTERISINMAINTENANCE OK - is_in_maintenance is 0 | is_in_maintenance=0;;0", 0),
    ("cluster_is_in_maintenance_ko.json", "cluster_is_in_maintenance", {},
     "CLUSTERISINMAINTENANCE CRITICAL - is_in_maintenance is 1 (outside range 0:0) | is_in_maintenance=1;;0", 2),
    ("cluster_has_scheduled_action_ko_switchover.json", "cluster_has_scheduled_action", {},
     "CLUSTERHASSCHEDULEDACTION CRITICAL - has_scheduled_actions is 1 (outside range 0:0) | "
     "has_scheduled_actions=1;;0 scheduled_restart=0 scheduled_switchover=1", 2),
    ("cluster_has_scheduled_action_ko_restart.json", "cluster_has_scheduled_action", {},
     "CLUSTERHASSCHEDULEDACTION CRITICAL - has_scheduled_actions is 1 (outside range 0:0) | "
     "has_scheduled_actions=1;;0 scheduled_restart=1 scheduled_switchover=0", 2),
])
def test_cluster_services_print_what_check_patroni_prints(cluster, service, kw, expected, state):
    assert line(service, report(cluster), **kw) == (expected, state)


def test_replicas_lagging_past_max_lag_are_unhealthy():
    text, state = line("cluster_has_replica", report("cluster_has_replica_ko_lag.json"), warning="@1", critical="@0",
                       max_lag="1MB")
    assert state == 2 and text.startswith("CLUSTERHASREPLICA CRITICAL - healthy_replica is 0 (outside range @0:0)")


@pytest.mark.parametrize("node,service,kw,expected,state", [
    ("node_is_replica_ok.json", "node_is_replica", {},
     "NODEISREPLICA OK - This node is a running replica with no noloadbalance tag. | is_replica=1;;@0", 0),
    ("node_is_replica_ko.json", "node_is_replica", {},
     "NODEISREPLICA CRITICAL - This node is not a running replica with no noloadbalance tag. | is_replica=0;;@0", 2),
    ("node_is_replica_ok.json", "node_is_replica", {"is_async": True},
     "NODEISREPLICA OK - This node is a running asynchronous replica with no noloadbalance tag. | is_replica=1;;@0", 0),
    ("node_is_replica_ok_sync.json", "node_is_replica", {"is_sync": True, "sync_type": "sync"},
     "NODEISREPLICA OK - This node is a running synchronous replica of kind 'sync' with no noloadbalance tag. | "
     "is_replica=1;;@0", 0),
    ("node_is_pending_restart_ko.json", "node_is_pending_restart", {},
     "NODEISPENDINGRESTART CRITICAL - This node has the pending restart flag. | is_pending_restart=1;;0", 2),
    ("node_is_pending_restart_ok.json", "node_is_pending_restart", {},
     "NODEISPENDINGRESTART OK - This node doesn't have the pending restart flag. | is_pending_restart=0;;0", 0),
    ("node_tl_has_changed.json", "node_tl_has_changed", {"timeline": "58"},
     "NODETLHASCHANGED OK - The timeline is still 58. | is_timeline_changed=0;;@1:1 timeline=58", 0),
    ("node_tl_has_changed.json", "node_tl_has_changed", {"timeline": "700"},
     "NODETLHASCHANGED CRITICAL - The expected timeline was 700 got 58. | is_timeline_changed=1;;@1:1 timeline=58", 2),
    ("node_patroni_version.json", "node_patroni_version", {"patroni_version": "2.0.2"},
     "NODEPATRONIVERSION OK - Patroni's version is 2.0.2. | is_version_ok=1;;@0", 0),
    ("node_is_leader_ok.json", "node_is_alive", {},
     "NODEISALIVE OK - This node is alive (patroni is running). | is_alive=1;;@0", 0),
])
def test_node_services_print_what_check_patroni_prints(node, service, kw, expected, state):
    assert line(service, report(patroni=node), **kw) == (expected, state)


def test_node_is_primary_and_leader_need_the_leader_key():
    rep = report(patroni="node_is_primary_ok.json", leader="srv1")
    assert line("node_is_primary", rep)[1] == 0 and line("node_is_leader", rep)[1] == 0
    rep = report(patroni="node_is_primary_ok.json", leader="srv2")
    assert line("node_is_primary", rep) == (
        "NODEISPRIMARY CRITICAL - This node is not the primary with the leader lock. | is_primary=0;;@0", 2)
    assert line("node_is_primary", report(patroni="node_is_primary_ko.json", leader="srv1"))[1] == 2


def test_config_hash_equals_check_patroni_hash_and_state_file_round_trips(tmp_path):
    rep = report(config="cluster_config_has_changed.json")
    assert line("cluster_config_has_changed", rep, config_hash="30022c301991e7395182b1134683e518") == (
        "CLUSTERCONFIGHASCHANGED OK - The hash of patroni's dynamic configuration has not changed "
        "(30022c301991e7395182b1134683e518). | is_configuration_changed=0;;@1:1", 0)
    assert line("cluster_config_has_changed", rep, config_hash="96b12d82571473d13e890b8937ffffff") == (
        "CLUSTERCONFIGHASCHANGED CRITICAL - The hash of patroni's dynamic configuration has changed. The old hash was "
        "96b12d82571473d13e890b8937ffffff. | is_configuration_changed=1;;@1:1", 2)
    state = tmp_path / "cfg.state"
    first = line("cluster_config_has_changed", rep, state_file=str(state), save=True)
    assert first[1] == 2 and "The old hash was None" in first[0]  # nothing saved yet
    assert json.loads(state.read_text())["hash"] == "30022c301991e7395182b1134683e518"
    assert line("cluster_config_has_changed", rep, state_file=str(state))[1] == 0
    with pytest.raises(UsageError):
        evaluate("cluster_config_has_changed", rep, Args())


def test_timeline_state_file(tmp_path):
    rep = report(patroni="node_tl_has_changed.json")
    state = tmp_path / "tl.state"
    state.write_text(json.dumps({"timeline": 57}))
    assert line("node_tl_has_changed", rep, state_file=str(state), save=True)[1] == 2
    assert json.loads(state.read_text())["timeline"] == 58
    assert line("node_tl_has_changed", rep, state_file=str(state))[1] == 0


def test_unreachable_rest_api_is_unknown_except_node_is_alive():
    facts = Facts({"version": 1, "patroni_api": {"name": "srv1", "patroni": {"error": {"kind": "refused",
                                                                              "message": "connection refused"}}},
                   "config": {"data": {"name": "srv1"}}})
    rep = analyze(facts, command="monitor", profiles=FULL_PROFILES)
    assert line("cluster_has_leader", rep)[1] == 3
    assert line("node_is_pending_restart", rep)[1] == 3
    assert line("node_is_alive", rep) == ("NODEISALIVE CRITICAL - This node is not alive (patroni is not running). | "
                                          "is_alive=0;;@0", 2)


def test_pgdoctor_service_is_the_whole_diagnosis():
    from tests.unit.conftest import load_facts
    rep = analyze(load_facts("split-brain.json"), command="monitor", profiles=FULL_PROFILES)
    text, state = line("pgdoctor", rep)
    assert state == 2 and text.startswith("PGDOCTOR CRITICAL - ") and "split-brain" in text
    assert f"diagnoses_critical={sum(1 for d in rep.diagnoses if d.severity == 'critical')}" in text
    assert rep.diagnoses[0].id == "split-brain" and "split-brain: split brain: 2 members" in text
    healthy = analyze(load_facts("healthy.replication.json"), command="monitor", profiles=FULL_PROFILES)
    assert line("pgdoctor", healthy)[0].startswith("PGDOCTOR OK - no problem found | checks_error=0")


def test_every_check_patroni_service_is_served():
    assert set(SERVICES) == {"cluster_config_has_changed", "cluster_has_leader", "cluster_has_replica",
                             "cluster_has_scheduled_action", "cluster_is_in_maintenance", "cluster_node_count",
                             "node_is_alive", "node_is_leader", "node_is_pending_restart", "node_is_primary",
                             "node_is_replica", "node_patroni_version", "node_tl_has_changed", "pgdoctor"}


def test_prometheus_exposition_parses():
    from prometheus_client.parser import text_string_to_metric_families

    from doctor.render.emit import render_document
    from tests.unit.test_verify import facts as verify_facts
    f = verify_facts()
    rep = analyze(f, command="verify", profiles=("verify",))
    text = render_document(rep.as_dict(), rep.facts, "prometheus")
    fams = {fam.name: fam for fam in text_string_to_metric_families(text)}
    rt = {s.labels["member"]: s.value for s in fams["pgdoctor_round_trip_milliseconds"].samples}
    assert rt == {"node2": 3.4, "node3": 4.1}
    status = {s.labels["check"]: s.value for s in fams["pgdoctor_check_status"].samples}
    assert status["verify.round-trip"] == 0 and status["cluster.split-brain"] == 0
    lag = {s.labels["member"] for s in fams["pgdoctor_replication_lag_bytes"].samples}
    assert lag == {"node2", "node3"}
    assert [s.value for s in fams["pgdoctor_verdict_exit_code"].samples] == [0]
    sb = analyze(verify_facts("split-brain.json"), command="verify", profiles=("verify",))
    fams = {fam.name: fam for fam in text_string_to_metric_families(render_document(sb.as_dict(), sb.facts,
                                                                                    "prometheus"))}
    by_sev = {s.labels["severity"]: s.value for s in fams["pgdoctor_diagnoses"].samples}
    assert by_sev["critical"] == sum(1 for d in sb.diagnoses if d.severity == "critical") >= 1
    assert {s.labels["check"]: s.value for s in fams["pgdoctor_check_status"].samples}["cluster.split-brain"] == 2
