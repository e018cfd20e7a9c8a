"""Replication faults on the real lab that the replication checks must name: a stopped replica whose
slot keeps WAL piling up on the leader, and a replica Patroni calls running that does not stream
because every WAL sender on the leader is taken. Each breaks the lab for real, proves the symptom
on the servers themselves, then runs pgdoctor as a user would."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from cli_runner import run_cli

from doctor.lab import faults

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def pgdoctor(*args: str) -> tuple[int, dict]:
    cp = run_cli(*args, "--format", "json", timeout=120, cwd=REPO)
    assert "Traceback" not in cp.stderr, cp.stderr
    assert cp.stdout.strip(), f"pgdoctor printed nothing (exit {cp.returncode}): {cp.stderr[-2000:]}"
    return cp.returncode, json.loads(cp.stdout)


def _show(report: dict) -> str:
    return "\n".join(f"  {d['id']} [{d['status']}]: {d['summary']}" for d in report["diagnoses"]) or "  (none)"


def _no_placeholder(fix: list[str]) -> None:
    unfilled = {name for block in fix for name in re.findall(r"<([a-z_]+)>", block)}
    assert not unfilled, f"fix has unfilled values {unfilled}: {fix}"


def _retained(leader, slot: str) -> int:
    return faults.sql(leader, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                              "FROM pg_replication_slots WHERE slot_name = %s", (slot,), fetch=True)[0][0]


def test_inactive_slot_retaining_wal(healthy_lab):
    lab = healthy_lab
    info = lab.break_fault("replication-slot-problem")
    try:
        det = info["details"]
        assert "warning" not in det, det
        ld, slot = lab.node(det["leader"]), det["slot"]
        cfg = str(ld.config)
        # the real symptom: the slot is inactive and the leader keeps more WAL than wal_keep_size
        assert det["slot_active"] is False and det["retained_bytes"] >= faults.SLOT_WAL_BYTES
        assert det["pg_wal_bytes"] > 128 * 1024 * 1024, det

        rc, rep = pgdoctor("replication", "-c", cfg, "--slot-retained-bytes", "16MB")
        after = _retained(ld, slot)
        assert rep["diagnoses"], "no diagnosis"
        first = rep["diagnoses"][0]
        assert first["id"] == "replication-slot-problem", _show(rep)
        assert f"inactive slot {slot} (member {slot}) on {ld.name}" in first["summary"], first["summary"]
        figure = int(re.search(r"\((\d+) bytes\)", first["summary"]).group(1))
        # autovacuum and checkpoints keep writing: the figure lies between the two real readings
        assert det["retained_bytes"] <= figure <= after, (det["retained_bytes"], figure, after)
        assert "more than 16.0 MB" in first["summary"]
        fix = "\n".join(first["fix"])
        assert f"pg_drop_replication_slot('{slot}')" in fix and f"psql -h {ld.address}" in fix, fix
        _no_placeholder(first["fix"])
        assert rc == 1 and rep["exit_code"] == 1, _show(rep)  # a warning: nothing is broken yet

        # the threshold is honoured: below the default 1 GB the same slot is not reported
        _, default = pgdoctor("replication", "-c", cfg)
        assert "replication-slot-problem" not in {d["id"] for d in default["diagnoses"]}, _show(default)
    finally:
        lab.heal()


def test_replica_refused_by_exhausted_wal_senders(healthy_lab):
    lab = healthy_lab
    t0 = time.time()
    info = lab.break_fault("replica-not-streaming")
    try:
        det = info["details"]
        assert "warning" not in det, det
        ld, rep_node = lab.node(det["leader"]), lab.node(det["replica"])
        senders = det["max_wal_senders"]
        # the real symptom: no WAL receiver, no walsender on the leader, Patroni says "running"
        assert faults.sql(rep_node, "SELECT count(*) FROM pg_stat_wal_receiver", fetch=True)[0][0] == 0
        apps = [r[0] for r in faults.sql(ld, "SELECT application_name FROM pg_stat_replication", fetch=True)]
        assert rep_node.name not in apps and len(apps) == senders, apps
        listed = {m["Member"]: m for m in json.loads(faults.patronictl(lab.layout, "list", "-f", "json"))}
        assert listed[rep_node.name]["State"] == "running", listed[rep_node.name]

        for cfg in (info["config"], str(ld.config)):  # on the replica itself, and on the leader
            since = f"{int(time.time() - t0) + 3}s"
            rc, rep = pgdoctor("run", "-c", cfg, "--since", since)
            assert rep["diagnoses"], f"no diagnosis on {cfg}"
            first = rep["diagnoses"][0]
            assert first["id"] == "replica-not-streaming", f"on {cfg}:\n{_show(rep)}"
            for text in (f"{rep_node.name} is running as a replica but not streaming from {ld.name}",
                         f"exceeds max_wal_senders (currently {senders})"):
                assert text in first["summary"], f"{text!r} not in: {first['summary']}"
            fix = "\n".join(first["fix"])
            assert f"max_wal_senders={senders * 2}" in fix and "FROM pg_stat_replication" in fix, fix
            assert f"psql -h {ld.address}" in fix and "reinit" not in fix, fix
            _no_placeholder(first["fix"])
            if cfg == info["config"]:  # the replica's own PostgreSQL log says why, in the same diagnosis
                assert any(m["pattern"] == "walsenders-exhausted" for m in first["log_matches"]), first["log_matches"]
            assert rc == 2, f"exit {rc}\n{_show(rep)}"
    finally:
        lab.heal()
