"""The cluster model: built once per facts snapshot, typed, and serialised to the same JSON keys."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import doctor.model as model_pkg
from doctor.facts import Facts
from doctor.model import model_of
from doctor.model.patroni_rules import tag_rules
from doctor.model.rows import MemberRow
from doctor.pipeline import analyze
from doctor.views.replication import replication_view

FIXTURES = Path(__file__).parent / "fixtures"

# The keys of one member in the replication view's JSON (docs/json-output.md), in their order.
REPLICATION_ROW_KEYS = (
    "name", "host", "port", "role", "state", "timeline", "in_dcs", "source", "pg_reachable", "pg_error",
    "lsn", "lsn_bytes", "receive_lsn", "receive_lsn_bytes", "replay_lsn", "replay_lsn_bytes", "lsn_source",
    "receive_lag_bytes", "replay_lag_bytes", "failover_lag_bytes", "lag_source", "lag_seconds",
    "lag_seconds_source", "write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds", "walsender_state",
    "walsender_source", "sync_state", "sync_priority", "in_sync_key", "streaming", "wal_receiver_status", "wal_receiver_sender",
    "wal_receiver_slot", "replay_paused", "replay_pause_state", "tags", "nofailover", "nosync",
    "failover_priority", "slot", "failover", "sync_candidate", "synchronous_standby_names", "sync_waiters",
    "role_note", "disagree", "patroni_state", "patroni_version")


def load(name: str) -> Facts:
    return Facts(json.loads((FIXTURES / name).read_text()))


def test_one_build_per_snapshot_shared_by_checks_and_view(monkeypatch):
    builds = []
    real = model_pkg.build_replication

    def counting(*args, **kwargs):
        builds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_pkg, "build_replication", counting)
    facts = load("replication-lag.json")
    report = analyze(facts, command="replication", profiles=("replication",)).as_dict()
    assert len([f for f in report["findings"] if f["check"].startswith("replication.")]) >= 5
    assert report["replication"]["members"]
    assert len(builds) == 1
    assert model_of(facts) is model_of(facts)


def test_changing_the_snapshot_drops_the_model():
    facts = load("healthy.replication.json")
    before = model_of(facts)
    facts.set("settings", {"max_lag_bytes": 1})
    assert model_of(facts) is not before


def test_member_row_fields_are_the_json_keys():
    assert tuple(f.name for f in dataclasses.fields(MemberRow)) == REPLICATION_ROW_KEYS
    view = replication_view(load("replication-slot-problem.json"))
    for row in view["members"]:
        assert tuple(row) == REPLICATION_ROW_KEYS
    json.dumps(view)


def test_missing_slot_serialises_without_its_details():
    facts = load("healthy.replication.json")
    lead = facts.data["replication"]["members"]["node1"]
    lead["slots"] = [s for s in lead["slots"] if s["slot_name"] != "node3"]
    node3 = next(r for r in replication_view(facts)["members"] if r["name"] == "node3")
    assert node3["slot"] == {"name": "node3", "exists": False}


@pytest.mark.parametrize("name,dcs,writable", [
    ("healthy.replication.json", "node1", "node1"),
    ("no-leader.stale-leader.json", "node1", None),  # the key survives in a quorum-less etcd member
])
def test_dcs_leader_and_writable_leader(name, dcs, writable):
    m = model_of(load(name))
    assert (m.dcs_leader, m.writable_leader) == (dcs, writable)


def test_typed_accessors_never_return_the_wrong_shape():
    facts = Facts({"version": 1, "dcs": {"config": "garbage", "members": {"a": 1}, "leader": "",
                                          "status": {"optime": "12"}, "keys_error": {"kind": "timeout"}},
                   "replication": {"error": {"kind": "timeout"}}, "patroni_api": {"members": [1, 2]}})
    assert facts.dcs_config is None
    assert facts.dcs_members == []
    assert facts.dcs_leader is None
    assert facts.dcs_optime is None
    assert facts.dcs_keys_error == {"kind": "timeout"}
    assert facts.rest_answers == {}
    assert facts.pg_members == {}
    assert facts.postgres_settings == {} and facts.datadir == {} and facts.config == {}


@pytest.mark.parametrize("tags,nofailover,priority,nosync", [
    ({}, False, 1, False),
    ({"nofailover": True}, True, 0, False),
    ({"failover_priority": 0}, True, 0, False),
    ({"failover_priority": 3, "nofailover": False}, False, 3, False),  # the boolean tag wins when set
    ({"sync_priority": 0}, False, 1, True),
    ({"nosync": True, "sync_priority": 5}, False, 1, True),
])
def test_tags_mean_what_patroni_says(tags, nofailover, priority, nosync):
    t = tag_rules(tags)
    assert (t.nofailover, t.failover_priority, t.nosync) == (nofailover, priority, nosync)
