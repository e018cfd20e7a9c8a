"""Replication checks and the ``replication`` view on facts captured from the real lab.

Each fixture is a trimmed snapshot taken on the lab in the scenario it is named after
(sync-standby-unavailable: strict, synchronous_node_count 2, both replicas stopped; ...).
A few tests derive edge cases from them by changing one fact, said so in the test.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from cli_runner import run_cli

from doctor.facts import Facts
from doctor.model import model_of
from doctor.model.patroni_rules import slot_name
from doctor.model.replication import ReplicationState
from doctor.model.rows import MemberRow
from doctor.pipeline import analyze
from doctor.views.replication import replication_view

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def load_facts(name: str) -> Facts:
    return Facts(json.loads((FIXTURES / name).read_text()))

OURS = {"sync-standby-unavailable", "replication-lag", "no-failover-candidate", "replication-slot-problem",
        "replica-not-streaming"}


def judge(facts: Facts, **settings) -> dict:
    return analyze(facts, command="replication", profiles=("replication",), settings=settings or None).as_dict()


def diag(report: dict, pid: str) -> dict:
    found = [d for d in report["diagnoses"] if d["id"] == pid]
    assert found, f"no {pid} diagnosis; got {[d['id'] for d in report['diagnoses']]}"
    return found[0]


def ours(report: dict) -> set[str]:
    return {d["id"] for d in report["diagnoses"]} & OURS


def model(facts: Facts) -> ReplicationState:
    return model_of(facts).replication


def row(facts: Facts, name: str) -> MemberRow:
    found = model(facts).row(name)
    assert found is not None, name
    return found


# --------------------------------------------------------------------------- healthy


def test_healthy_async_cluster_has_no_replication_findings():
    facts = load_facts("healthy.replication.json")
    report = judge(facts)
    assert not ours(report)
    mine = [f for f in report["findings"] if f["check"].startswith("replication.")]
    assert len(mine) == 5 and all(f["status"] == "ok" for f in mine), mine
    m = model(facts)
    assert m.writes.status == "async"
    assert m.failover.text == "candidates: node2 (lag 0 B), node3 (lag 0 B)"


def test_member_figures_are_the_servers_own():
    """The table's LSNs are what each replica and the leader's pg_stat_replication reported."""
    facts = load_facts("healthy.replication.json")
    pg = facts.get("replication.members")
    for name in ("node2", "node3"):
        r = row(facts, name)
        pos = pg[name]["position"]
        assert r.receive_lsn == pos["receive_lsn"] and r.replay_lsn == pos["replay_lsn"]
        ws = next(w for w in pg["node1"]["stat_replication"] if w["application_name"] == name)
        assert r.sync_state == ws["sync_state"] and r.walsender_state == ws["state"]
        assert r.replay_lag_seconds == ws["replay_lag_seconds"]
        assert r.replay_lag_bytes == pg["node1"]["position"]["current_lsn_bytes"] - pos["replay_lsn_bytes"]
        assert r.slot is not None and r.slot.name == name and r.slot.active is True


# --------------------------------------------------------------------------- sync-standby-unavailable


def test_strict_sync_without_standbys_blocks_writes():
    report = judge(load_facts("sync-standby-unavailable.strict.json"))
    d = diag(report, "sync-standby-unavailable")
    assert d["status"] == "fail" and report["exit_code"] == 2
    assert "BLOCKED: strict mode needs 2 synchronous standbys, 0 are streaming" in d["summary"]
    assert "synchronous_standby_names = '*'" in d["summary"]
    fixes = "\n".join(d["fix"])
    assert "patronictl -c /var/tmp/lab-dev7/node1/patroni.yml edit-config --set synchronous_mode_strict=false" in fixes
    assert "# on node2, node3" in fixes
    # both standbys' PostgreSQL is stopped: that is the cause, ranked first (member-down explains it)
    assert report["diagnoses"][0]["id"] == "member-down" and "member-down" in d["caused_by"]
    # with no standby at all, lowering synchronous_node_count cannot help: not offered
    assert "synchronous_node_count=" not in fixes


def test_non_strict_sync_without_standbys_is_a_warning():
    report = judge(load_facts("sync-standby-unavailable.nonstrict.json"))
    d = diag(report, "sync-standby-unavailable")
    assert d["status"] == "warn"
    assert "not protected: synchronous mode is on but no standby is synchronous" in d["summary"]


def test_strict_sync_with_one_of_two_standbys_is_degraded_not_blocked():
    """Real Patroni lowers synchronous_node_count to what streams: synchronous_standby_names = 'node1'."""
    facts = load_facts("sync-standby-unavailable.degraded.json")
    assert facts.get("replication.members.node2.settings.synchronous_standby_names") == "node1"
    report = judge(facts)
    d = diag(report, "sync-standby-unavailable")
    assert d["status"] == "warn"
    assert "acknowledged by 1 synchronous standby (node1) while synchronous_node_count is 2" in d["summary"]
    assert "--set synchronous_node_count=1" in "\n".join(d["fix"])
    assert model(facts).writes.status == "degraded"


def test_synchronous_node_count_that_can_never_be_met():
    """Derived from the healthy snapshot: synchronous_mode on with synchronous_node_count 3 and 3 members."""
    facts = load_facts("healthy.replication.json")
    facts.data["dcs"]["config"].update(synchronous_mode=True, synchronous_node_count=3)
    report = judge(facts)
    d = diag(report, "sync-standby-unavailable")
    assert any("can never be satisfied with 3 members" in s for s in d["summaries"]), d["summaries"]
    assert model(facts).synchronous_node_count.satisfiable is False


def test_every_replica_nosync_can_never_be_met():
    """Derived from the healthy snapshot: both replicas tagged nosync, synchronous_mode on."""
    facts = load_facts("healthy.replication.json")
    facts.data["dcs"]["config"]["synchronous_mode"] = True
    for m in facts.data["dcs"]["members"]:
        if m["name"] != "node1":
            m["tags"] = {"nosync": True}
    for name, a in facts.data["patroni_api"]["members"].items():
        if name != "node1":
            a["body"]["tags"] = {"nosync": True}
    d = diag(judge(facts), "sync-standby-unavailable")
    assert any("every replica is tagged nosync" in s for s in d["summaries"]), d["summaries"]


def test_quorum_mode_roles_and_verdict():
    facts = load_facts("healthy.replication-quorum.json")
    m = model(facts)
    assert {r.name: r.role for r in m.members} == {"node1": "Quorum Standby", "node2": "Leader",
                                                           "node3": "Quorum Standby"}
    assert m.writes.text == "acknowledged by any 1 of 2 quorum standbys (node1, node3)"
    assert not ours(judge(facts))


# --------------------------------------------------------------------------- replication-lag


def test_paused_replay_is_replication_lag_with_the_real_byte_figure():
    facts = load_facts("replication-lag.json")
    pg = facts.get("replication.members")
    expected = pg["node1"]["position"]["current_lsn_bytes"] - pg["node3"]["position"]["replay_lsn_bytes"]
    assert expected > 10_000_000
    report = judge(facts)
    d = diag(report, "replication-lag")
    assert d["status"] == "warn"
    assert f"node3 is 32.5 MB ({expected} bytes) behind node1 in replay" in d["summary"]
    assert "WAL replay is paused" in d["summary"]
    assert ('psql -h 127.0.7.13 -p 5432 -U postgres -d postgres -c "SELECT pg_wal_replay_resume();"'
            in "\n".join(d["fix"]))
    assert row(facts, "node3").replay_lag_bytes == expected
    # Patroni measures failover lag on max(received, replayed): node3 stays a candidate, with a note
    f = model(facts).failover
    assert [c.name for c in f.candidates] == ["node2", "node3"]
    assert "maintenance mode (paused)" in f.text


def test_user_thresholds():
    facts = load_facts("healthy.replication.json")
    assert not ours(judge(facts, max_lag_bytes=1))  # every replica is at 0 B
    facts = load_facts("replication-lag.json")
    report = judge(facts, max_lag_bytes=1024 * 1024, max_lag_seconds=1.0)
    d = diag(report, "replication-lag")
    assert "> --max-lag-bytes 1.0 MB" in d["summary"] and "> --max-lag-seconds 1 s" in d["summary"]


def test_lag_from_the_dcs_when_postgresql_cannot_be_reached():
    """Derived from the lag snapshot: the replication collector failed; figures come from the member keys."""
    facts = load_facts("replication-lag.json")
    facts.data["replication"] = {"error": {"kind": "timeout", "message": "collector did not finish"}}
    r = row(facts, "node3")
    dcs_node3 = next(m for m in facts.get("dcs.members") if m["name"] == "node3")
    assert r.lsn_source == "DCS" and r.lag_source == "DCS member key"
    assert r.replay_lag_bytes == facts.get("dcs.status.optime") - dcs_node3["replay_lsn"]
    assert "replication-lag" in ours(judge(facts))


# --------------------------------------------------------------------------- no-failover-candidate


def test_all_replicas_nofailover():
    report = judge(load_facts("no-failover-candidate.json"))
    d = diag(report, "no-failover-candidate")
    assert d["status"] == "fail"
    assert "no candidate: automatic failover would not happen (node2: tagged nofailover; node3: tagged nofailover)" \
        in d["summary"]
    assert "patronictl -c /var/tmp/lab-dev7/node1/patroni.yml reload postgres" in "\n".join(d["fix"])


def test_failover_priority_zero_counts_as_nofailover():
    """Derived from the healthy snapshot: Patroni's rule, failover_priority <= 0 means nofailover."""
    facts = load_facts("healthy.replication.json")
    for a in facts.data["patroni_api"]["members"].values():
        if a["body"]["role"] == "replica":
            a["body"]["tags"] = {"failover_priority": 0}
    d = diag(judge(facts), "no-failover-candidate")
    assert "failover_priority 0" in d["summary"]


def test_lag_beyond_maximum_lag_on_failover_excludes():
    """Derived from the lag snapshot: maximum_lag_on_failover 0 and node2's receive position moved back 41 MB."""
    facts = load_facts("healthy.replication.json")
    facts.data["replication"]["members"]["node3"]["position"]["receive_lsn_bytes"] -= 41 * 1024 * 1024
    facts.data["replication"]["members"]["node3"]["position"]["replay_lsn_bytes"] -= 41 * 1024 * 1024
    f = model(facts).failover
    assert f.text == "candidates: node2 (lag 0 B), node3 excluded (lag 41.0 MB > maximum_lag_on_failover 1.0 MB)"


# --------------------------------------------------------------------------- slots


def test_inactive_slot_retaining_wal():
    facts = load_facts("replication-slot-problem.json")
    report = judge(facts)
    d = diag(report, "replication-slot-problem")
    retained = next(s for s in facts.get("replication.members.node2.slots") if s["slot_name"] == "node3")["retained_bytes"]
    assert f"inactive slot node3 (member node3) on node2 retains 39.2 MB ({retained} bytes)" in d["summary"]
    assert any("max_slot_wal_keep_size is -1 (unlimited)" in s for s in d["summaries"])
    fixes = "\n".join(d["fix"])
    assert "SELECT pg_drop_replication_slot('node3');" in fixes
    assert "WARNING" in d["fix_text"]
    # below the default threshold (1 GB) the same slot is no finding
    facts.data["settings"] = {}
    assert "replication-slot-problem" not in ours(judge(facts))


def test_missing_member_slot():
    """Derived from the healthy snapshot: node3's slot is gone from the leader."""
    facts = load_facts("healthy.replication.json")
    lead = facts.data["replication"]["members"]["node1"]
    lead["slots"] = [s for s in lead["slots"] if s["slot_name"] != "node3"]
    d = diag(judge(facts), "replication-slot-problem")
    assert "member node3 streams without its slot node3 on node1" in d["summary"]


def test_slot_names_follow_patroni():
    assert slot_name("pg-1.example") == "pg_1_example"
    assert slot_name("Node2") == "node2"
    assert slot_name("a b") == "au0032b"


# --------------------------------------------------------------------------- replica-not-streaming


def test_running_replica_that_does_not_stream():
    facts = load_facts("replica-not-streaming.json")
    report = judge(facts)
    d = diag(report, "replica-not-streaming")
    assert d["status"] == "fail"
    assert "node1 is running as a replica but not streaming from node2: its WAL receiver is 'waiting'" in d["summary"]
    assert "patronictl -c /var/tmp/lab-dev7/node1/patroni.yml reinit postgres node1" in "\n".join(d["fix"])
    assert "node1 excluded (not streaming (state running))" in model(facts).failover.text


# --------------------------------------------------------------------------- the view's JSON


@pytest.mark.parametrize("name", ["healthy.replication.json", "replication-lag.json", "sync-standby-unavailable.strict.json",
                                  "replication-slot-problem.json"])
def test_view_json_carries_every_figure_as_numbers(name):
    view = replication_view(load_facts(name))
    json.dumps(view)  # serialisable
    assert set(view) >= {"settings", "members", "writes", "failover", "synchronous_node_count", "thresholds"}
    for r in view["members"]:
        for k in ("receive_lag_bytes", "replay_lag_bytes", "receive_lsn_bytes", "replay_lsn_bytes",
                  "write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds", "lag_seconds"):
            if k in r and r[k] is not None:
                assert isinstance(r[k], (int, float)) and not isinstance(r[k], bool), (k, r[k])
        for k in ("receive_lag_bytes", "replay_lag_bytes"):
            assert r.get(k) is None or isinstance(r[k], int)
        for k in ("name", "host", "role", "state", "timeline", "sync_state", "replay_paused", "tags", "slot", "failover"):
            assert k in r, k
    assert isinstance(view["settings"]["maximum_lag_on_failover"], int)


def test_check_is_pure():
    """Judging twice gives the same findings; the facts are not modified."""
    facts = load_facts("sync-standby-unavailable.strict.json")
    before = copy.deepcopy(facts.data)
    a, b = judge(facts), judge(facts)
    assert [f["summary"] for f in a["findings"]] == [f["summary"] for f in b["findings"]]
    before.pop("settings", None)
    after = dict(facts.data)
    after.pop("settings", None)
    assert before == after


_cli = run_cli


def test_cli_bad_threshold_is_a_one_line_usage_error():
    out = _cli("replication", "--max-lag-bytes", "lots")
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.stderr.startswith("pgdoctor: not a size: 'lots'") and "Traceback" not in out.stderr
    out = _cli("replication", "--help")
    assert out.returncode == 0 and "--max-lag-seconds" in out.stdout


# --------------------------------------------------------------- stale DCS, no writable primary
# no-leader.stale-leader.json: `lab break dcs-unreachable.quorum-lost --node node1` (etcd2, etcd3 stopped), facts
# taken on node1 after node1 demoted itself: the quorum-less etcd1 still serves /leader = node1 from its
# local copy while every member's REST says role replica and pg_is_in_recovery() is true everywhere.

def test_stale_leader_key_is_not_taken_for_a_writable_primary():
    facts = load_facts("no-leader.stale-leader.json")
    assert facts.get("dcs.leader") == "node1" and facts.get("dcs.keys_consistency") == "serializable"
    m = model(facts)
    roles = {r.name: r.role for r in m.members}
    assert "Leader" not in roles.values(), roles
    node1 = row(facts, "node1")
    assert node1.role_note == "DCS: Leader, stale"
    assert any("pg_is_in_recovery() = true" in x for x in node1.disagree or [])
    assert m.writes.status == "blocked"
    assert m.writes.text.startswith("BLOCKED: no writable primary") and "node1 leader" in m.writes.text
    assert m.failover.status == "unknown" and m.failover.candidates == []
    assert "etcd has no quorum" in m.failover.text
    assert all(r.failover is not None and r.failover.candidate is None for r in m.members)
    # the two leaders the model keeps apart: the key's holder and the writable primary (none here)
    assert model_of(facts).dcs_leader == "node1" and model_of(facts).writable_leader is None


def test_stale_dcs_verdict_is_not_healthy_and_claims_nothing_from_stale_keys():
    rep = judge(load_facts("no-leader.stale-leader.json"))
    assert rep["exit_code"] != 0
    ids = [d["id"] for d in rep["diagnoses"]]
    assert "no-leader" in ids
    assert "replica-not-streaming" not in ids and "no-failover-candidate" not in ids
    checks = {(c["check"], c["status"]): c for c in rep["findings"]}
    skipped = checks[("replication.streaming", "skip")]["summary"]
    assert "etcd has no quorum" in skipped
    assert ("replication.failover-candidate", "skip") in checks
    sync = checks[("replication.sync-standby", "ok")]["summary"]
    assert "unknown" not in sync and "synchronous_mode is off (/service/postgres/config in the DCS)" in sync


def test_sync_standby_summary_without_leader_names_what_is_known():
    # initialize-key-stuck: no leader at all; the summary used to read "synchronous_mode is off: unknown"
    facts = load_facts("initialize-key-stuck.json") if (FIXTURES / "initialize-key-stuck.json").exists() else None
    assert facts is not None
    rep = judge(facts)
    summaries = [c["summary"] for c in rep["findings"] if c["check"] == "replication.sync-standby"]
    assert summaries and all(": unknown" not in s for s in summaries), summaries


def test_unreadable_dcs_writes_verdict_says_what_was_reached():
    # dcs-unreachable.json (cluster checks' fixture): every etcd member stopped, facts on node1, whose
    # REST says replica; the other members are unknown, so writes are unknown, not "no leader"
    facts = load_facts("dcs-unreachable.json")
    w = model(facts).writes
    assert w.status == "unknown"
    assert "etcd has no quorum" in w.text and "node1: REST role replica" in w.text
