"""The cluster report: several members' snapshots merged (``pgdoctor analyze B1 B2 B3`` / a directory),
cluster-wide checks attributed to the right member, each member's own diagnoses kept, one timeline.

The baseline is the real snapshot of the lab's three members (``healthy.cluster-bundles.json``, the facts of
three bundles merged); each problem fixture changes one value on node3.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest
from cli_runner import run_cli

from doctor.collect.fleet import from_bundles, from_node
from doctor.facts import Facts
from doctor.model.fleet import snapshots, split
from doctor.pipeline import analyze_cluster
from tests.unit.conftest import FIXTURES, read_fixture

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "doctor" / "schemas" / "report.schema.json").read_text())
BASE = "healthy.cluster-bundles.json"


def cluster(name: str) -> Facts:
    return Facts(read_fixture(FIXTURES / name))


def problems_by_member(report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in report.diagnoses:
        out.setdefault(d.member or "", set()).add(d.id)
    return out


def test_the_healthy_lab_is_one_healthy_cluster_of_three_members() -> None:
    report = analyze_cluster(cluster(BASE))
    assert [s.name for s in snapshots(report.facts)] == ["node1", "node2", "node3"]
    assert report.exit_code == 0 and report.diagnoses == []
    assert {f.member for f in report.findings} >= {"node1", "node2", "node3"}
    fleet = {f.check: f.status for f in report.findings if f.check.startswith("fleet.")}
    assert fleet == dict.fromkeys(("fleet.config-drift", "fleet.bootstrap-dcs", "fleet.parameters",
                                   "fleet.versions", "fleet.clock"), "ok")
    jsonschema.validate(report.as_dict(), SCHEMA)


@pytest.mark.parametrize("fixture,problem,status", [
    ("config-drift.json", "config-drift", "warn"),
    ("config-drift.replication-user.json", "config-drift", "fail"),
    ("bootstrap-dcs-drift.json", "bootstrap-dcs-drift", "warn"),
    ("parameter-drift.json", "parameter-drift", "warn"),
    ("version-skew.json", "version-skew", "warn"),
    ("clock-skew.json", "clock-skew", "warn"),
])
def test_each_drift_is_named_on_the_member_that_drifted(fixture: str, problem: str, status: str) -> None:
    report = analyze_cluster(cluster(fixture))
    assert problems_by_member(report) == {"node3": {problem}}
    (d,) = report.diagnoses
    assert d.status == status and "node3" in d.summary
    # node3's own config fills its fix, not the first member's
    assert "node1/patroni.yml" not in d.fix_text and "node3" in d.fix_text
    jsonschema.validate(report.as_dict(), SCHEMA)


def test_the_drifted_value_and_the_others_are_evidence() -> None:
    (d,) = analyze_cluster(cluster("config-drift.json")).diagnoses
    assert any(e.startswith("node3's patroni.yml: DCS hosts = ") and "127.0.0.83" not in e for e in d.evidence)
    assert any(e.startswith("node1's patroni.yml: DCS hosts = ") and "127.0.0.83" in e for e in d.evidence)


def test_a_member_local_problem_keeps_its_member() -> None:
    data = read_fixture(FIXTURES / BASE)
    data["cluster"]["members"][2]["facts"]["system"]["datadir"]["mode"] = "0755"
    report = analyze_cluster(Facts(data))
    assert problems_by_member(report) == {"node3": {"datadir-permissions"}}
    (f,) = [f for f in report.findings if f.status != "ok" and f.status != "skip"]
    assert f.member == "node3" and f.check.startswith("datadir.")


def test_with_two_members_apart_and_no_majority_both_are_named() -> None:
    assert split({"a": 1, "b": 2}).odd == {"a": 1, "b": 2}
    assert split({"a": 1, "b": 1, "c": 2}).odd == {"c": 2}
    assert split({"a": [1, 2], "b": [1, 2]}).differs is False


def test_two_bundles_of_one_member_keep_the_newer() -> None:
    data = read_fixture(FIXTURES / BASE)
    node3 = data["cluster"]["members"][2]
    old = copy.deepcopy(node3["facts"])
    old["collected_at"] = "2026-01-01T00:00:00+00:00"
    items = [(Facts(m["facts"]), m["source"]) for m in data["cluster"]["members"]]
    items.append((Facts(old), {"bundle": "old-node3.tar.gz"}))
    merged = from_bundles(items)
    assert [s.name for s in snapshots(merged)] == ["node1", "node2", "node3"]
    assert snapshots(merged)[2].facts.get("collected_at") == node3["facts"]["collected_at"]
    assert merged.get("cluster.notes") == [f"two bundles of member node3: {node3['source']['bundle']} kept (the "
                                           "newer), old-node3.tar.gz left out"]


def test_the_timeline_merges_every_members_events_in_time_order() -> None:
    report = analyze_cluster(cluster(BASE))
    events = report.extra["events"]
    assert {e["member"] for e in events} == {"node1", "node2", "node3"}
    times = [e["time"] for e in events]
    assert times == sorted(times)


def test_run_cluster_facts_say_what_was_not_seen() -> None:
    """``run --cluster``: this node's own facts, the others' REST answers; drift in files not seen is not
    guessed, and the report says whose local facts are missing."""
    node1 = read_fixture(FIXTURES / BASE)["cluster"]["members"][0]["facts"]
    node1["cluster_api"] = {"members": {"node2": {"config": node1["patroni_api"]["config"]},
                                        "node3": {"config": node1["patroni_api"]["config"]}}}
    report = analyze_cluster(from_node(Facts(node1)))
    assert [(s.name, s.local) for s in snapshots(report.facts)] == [("node1", True), ("node2", False),
                                                                     ("node3", False)]
    drift = next(f for f in report.findings if f.check == "fleet.config-drift")
    assert drift.status == "skip" and "node2, node3" in drift.summary
    assert "contrib/ansible" in " ".join(report.extra["members"]["notes"])
    versions = next(f for f in report.findings if f.check == "fleet.versions")
    assert versions.status == "ok" and "4.1.5" in versions.summary
    assert report.exit_code == 0


def test_a_member_whose_config_answer_differs_reads_another_dcs() -> None:
    node1 = read_fixture(FIXTURES / BASE)["cluster"]["members"][0]["facts"]
    other = copy.deepcopy(node1["patroni_api"]["config"])
    other["body"]["ttl"] = 30
    node1["cluster_api"] = {"members": {"node2": {"config": node1["patroni_api"]["config"]},
                                        "node3": {"config": other}}}
    report = analyze_cluster(from_node(Facts(node1)))
    assert problems_by_member(report) == {"node3": {"config-drift"}}
    assert report.diagnoses[0].status == "fail" and "GET /config" in report.diagnoses[0].summary


# ------------------------------------------------------------------------------------------ the command line
def _member_files(folder: Path) -> list[Path]:
    paths = []
    for m in read_fixture(FIXTURES / BASE)["cluster"]["members"]:
        p = folder / f"{m['name']}.json"
        p.write_text(json.dumps(m["facts"]))
        paths.append(p)
    return paths


def test_analyze_of_several_snapshots_is_one_cluster_report(tmp_path: Path) -> None:
    paths = _member_files(tmp_path)
    r = run_cli("analyze", *map(str, paths), "--format", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["command"] == "cluster" and report["node"]["scope"] == "postgres"
    assert [m["name"] for m in report["members"]["members"]] == ["node1", "node2", "node3"]
    text = run_cli("analyze", str(tmp_path))
    assert text.returncode == 0 and "members node1 (own), node2 (own), node3 (own)" in text.stdout


def test_a_directory_of_bundles_follows_no_link_and_reads_no_fifo(tmp_path: Path) -> None:
    _member_files(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    outside.write_text(json.dumps({"version": 1, "config": {"data": {"name": "intruder", "scope": "x"}}}))
    os.symlink(outside, tmp_path / "link.json")
    os.mkfifo(tmp_path / "fifo.json")
    r = run_cli("analyze", str(tmp_path), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [m["name"] for m in json.loads(r.stdout)["members"]["members"]] == ["node1", "node2", "node3"]


def test_a_directory_without_bundles_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    r = run_cli("analyze", str(tmp_path))
    assert r.returncode == 3 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "holds no bundle" in r.stderr


def test_one_bad_bundle_among_several_is_a_one_line_error(tmp_path: Path) -> None:
    paths = _member_files(tmp_path)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really")
    r = run_cli("analyze", *map(str, paths), str(bad))
    assert r.returncode == 3 and "Traceback" not in r.stderr and str(bad) in r.stderr


def test_the_html_report_names_the_member_of_each_diagnosis() -> None:
    from doctor.render.emit import render_document

    report = analyze_cluster(cluster("config-drift.json"))
    html = render_document(report.as_dict(), report.facts, "html")
    assert "pgdoctor cluster report — cluster postgres" in html
    assert '<span class="member">on node3</span>' in html
    assert "node3: fleet.config-drift" in html


def test_a_problem_every_member_reports_alike_is_one_diagnosis_naming_them() -> None:
    data = read_fixture(FIXTURES / BASE)
    for m in data["cluster"]["members"]:  # every member's DCS read finds the cluster paused
        m["facts"]["dcs"]["config"]["pause"] = True
    report = analyze_cluster(Facts(data))
    paused = [d for d in report.diagnoses if d.id == "cluster-paused"]
    assert [d.member for d in paused] == ["node1, node2, node3"], [(d.member, d.summary) for d in paused]
    rows = {r["name"]: r["problems"] for r in report.extra["members"]["members"]}
    assert rows == dict.fromkeys(("node1", "node2", "node3"), "cluster-paused")
