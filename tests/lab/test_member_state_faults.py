"""Member states produced for real on the lab (doctor/lab/faults/members.py): pgdoctor names each
with the real member, state and values, and `pgdoctor replication` does not exit 0 on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def doctor(command: str, config: str, *extra: str) -> tuple[int, dict]:
    argv = [sys.executable, "-m", "doctor.cli", command, "-c", config, "--format", "json", *extra]
    if command == "run":
        argv.append("--no-logs")
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert cp.stdout.strip(), f"pgdoctor printed nothing (exit {cp.returncode}): {cp.stderr[-2000:]}"
    return cp.returncode, json.loads(cp.stdout)


def diag(report: dict, pid: str) -> dict | None:
    return next((d for d in report["diagnoses"] if d["id"] == pid), None)


def _show(report: dict) -> str:
    return "\n".join(f"  {d['id']} [{d['status']}]: {d['summary']}" for d in report["diagnoses"])


def _other(lab, name: str) -> str:
    return str(next(n for n in lab.nodes if n.name != name).config)


@pytest.fixture
def healthy(lab):
    lab.ensure_healthy()
    yield lab
    lab.heal()


@pytest.mark.parametrize("fault,state", [("member-down", "stopped"), ("member-down.start-failed", "start failed")])
def test_member_down(healthy, fault, state):
    info = healthy.break_fault(fault)
    member = info["node"]
    code, report = doctor("run", _other(healthy, member))
    d = diag(report, "member-down")
    # a start that keeps failing is 'start failed', or 'starting' for the moment of each retry
    words = (f"'{state}'",) if state == "stopped" else ("'start failed'", "'starting'")
    assert d and d["status"] == "warn" and member in d["summary"] and any(w in d["summary"] for w in words), \
        _show(report)
    code, report = doctor("replication", _other(healthy, member))
    assert code != 0 and diag(report, "member-down"), _show(report)


def test_leader_postgres_down(healthy):
    info = healthy.break_fault("leader-postgres-down")
    leader = info["node"]
    code, report = doctor("run", _other(healthy, leader))
    assert code == 2 and report["diagnoses"][0]["id"] == "leader-postgres-down", _show(report)
    assert leader in report["diagnoses"][0]["summary"]
    assert "does not accept connections" in report["diagnoses"][0]["summary"]


def test_pending_restart(healthy):
    healthy.break_fault("pending-restart")
    code, report = doctor("run", str(healthy.node("node1").config))
    d = diag(report, "pending-restart")
    assert d and d["status"] == "warn" and "max_connections" in d["summary"], _show(report)
    assert any("restart postgres" in f and "--pending" in f for f in d["fix"]), d["fix"]


def test_scheduled_action(healthy):
    info = healthy.break_fault("scheduled-action")
    code, report = doctor("run", str(healthy.node("node1").config))
    f = next(x for x in report["findings"] if x["check"] == "cluster.scheduled-action")
    assert f["status"] == "ok" and "switchover scheduled at" in f["summary"]
    assert info["details"]["candidate"] in f["summary"]
    sched = report["cluster"]["scheduled"]
    assert sched and sched[0]["kind"] == "switchover"


def test_member_count(healthy):
    info = healthy.break_fault("member-count")
    member = info["node"]
    code, report = doctor("run", _other(healthy, member), "--expect-members", "3")
    d = diag(report, "member-count")
    assert d and d["status"] == "warn" and "where 3 are expected" in d["summary"], _show(report)
    code, report = doctor("replication", _other(healthy, member))
    d = diag(report, "member-count")
    assert d and member in d["summary"], _show(report)
