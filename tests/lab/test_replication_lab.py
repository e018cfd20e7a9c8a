"""Replication scenarios on the real lab: settings switched with patronictl edit-config (the lab's
faults do it as a user would), members stopped for real, replay paused for real; `pgdoctor run`
and `pgdoctor replication` must name the problem, and their figures must agree with
pg_stat_replication and `patronictl list` taken at the same moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from doctor.lab import faults

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
OURS = {"sync-standby-unavailable", "replication-lag", "no-failover-candidate", "replication-slot-problem",
        "replica-not-streaming"}


def pgdoctor(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd="/")


def as_json(proc: subprocess.CompletedProcess) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def diag(report: dict, pid: str) -> dict:
    found = [d for d in report["diagnoses"] if d["id"] == pid]
    assert found, f"no {pid}: {[(d['id'], d['summary']) for d in report['diagnoses']]}"
    return found[0]


def leader_node(lab):
    return lab.node(lab.leader())


def patronictl_list(lab) -> dict[str, dict]:
    out = faults.patronictl(lab.layout, "list", "-f", "json")
    return {m["Member"]: m for m in json.loads(out)}


def stat_replication(node) -> dict[str, dict]:
    rows = faults.sql(node, "SELECT application_name, state, sync_state, replay_lsn::text, flush_lsn::text, "
                            "pg_current_wal_lsn()::text FROM pg_stat_replication", fetch=True)
    return {r[0]: {"state": r[1], "sync_state": r[2], "replay_lsn": r[3], "flush_lsn": r[4], "current": r[5]}
            for r in rows}


def consistent_snapshot(lab, cfg: str, tries: int = 6):
    """(patronictl list, pg_stat_replication, pgdoctor replication JSON) with nothing moving in between."""
    ld = leader_node(lab)
    for _ in range(tries):
        a_ctl, a_pg = patronictl_list(lab), stat_replication(ld)
        report = as_json(pgdoctor("replication", "-c", cfg, "--format", "json"))
        b_ctl, b_pg = patronictl_list(lab), stat_replication(ld)
        if a_ctl == b_ctl and a_pg == b_pg:
            return a_ctl, a_pg, report
        time.sleep(2.5)  # WAL moved (a checkpoint, a Patroni loop); take it again
    pytest.fail("the cluster did not stay still long enough to compare figures")


def assert_figures_agree(ctl: dict, pg: dict, report: dict) -> None:
    members = {r["name"]: r for r in report["replication"]["members"]}
    assert set(members) >= set(ctl)
    for name, c in ctl.items():
        r = members[name]
        assert r["role"] == c["Role"], (name, r["role"], c["Role"])
        assert r["timeline"] == c.get("TL"), name
        if c["Role"] == "Leader":
            continue
        assert r["receive_lsn"] == c["Receive LSN"] and r["replay_lsn"] == c["Replay LSN"], (name, r, c)
        assert round(r["replay_lag_bytes"] / 1048576) == c["Replay Lag"], (name, r["replay_lag_bytes"], c)
        assert round(r["receive_lag_bytes"] / 1048576) == c["Receive Lag"], (name, r["receive_lag_bytes"], c)
        w = pg[name]
        assert r["walsender_state"] == w["state"] and r["sync_state"] == w["sync_state"], (name, r, w)
        assert r["replay_lsn"] == w["replay_lsn"], (name, r["replay_lsn"], w)
        current = report["replication"]["reference_lsn"]
        assert current == w["current"]


def text_has_table_and_verdicts(cfg: str) -> str:
    out = pgdoctor("replication", "-c", cfg)
    assert "Traceback" not in out.stderr
    for needle in ("Replication settings", "writes:", "failover:", "synchronous_node_count:", "node1", "node2",
                   "node3", "lag bytes"):
        assert needle in out.stdout, needle
    return out.stdout


# --------------------------------------------------------------------------- scenarios


def test_healthy_async_cluster(healthy_lab):
    cfg = str(leader_node(healthy_lab).config)
    report = as_json(pgdoctor("run", "-c", cfg, "--format", "json", "--no-logs"))
    assert not {d["id"] for d in report["diagnoses"]} & OURS, report["diagnoses"]
    ctl, pg, rep = consistent_snapshot(healthy_lab, cfg)
    assert_figures_agree(ctl, pg, rep)
    view = rep["replication"]
    assert view["writes"]["status"] == "async"
    assert sorted(c["name"] for c in view["failover"]["candidates"]) == sorted(n for n in ctl if ctl[n]["Role"] != "Leader")
    text_has_table_and_verdicts(cfg)


def _blocked_insert(node) -> tuple[threading.Thread, dict]:
    """An INSERT on the leader in its own connection; returns the thread and what it saw."""
    seen: dict = {}

    def run():
        try:
            with psycopg.connect(node.dsn(), autocommit=True) as conn:
                seen["pid"] = conn.info.backend_pid
                conn.execute("CREATE TABLE IF NOT EXISTS lab_sync_probe (t timestamptz)")
                seen["created"] = True
                conn.execute("INSERT INTO lab_sync_probe VALUES (now())")
                seen["committed"] = True
        except psycopg.Error as exc:
            seen["error"] = str(exc).strip().splitlines()[0]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, seen


def test_strict_sync_without_standbys_blocks_writes(healthy_lab):
    lab = healthy_lab
    info = lab.break_fault("sync-standby-unavailable.strict")
    try:
        ld = lab.node(info["details"]["leader"])
        cfg = str(ld.config)
        t, seen = _blocked_insert(ld)
        t.join(5)
        assert t.is_alive() and not seen.get("committed"), f"the write committed: {seen}"
        waits = faults.sql(ld, "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (seen["pid"],), fetch=True)
        assert waits and waits[0][0] == "SyncRep", waits

        report = as_json(pgdoctor("run", "-c", cfg, "--format", "json", "--no-logs"))
        d = diag(report, "sync-standby-unavailable")
        assert d["status"] == "fail" and report["exit_code"] == 2
        assert "BLOCKED: strict mode needs 2 synchronous standbys, 0 are streaming" in d["summary"]
        assert "edit-config --set synchronous_mode_strict=false" in "\n".join(d["fix"])

        rep = as_json(pgdoctor("replication", "-c", cfg, "--format", "json"))
        w = rep["replication"]["writes"]
        assert w["status"] == "blocked" and w["waiting_sessions"] >= 1 and w["synchronous_standby_names"] == "*"
        assert "no-failover-candidate" in {x["id"] for x in rep["diagnoses"]}
        text_has_table_and_verdicts(cfg)
    finally:
        if "pid" in locals().get("seen", {}):
            faults.sql(ld, "SELECT pg_cancel_backend(%s)", (seen["pid"],))
            t.join(10)
        lab.heal()


def test_non_strict_sync_without_standbys_warns_and_writes_commit(healthy_lab):
    lab = healthy_lab
    info = lab.break_fault("sync-standby-unavailable.nonstrict")
    try:
        ld = lab.node(info["details"]["leader"])
        cfg = str(ld.config)
        t, seen = _blocked_insert(ld)
        t.join(10)
        assert seen.get("committed"), f"a write did not commit in non-strict mode: {seen}"
        report = as_json(pgdoctor("run", "-c", cfg, "--format", "json", "--no-logs"))
        d = diag(report, "sync-standby-unavailable")
        assert d["status"] == "warn"
        assert "not protected: synchronous mode is on but no standby is synchronous" in d["summary"]
        text_has_table_and_verdicts(cfg)
    finally:
        lab.heal()


def test_paused_replay_is_replication_lag_with_the_real_bytes(healthy_lab):
    lab = healthy_lab
    info = lab.break_fault("replication-lag")
    try:
        det = info["details"]
        ld, lagging = lab.node(det["leader"]), det["lagging"]
        cfg = str(ld.config)
        assert det["lag_bytes"] > 10_000 * 100  # 200k rows of ~100 bytes inserted while replay is paused
        report = as_json(pgdoctor("run", "-c", cfg, "--format", "json", "--no-logs"))
        d = diag(report, "replication-lag")
        ctl, pg, rep = consistent_snapshot(lab, cfg)
        assert_figures_agree(ctl, pg, rep)
        r = next(m for m in rep["replication"]["members"] if m["name"] == lagging)
        fresh = faults.sql(ld, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint",
                           (pg[lagging]["replay_lsn"],), fetch=True)[0][0]
        assert r["replay_lag_bytes"] == fresh and r["replay_paused"] is True
        assert abs(r["replay_lag_bytes"] - det["lag_bytes"]) < 1024 * 1024
        assert f"{lagging} is " in d["summary"] and "bytes) behind" in d["summary"] and "paused" in d["summary"]
        assert "SELECT pg_wal_replay_resume();" in "\n".join(d["fix"])
        assert f"psql -h {lab.node(lagging).address}" in "\n".join(d["fix"])
        text_has_table_and_verdicts(cfg)
    finally:
        lab.heal()


def test_all_replicas_nofailover(healthy_lab):
    lab = healthy_lab
    lab.break_fault("no-failover-candidate")
    try:
        cfg = str(leader_node(lab).config)
        report = as_json(pgdoctor("run", "-c", cfg, "--format", "json", "--no-logs"))
        d = diag(report, "no-failover-candidate")
        assert d["status"] == "fail"
        assert "no candidate: automatic failover would not happen" in d["summary"]
        assert d["summary"].count("tagged nofailover") == 2
        out = text_has_table_and_verdicts(cfg)
        assert "excluded: tagged" in out
    finally:
        lab.heal()


def _wait_all_replicas(lab, timeout: float = 40.0) -> None:
    """Until every member's REST says role replica (the leader demoted itself without the DCS)."""
    import requests
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        roles = []
        for name in ("node1", "node2", "node3"):
            try:
                roles.append(requests.get(f"{lab.node(name).rest_url}/patroni", timeout=2).json().get("role"))
            except (requests.RequestException, ValueError):
                roles.append(None)
        if roles == ["replica"] * 3:
            return
        time.sleep(1)
    pytest.fail(f"the leader did not demote itself within {timeout:.0f}s: roles {roles}")


def test_quorum_lost_is_no_writable_primary_not_healthy(healthy_lab):
    lab = healthy_lab
    leader = lab.leader()
    lab.break_fault("dcs-unreachable.quorum-lost", node=leader)
    try:
        _wait_all_replicas(lab)
        cfg = str(lab.node(leader).config)
        proc = pgdoctor("replication", "-c", cfg, "--format", "json")
        report = as_json(proc)
        assert proc.returncode != 0, report["verdict"]
        view = report["replication"]
        assert view["writes"]["status"] == "blocked" and "no writable primary" in view["writes"]["text"]
        assert view["failover"]["status"] == "unknown" and view["failover"]["candidates"] == []
        roles = {m["name"]: m["role"] for m in view["members"]}
        assert "Leader" not in roles.values(), roles
        assert any(m.get("role_note") for m in view["members"]), view["members"]
        d = diag(report, "no-leader")
        assert d["summary"].startswith("no writable primary: writes blocked")
        run = as_json(pgdoctor("run", "-c", cfg, "--format", "json", "--no-logs"))
        ids = [x["id"] for x in run["diagnoses"]]
        assert "dcs-unreachable" in ids and "no-leader" in ids
        assert "replica-not-streaming" not in ids and "no-failover-candidate" not in ids, ids
        assert not any("reinit" in c for x in run["diagnoses"] for c in x["fix"])
    finally:
        lab.heal()
