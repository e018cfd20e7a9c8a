"""``pgdoctor verify`` on the real lab: a healthy cluster passes every item with real round-trip
figures; a stopped replica, a replica whose replay is paused (cluster in maintenance), a split brain
and an etcd member down each fail the item a DBA would expect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.lab import cluster

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def pgdoctor(*args: str) -> tuple[int, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", *args, "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120, cwd="/")
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def items(report: dict) -> dict[str, dict]:
    return {i["check"]: i for i in report["verify"]["items"]}


def verify(lab, *extra: str) -> tuple[int, dict, dict[str, dict]]:
    code, rep = pgdoctor("verify", "-c", str(lab.node(lab.leader()).config), *extra)
    return code, rep, items(rep)


def test_healthy_lab_passes_every_item_with_round_trip_figures(healthy_lab):
    code, rep, got = verify(healthy_lab, "--expect-members", "3")
    order = [i["check"] for i in rep["verify"]["items"]]
    assert order[:6] == ["cluster.split-brain", "verify.members", "verify.timeline", "verify.lag",
                         "verify.round-trip", "verify.rest-api"], order
    for cid, item in got.items():
        if cid == "autostart.patroni" and item["status"] == "skip":
            assert "systemd" in item["summary"]  # the lab runs Patroni without systemd units
            continue
        assert item["status"] == "ok", (cid, item["summary"], item["evidence"])
    rt = rep["verify"]["round_trip"]
    assert len(rt["replicas"]) == 2 and all(r["arrived"] and r["ms"] >= 0 for r in rt["replicas"].values()), rt
    assert rt["marker"]["method"] == "pg_logical_emit_message"
    assert code == 0 or (code == 1 and got["autostart.patroni"]["status"] != "ok")


def test_stopped_replica_fails_members_and_rest_api(healthy_lab):
    lab = healthy_lab
    victim = next(n for n in lab.nodes if n.name != lab.leader())
    cluster.stop_member(victim)
    try:
        code, rep, got = verify(lab, "--expect-members", "3")
        assert got["verify.members"]["status"] == "fail", got["verify.members"]
        assert victim.name in got["verify.members"]["summary"] or "2" in got["verify.members"]["summary"]
        assert code == 2
    finally:
        cluster.start_patroni(lab.layout, victim)
        cluster.wait_healthy(lab.layout)


def test_paused_replay_fails_round_trip(healthy_lab):
    lab = healthy_lab
    res = lab.break_fault("replication-round-trip")
    victim = lab.node(res["details"]["paused"])
    try:
        code, rep, got = verify(lab, "--round-trip-timeout", "2")
        item = got["verify.round-trip"]
        assert item["status"] == "fail" and victim.name in item["summary"], item
        assert any("paused" in e for e in item["evidence"]), item["evidence"]
        other = [r for n, r in rep["verify"]["round_trip"]["replicas"].items() if n != victim.name]
        assert other and all(r["arrived"] for r in other)
        assert code == 2
    finally:
        lab.heal()


def test_split_brain_fails_first_everywhere(healthy_lab):
    lab = healthy_lab
    res = lab.break_fault("split-brain")
    try:
        rogue = res["details"]["rogue"]
        code, rep, got = verify(lab)
        assert got["cluster.split-brain"]["status"] == "fail", got["cluster.split-brain"]
        assert rep["diagnoses"][0]["id"] == "split-brain"
        assert rogue in got["cluster.split-brain"]["summary"]
        for command in ("run", "replication"):
            extra = ("--no-logs",) if command == "run" else ()
            _, other = pgdoctor(command, "-c", str(lab.node(lab.leader()).config), *extra)
            assert other["diagnoses"][0]["id"] == "split-brain", [d["id"] for d in other["diagnoses"]]
        assert code == 2
    finally:
        lab.heal()


def test_etcd_member_down_fails_etcd_item(healthy_lab):
    lab = healthy_lab
    victim = next(n for n in lab.nodes if n.name != lab.leader())
    cluster.stop_etcd(victim)
    try:
        code, rep, got = verify(lab)
        assert got["verify.etcd"]["status"] == "fail", got["verify.etcd"]
        assert str(victim.etcd_client_port) in " ".join(got["verify.etcd"]["evidence"]) or \
            "2 of 3" in got["verify.etcd"]["summary"]
        assert code == 2
    finally:
        cluster.start_etcd(lab.layout, victim)
        cluster.wait_etcd(lab.layout)
