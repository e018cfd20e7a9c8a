"""Member states on real Patroni answers (check_patroni's suite, see fixtures/peer/check_patroni/README.md):
stopped or failed replicas, a leader key over a PostgreSQL that does not run, a standby leader in archive
recovery, pending restarts, scheduled actions, missing members, and the words of older Patroni."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.model import member_states as ms
from doctor.model import model_of
from doctor.pipeline import analyze
from tests.unit.conftest import load_facts
from tests.unit.peer_fixtures import FIXTURES, build

DOCS = Path(__file__).parents[2] / "docs" / "member-states.md"


def diag(report, pid):
    return next((d for d in report.diagnoses if d.id == pid), None)


def test_peer_fixtures_are_current():
    for name, data in build().items():
        assert json.loads((FIXTURES / f"{name}.json").read_text()) == json.loads(json.dumps(data)), name


@pytest.mark.parametrize("fixture,problem,status", [
    ("member-down.peer-stopped.json", "member-down", "warn"),
    ("member-down.peer-start-failed.json", "member-down", "fail"),
    ("leader-postgres-down.peer-standby-leader-stopped.json", "leader-postgres-down", "fail"),
    ("standby-leader-not-streaming.peer-archive-recovery.json", "standby-leader-not-streaming", "warn"),
    ("pending-restart.peer-patroni-2.json", "pending-restart", "warn"),
    ("scheduled-action.peer-overdue.json", "scheduled-action", "warn"),
    ("member-count.peer-expected-3.json", "member-count", "warn"),
    ("member-count.peer-single.json", "member-count", "warn"),
    ("member-count.peer-retained-slot.json", "member-count", "warn"),
    ("replica-not-streaming.peer-archive-recovery.json", "replica-not-streaming", "fail"),
])
def test_each_state_is_named(judge, fixture, problem, status):
    report = judge(fixture)
    d = diag(report, problem)
    assert d is not None and d.status == status, [(x.id, x.status) for x in report.diagnoses]
    assert d.fix_text.strip() and "<name>" not in d.fix_text


@pytest.mark.parametrize("fixture", ["healthy.peer-standby-cluster.json", "healthy.peer-patroni-3.0.0.json",
                                     "healthy.peer-scheduled-switchover.json", "healthy.peer-scheduled-restart.json"])
def test_healthy_states_stay_quiet(judge, fixture):
    report = judge(fixture)
    assert report.diagnoses == [], [(d.id, d.summary) for d in report.diagnoses]


def test_a_stopped_replica_fails_replication_too(judge):
    """`pgdoctor replication` must not exit 0 with a replica stopped."""
    report = judge("member-down.peer-stopped.json", profiles=("replication",))
    assert report.exit_code == 1 and diag(report, "member-down")
    report = judge("member-down.peer-start-failed.json", profiles=("replication",))
    assert report.exit_code == 2
    d = diag(report, "member-down")
    assert "no failover candidate is left" in d.summary
    # no-failover-candidate is the consequence, ranked after its cause
    ids = [x.id for x in report.diagnoses]
    assert ids.index("member-down") < ids.index("no-failover-candidate")
    assert "member-down" in diag(report, "no-failover-candidate").caused_by


def test_leader_postgres_down_ranks_first_and_blocks_writes(judge):
    report = judge("leader-postgres-down.peer-standby-leader-stopped.json")
    assert report.diagnoses[0].id == "leader-postgres-down"
    facts = load_facts("leader-postgres-down.peer-standby-leader-stopped.json")
    w = model_of(facts).replication.writes
    assert w.status == "blocked" and "srv1 holds the leader key" in w.text


def test_a_leader_refusing_connections_is_down(judge):
    facts = load_facts("healthy.replication.json")
    leader = facts.get("dcs.leader")
    pg = facts.data["replication"]["members"][leader]
    facts.data["replication"]["members"][leader] = {"member": leader, "host": pg["host"], "port": pg["port"],
                                                    "reachable": False,
                                                    "error": {"kind": "refused", "message": "connection refused"}}
    report = analyze(facts, profiles=("run", "replication"))
    assert report.diagnoses[0].id == "leader-postgres-down"
    assert "does not accept connections" in report.diagnoses[0].summary
    w = model_of(facts).replication.writes
    assert w.status == "blocked" and "acknowledged by" not in w.text


def test_pending_restart_names_members_and_parameters():
    facts = load_facts("pending-restart.peer-patroni-2.json")
    (p,) = model_of(facts).pending_restarts
    assert p.member == "srv1" and p.parameters == {}
    # pg_settings.pending_restart names the parameters where Patroni (< 4.0) does not
    facts.data["replication"] = {"members": {"srv1": {"reachable": True, "in_recovery": False,
                                                      "pending_restart": [{"name": "max_connections", "setting": "200"}]}}}
    facts.set("replication", facts.data["replication"])
    (p,) = model_of(facts).pending_restarts
    assert p.parameters == {"max_connections": "200"} and p.source == "pg_settings.pending_restart"
    report = analyze(facts, profiles=("run",))
    d = diag(report, "pending-restart")
    assert "restart patroni-demo srv1 --pending" in d.fix_text and "max_connections" in d.summary


def test_pending_restart_reason_of_patroni_4():
    facts = load_facts("pending-restart.peer-patroni-2.json")
    body = facts.data["patroni_api"]["members"]["srv1"]["body"]
    body["pending_restart_reason"] = {"shared_buffers": {"old_value": "128MB", "new_value": "256MB"}}
    facts.set("patroni_api", facts.data["patroni_api"])
    (p,) = model_of(facts).pending_restarts
    assert p.parameters == {"shared_buffers": "128MB → 256MB"}


def test_scheduled_actions_are_read_with_their_time():
    (a,) = model_of(load_facts("healthy.peer-scheduled-switchover.json")).scheduled_actions
    assert (a.kind, a.at, a.from_member, a.member, a.overdue_seconds) == (
        "switchover", "2023-10-08T11:30:00+00:00", "p1", "p2", None)
    (a,) = model_of(load_facts("healthy.peer-scheduled-restart.json")).scheduled_actions
    assert (a.kind, a.member) == ("restart", "p1")


def test_expect_members_overrides_what_the_dcs_knows(judge):
    report = judge("member-count.peer-expected-3.json")
    assert "where 3 are expected (--expect-members)" in diag(report, "member-count").summary
    report = judge("member-count.peer-expected-3.json", settings={"expect_members": 2})
    assert diag(report, "member-count") is None


def test_running_means_not_streaming_only_from_3_0_4():
    assert ms.running_says_streaming("3.0.4") is True
    assert ms.running_says_streaming("3.0.3") is False
    assert ms.running_says_streaming("2.1.7") is False
    assert ms.running_says_streaming(None) is None
    facts = load_facts("healthy.peer-patroni-3.0.0.json")
    rows = {r.name: r for r in model_of(facts).replication.replicas()}
    # the leader's PostgreSQL was not read: its REST replication[] says both stream
    assert all(r.streaming and r.walsender_source == "srv1's REST /patroni replication[]" for r in rows.values())


def test_the_state_table_covers_every_word_patroni_writes():
    words = {s.state for s in ms.STATES}
    for w in ("running", "streaming", "in archive recovery", "stopped", "start failed", "crashed", "restart failed",
              "starting", "creating replica", "stopping", "initializing new cluster", "stop failed", "restarting"):
        assert w in words
    assert ms.is_down("start failed") and ms.is_down("stopped") and not ms.is_down("starting")
    assert ms.kind("something new") == ms.UNKNOWN


def test_the_state_table_in_the_docs_is_current():
    assert ms.table_markdown() in DOCS.read_text()


@pytest.mark.parametrize("fixture,problem,status,words", [
    ("member-down.json", "member-down", "warn", ["'stopped'", "the cluster is paused"]),
    ("member-down.start-failed.json", "member-down", "warn", ["'start failed'"]),
    ("leader-postgres-down.json", "leader-postgres-down", "fail", ["does not accept connections", "still reports it"]),
    ("pending-restart.json", "pending-restart", "warn", ["max_connections 100 → 120"]),
    ("member-count.json", "member-count", "warn", ["where 3 are expected (the DCS history)", "missing: node3"]),
])
def test_lab_captures_are_named(judge, fixture, problem, status, words):
    """Facts captured from the real lab faults (tests/unit/capture_cluster_fixtures.py)."""
    report = judge(fixture)
    d = diag(report, problem)
    assert d is not None and d.status == status, [(x.id, x.status) for x in report.diagnoses]
    assert all(w in d.summary for w in words), d.summary
    if problem == "leader-postgres-down":
        assert report.diagnoses[0].id == problem


def test_lab_capture_of_a_scheduled_switchover_is_shown_not_diagnosed(judge):
    report = judge("healthy.scheduled-switchover.json")
    assert report.diagnoses == []
    f = next(x for x in report.findings if x.check == "cluster.scheduled-action")
    assert f.status == "ok" and "switchover scheduled at" in f.summary
