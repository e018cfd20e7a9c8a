"""Every real sample log in sample_logs/ names the right problem first, with either engine.

The table lists each main sample (``<problem-id>[.<variant>].<source>.log``, named after the lab fault that
produced it) with the problem id its lines prove, or None where that log really says nothing about the fault (the evidence is elsewhere:
process state, another node's log). A new sample must be added here, so the table stays complete.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.commands.logs import analyze_logs
from doctor.logscan import patterns_from
from doctor.logscan.engines import hyperscan_available
from doctor.logscan.scan import Scanner
from doctor.logscan.sources import FileSource

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_logs"

EXPECTED: dict[str, str | None] = {
    "archive-command-failed.postgres.log": "archive-command-failed",
    "basebackup-failed.stderr.log": "basebackup-failed",
    "watchdog-unavailable.patroni.log": "watchdog-unavailable",
    "watchdog-unavailable.node1.patroni.log": "watchdog-unavailable",
    "bootstrap-failed.patroni.log": "bootstrap-failed",
    "bootstrap-failed.stderr.log": "bootstrap-failed",
    "cluster-paused.patroni.log": "cluster-paused",
    "config-invalid-yaml.stderr.log": "config-invalid-yaml",
    "datadir-not-empty.patroni.log": "datadir-not-empty",
    "datadir-permissions.stderr.log": "datadir-permissions",
    "datadir-permissions.owner-root.stderr.log": "datadir-permissions",
    "datadir-permissions.patroni.log": "postgres-start-failed",  # the consequence; the cause is in stderr
    "dcs-api-mismatch.patroni.log": "dcs-api-mismatch",
    "dcs-unreachable.at-start.patroni.log": "dcs-unreachable",
    "dcs-unreachable.quorum-lost.patroni.log": "dcs-unreachable",
    "dcs-unreachable.quorum-lost.etcd.log": "dcs-unreachable",
    "dcs-unreachable.patroni.log": "dcs-unreachable",
    "disk-full.patroni.log": "disk-full",
    "disk-full.postgres.log": "disk-full",
    "initialize-key-stuck.patroni.log": "initialize-key-stuck",
    "leader-lock-lost.patroni.log": "leader-lock-lost",
    "leader-lock-lost.sigstop.patroni.log": "leader-lock-lost",
    "pg-hba-replication-missing.postgres.log": "pg-hba-replication-missing",
    "pg-hba-replication-missing.stderr.log": "pg-hba-replication-missing",
    "port-in-use.pg.postgres.log": "port-in-use",
    "port-in-use.rest.patroni.log": "port-in-use",
    "postmaster-pid-stale.live-pid.patroni.log": "postmaster-pid-stale",
    "postgres-start-failed.missing-library.patroni.log": "postgres-start-failed",
    "replication-auth-failed.postgres.log": "replication-auth-failed",
    "replication-auth-failed.stderr.log": "replication-auth-failed",
    "replication-lag.patroni.log": "cluster-paused",  # the lab pauses the cluster to hold replay
    "rewind-failed.patroni.log": "rewind-failed",
    "sync-standby-unavailable.strict.patroni.log": "sync-standby-unavailable",
    "sync-standby-unavailable.nonstrict.patroni.log": "sync-standby-unavailable",
    "system-id-mismatch.patroni.log": "system-id-mismatch",
    "timeline-diverged.postgres.log": "timeline-diverged",
    "wal-segment-removed.postgres.log": "wal-segment-removed",
    # the version matrix (tests/lab/test_version_matrix.py): the oldest and the newest corner
    "datadir-permissions.patroni-2-1-7-pg15.stderr.log": "datadir-permissions",
    "port-in-use.pg.patroni-2-1-7-pg15.postgres.log": "port-in-use",
    "replication-auth-failed.patroni-2-1-7-pg15.postgres.log": "replication-auth-failed",
    "replication-auth-failed.patroni-2-1-7-pg15.stderr.log": "replication-auth-failed",
    "pg-hba-replication-missing.patroni-2-1-7-pg15.postgres.log": "pg-hba-replication-missing",
    "pg-hba-replication-missing.patroni-2-1-7-pg15.stderr.log": "pg-hba-replication-missing",
    "healthy.bootstrap.patroni-2-1-7-pg15.node1.patroni.log": None,
    "healthy.bootstrap.patroni-2-1-7-pg15.node1.postgres.log": None,
    "healthy.bootstrap.patroni-2-1-7-pg15.node2.patroni.log": None,
    "healthy.bootstrap.patroni-2-1-7-pg15.node2.postgres.log": None,
    "healthy.bootstrap.patroni-2-1-7-pg15.node3.patroni.log": None,
    "healthy.bootstrap.patroni-2-1-7-pg15.node3.postgres.log": None,
    # the version matrix (tests/lab/test_version_matrix.py): the oldest and the newest corner
    "datadir-permissions.patroni-4-1-5-pg18.stderr.log": "datadir-permissions",
    "port-in-use.pg.patroni-4-1-5-pg18.postgres.log": "port-in-use",
    "replication-auth-failed.patroni-4-1-5-pg18.postgres.log": "replication-auth-failed",
    "replication-auth-failed.patroni-4-1-5-pg18.stderr.log": "replication-auth-failed",
    "pg-hba-replication-missing.patroni-4-1-5-pg18.postgres.log": "pg-hba-replication-missing",
    "pg-hba-replication-missing.patroni-4-1-5-pg18.stderr.log": "pg-hba-replication-missing",
    "healthy.bootstrap.patroni-4-1-5-pg18.node1.patroni.log": None,
    "healthy.bootstrap.patroni-4-1-5-pg18.node1.postgres.log": None,
    "healthy.bootstrap.patroni-4-1-5-pg18.node2.patroni.log": None,
    "healthy.bootstrap.patroni-4-1-5-pg18.node2.postgres.log": None,
    "healthy.bootstrap.patroni-4-1-5-pg18.node3.patroni.log": None,
    "healthy.bootstrap.patroni-4-1-5-pg18.node3.postgres.log": None,
    # logs that show nothing wrong: healthy runs, and faults whose evidence is not in this log
    "healthy.bootstrap.patroni.log": None,
    "healthy.bootstrap.postgres.log": None,
    "healthy.bootstrap.node2.patroni.log": None,
    "healthy.bootstrap.node3.postgres.log": None,
    "timeline-diverged.patroni.log": None,  # Patroni reports the member running, as documented
    "no-failover-candidate.patroni.log": None,
    "postgres-outside-patroni.postgres.log": None,
    "basebackup-failed.patroni.log": None,  # "pg_basebackup exited with code=1" only: the reason is on stderr
}


# samples whose log goes on past the fault until the member is healthy again ("no action. I am ...
# following a leader"): the problem is named first among the resolved ones, none is current
HEALED_IN_SAMPLE = {"leader-lock-lost.patroni.log", "leader-lock-lost.sigstop.patroni.log"}


def first_ids(path: Path, engine: str = "auto") -> list[str]:
    report = analyze_logs([FileSource(str(path))], engine=engine)
    if path.name in HEALED_IN_SAMPLE:
        assert [d.id for d in report.diagnoses] == [], f"{path.name}: healed, yet {report.diagnoses[0].id} is current"
        return [d.id for d in report.resolved]
    return [d.id for d in report.diagnoses]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_names_its_problem_first(name: str) -> None:
    path = SAMPLES / name
    assert path.exists(), f"sample {name} is missing"
    ids = first_ids(path)
    if EXPECTED[name] is None:
        assert ids == [], f"{name}: expected no diagnosis, got {ids}"
    else:
        assert ids and ids[0] == EXPECTED[name], f"{name}: expected {EXPECTED[name]} first, got {ids}"


def test_every_sampled_fault_has_an_expectation() -> None:
    problems = {p.name.split(".")[0] for p in SAMPLES.glob("*.log")}
    covered = {n.split(".")[0] for n in EXPECTED}
    assert problems - covered == set(), f"add a sample of these problems to EXPECTED: {sorted(problems - covered)}"


@pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed")
@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.log")), ids=lambda p: p.name)
def test_both_engines_agree_on_every_sample(path: Path) -> None:
    patterns = patterns_from()
    fast = Scanner(patterns, engine="hyperscan").scan([FileSource(str(path))])
    slow = Scanner(patterns, engine="re").scan([FileSource(str(path))])
    assert fast.engine.name == "hyperscan" and slow.engine.name == "re"
    assert fast.matches() == slow.matches()
    assert fast.events() == slow.events()


def test_pgdoctor_logs_json_names_the_problem_and_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", "logs",
                           str(SAMPLES / "dcs-api-mismatch.patroni.log"), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["diagnoses"][0]["id"] == "dcs-api-mismatch"
    match = doc["diagnoses"][0]["log_matches"][0]
    assert match["count"] >= 3 and match["first"] < match["last"]
    assert match["groups"]["endpoint"].startswith("http://127.0.")
    assert doc["logs"]["sources"][0]["read"] is True


def test_pgdoctor_logs_healthy_sample_exits_0_with_events() -> None:
    proc = subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", "logs",
                           str(SAMPLES / "healthy.bootstrap.patroni.log"), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["diagnoses"] == []
    kinds = [e["event"] for e in doc["events"]]
    assert "bootstrap" in kinds and "start" in kinds
