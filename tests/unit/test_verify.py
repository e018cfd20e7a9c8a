"""``pgdoctor verify`` on facts: the checklist's order, each item's pass and failure, the split-brain
check first in every ranking, and the round trip and autostart facts as their collectors write them.

Facts come from the real lab (``healthy.replication.json``); the round trip and autostart domains,
which that capture predates, are added here in the shape ``doctor/collect/roundtrip.py`` and
``doctor/collect/autostart.py`` write, with the lab's member names and LSNs. ``split-brain.json`` is
``healthy.replication.json`` with node2 promoted (said in its ``_derived`` field).
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from doctor.facts import Facts
from doctor.pipeline import analyze
from doctor.render.emit import render_document
from tests.unit.conftest import FIXTURES, load_facts

SCHEMA = json.loads((FIXTURES.parents[2] / "doctor" / "schemas" / "report.schema.json").read_text())
ORDER = ["cluster.split-brain", "verify.members", "verify.timeline", "verify.lag", "verify.round-trip",
         "verify.rest-api", "autostart.patroni", "verify.etcd"]


def put(f: Facts, path: str, value) -> None:
    """Change one value at a dotted path (``Facts.set`` replaces whole domains), dropping the model memo."""
    domain, *keys = path.split(".")
    node = f.data[domain]
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    f.set(domain, f.data[domain])


def unit(name: str, enabled: bool, text: str) -> dict:
    return {"name": name, "systemd_booted": True, "systemctl": True, "installed": True, "enabled": enabled,
            "enabled_text": text, "enabled_source": "systemctl is-enabled",
            "unit_files": [f"/lib/systemd/system/{name}.service"]}


def round_trip(**replica_overrides: dict) -> dict:
    replicas = {"node2": {"reachable": True, "arrived": True, "ms": 3.4, "replay_lsn": "0/404B3A8",
                          "replay_lsn_bytes": 67417000, "replay_paused": False},
                "node3": {"reachable": True, "arrived": True, "ms": 4.1, "replay_lsn": "0/404B3A8",
                          "replay_lsn_bytes": 67417000, "replay_paused": False}}
    for name, patch in replica_overrides.items():
        replicas[name] = {**replicas[name], **patch}
    return {"leader": "node1", "timeout_seconds": 5.0, "sync_acks": {}, "replicas": replicas,
            "marker": {"method": "pg_logical_emit_message", "lsn": "0/404B3A0", "lsn_bytes": 67416992}}


def facts(name: str = "healthy.replication.json", rt: dict | None = None, patroni_enabled: bool = True,
          distro_enabled: bool = False, systemd: bool = True) -> Facts:
    f = load_facts(name)
    f.set("roundtrip", rt if rt is not None else round_trip())
    f.set("autostart", {"systemd": systemd,
                        "patroni": unit("patroni", patroni_enabled, "enabled" if patroni_enabled else "disabled")
                        | ({} if systemd else {"systemctl": False}),
                        "postgresql": unit("postgresql", distro_enabled, "enabled" if distro_enabled else "disabled")})
    return f


def verify(f: Facts, **settings):
    rep = analyze(f, command="verify", profiles=("verify",), settings=settings)
    return rep, {i["check"]: i for i in rep.extra["verify"]["items"]}


def test_healthy_cluster_passes_every_item_in_the_course_order():
    rep, items = verify(facts())
    assert [i["check"] for i in rep.extra["verify"]["items"]] == ORDER
    assert {c: i["status"] for c, i in items.items()} == {c: "ok" for c in ORDER}
    assert "all 3 members: 1 Leader, 2 Replicas" in items["verify.members"]["summary"]
    assert "slowest 4.1 ms" in items["verify.round-trip"]["summary"]
    assert any("node2: replayed past it in 3.4 ms" in e for e in items["verify.round-trip"]["evidence"])
    assert rep.exit_code == 0 and rep.diagnoses == []
    doc = rep.as_dict()
    jsonschema.validate(doc, SCHEMA)
    assert doc["verify"]["round_trip"]["replicas"]["node3"]["ms"] == 4.1


def test_text_and_html_show_the_checklist():
    rep, _ = verify(facts(rt=round_trip(node3={"arrived": False, "ms": None, "replay_paused": True,
                                                 "replay_lsn": "0/4000000"})))
    text = render_document(rep.as_dict(), rep.facts, "text")
    assert "✓ all members listed" in text and "✗ test data replicates to all nodes" in text
    assert "node2: replayed past it in 3.4 ms" in text
    assert "pg_wal_replay_resume()" in text  # the fix, under the failed item
    html = render_document(rep.as_dict(), rep.facts, "html")
    assert "replication-round-trip" in html


def test_round_trip_not_arriving_fails_with_the_reason():
    rep, items = verify(facts(rt=round_trip(node3={"arrived": False, "ms": None, "replay_paused": True,
                                                     "replay_lsn": "0/4000000"})))
    it = items["verify.round-trip"]
    assert it["status"] == "fail" and "node3" in it["summary"] and "5.0 s" in it["summary"]
    assert any("replay paused at 0/4000000" in e for e in it["evidence"])
    assert rep.exit_code == 2 and rep.diagnoses[0].id == "replication-round-trip"


def test_round_trip_unacknowledged_sync_standby_fails():
    rt = round_trip()
    rt["sync_acks"] = {"node2": {"sync_state": "sync", "acknowledged": False, "ms": None}}
    _, items = verify(facts(rt=rt))
    assert items["verify.round-trip"]["status"] == "fail"
    assert any("node2 (sync standby): no acknowledgement" in e for e in items["verify.round-trip"]["evidence"])
    rt["sync_acks"] = {"node2": {"sync_state": "sync", "acknowledged": True, "ms": 2.0}}
    _, items = verify(facts(rt=rt))
    assert items["verify.round-trip"]["status"] == "ok" and "1 synchronous standby" in items["verify.round-trip"]["summary"]


def test_round_trip_without_leader_fails():
    _, items = verify(facts(rt={"error": {"kind": "no-leader", "message": "the DCS names no leader: nothing was written"}}))
    assert items["verify.round-trip"]["status"] == "fail" and "no-leader" in items["verify.round-trip"]["summary"]


def test_expect_members_more_than_listed_fails_members():
    rep, items = verify(facts(), expect_members=4)
    it = items["verify.members"]
    assert it["status"] == "fail" and "expected 4" in it["summary"]
    assert any("--expect-members" in e for e in it["evidence"])


def test_member_missing_from_dcs_but_named_by_status_fails():
    f = facts()
    put(f, "dcs.members", [m for m in f.get("dcs.members") if m["name"] != "node3"])
    put(f, "dcs.status.retain_slots", ["node1", "node2", "node3"])
    _, items = verify(f)
    assert items["verify.members"]["status"] == "fail" and "missing: node3" in items["verify.members"]["summary"]


def test_lag_over_zero_mb_warns_and_past_failover_limit_fails():
    f = facts()
    put(f, "dcs.status.optime", f.get("dcs.status.optime") + 3 * 1024 * 1024)
    put(f, "dcs.config.maximum_lag_on_failover", 16 * 1024 * 1024)
    _, items = verify(f)
    assert items["verify.lag"]["status"] == "warn" and "3.0 MB" in items["verify.lag"]["summary"]
    put(f, "dcs.config.maximum_lag_on_failover", 1024 * 1024)
    _, items = verify(f)
    assert items["verify.lag"]["status"] == "fail" and "maximum_lag_on_failover" in items["verify.lag"]["summary"]


def test_timeline_mismatch_fails():
    f = facts()
    put(f, "patroni_api.members.node3.body.timeline", 2)
    _, items = verify(f)
    assert items["verify.timeline"]["status"] == "fail" and "node3 is on timeline 2" in items["verify.timeline"]["summary"]


def test_rest_api_silent_member_fails():
    f = facts()
    put(f, "patroni_api.members.node3", {"url": "http://127.0.7.13:8008/patroni", "api_url": "http://127.0.7.13:8008",
                                        "error": {"kind": "refused", "message": "connection refused"}})
    _, items = verify(f)
    assert items["verify.rest-api"]["status"] == "fail" and "node3" in items["verify.rest-api"]["summary"]


def test_etcd_member_down_fails_etcd_item():
    f = facts()
    eps = f.get("dcs.endpoints")
    eps[2] = {"url": eps[2]["url"], "ok": False, "health": False, "error": {"kind": "refused", "message": "refused"}}
    put(f, "dcs.quorum.healthy", 2)
    _, items = verify(f)
    it = items["verify.etcd"]
    assert it["status"] == "fail" and eps[2]["url"] in it["summary"] and "quorum holds" in it["summary"]


@pytest.mark.parametrize("patroni_enabled,distro_enabled,expect", [
    (True, False, "ok"), (False, False, "fail"), (True, True, "fail")])
def test_autostart(patroni_enabled, distro_enabled, expect):
    rep, items = verify(facts(patroni_enabled=patroni_enabled, distro_enabled=distro_enabled))
    it = items["autostart.patroni"]
    assert it["status"] == expect, it
    if not patroni_enabled:
        assert "patroni.service is disabled" in it["summary"]
        assert any("systemctl enable patroni" in b for b in it["fix"])
    if distro_enabled:
        assert "races Patroni" in it["summary"]
        assert any("systemctl disable --now postgresql" in b for b in it["fix"])


def test_autostart_without_systemd_is_skipped_with_the_reason():
    _, items = verify(facts(systemd=False))
    assert items["autostart.patroni"]["status"] == "skip" and "no systemd" in items["autostart.patroni"]["summary"]


@pytest.mark.parametrize("command,profiles", [("run", ("run", "replication")), ("replication", ("replication",)),
                                              ("verify", ("verify",))])
def test_split_brain_is_first_in_every_ranking(command, profiles):
    rep = analyze(facts("split-brain.json"), command=command, profiles=profiles)
    assert rep.diagnoses[0].id == "split-brain", [d.id for d in rep.diagnoses]
    assert "node1, node2" in rep.diagnoses[0].summary and rep.exit_code == 2


def test_primary_without_the_leader_key_is_split_brain():
    f = load_facts("healthy.replication.json")
    put(f, "replication.members.node1.in_recovery", True)
    put(f, "patroni_api.members.node1.body.role", "replica")
    put(f, "replication.members.node3.in_recovery", False)
    put(f, "patroni_api.members.node3.body.role", "primary")
    rep = analyze(f, command="run", profiles=("run", "replication"))
    sb = next(x for x in rep.findings if x.check == "cluster.split-brain")
    assert sb.status == "fail" and "node3 is a writable primary without the leader key, which node1 holds" in sb.summary


def test_healthy_has_no_split_brain():
    rep = analyze(load_facts("healthy.replication.json"), command="run", profiles=("run", "replication"))
    sb = next(x for x in rep.findings if x.check == "cluster.split-brain")
    assert sb.status == "ok" and "node1" in sb.summary


def test_demoting_primary_is_no_split_brain():
    """A leader Patroni demotes keeps REST role 'primary' while its PostgreSQL is stopping: it accepts no
    writes, so a second 'primary' in that state is no split brain (seen on the lab after leader-lock-lost)."""
    f = load_facts("healthy.replication.json")
    put(f, "replication.members.node2.reachable", False)
    put(f, "patroni_api.members.node2.body.role", "primary")
    put(f, "patroni_api.members.node2.body.state", "stopping")
    rep = analyze(f, command="run", profiles=("run", "replication"))
    sb = next(x for x in rep.findings if x.check == "cluster.split-brain")
    assert sb.status == "ok" and "one writable primary: node1" in sb.summary, sb.summary
    put(f, "patroni_api.members.node2.body.state", "running")
    rep = analyze(f, command="run", profiles=("run", "replication"))
    sb = next(x for x in rep.findings if x.check == "cluster.split-brain")
    assert sb.status == "fail" and "node2" in sb.summary, sb.summary
