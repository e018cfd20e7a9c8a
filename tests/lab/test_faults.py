"""Real faults on the real lab: break it, run ``pgdoctor run --format json`` on the affected
node, and check that the first diagnosis names the fault with the real member, path or user.

Each test heals the lab afterwards (``heal`` recreates the cluster when a fault cannot be
undone). ``--since`` is set to the moment the fault was produced, so the log analysis sees
this fault's lines and not those of the faults before it in the same lab.
PGDOCTOR_FAULT_TESTS_NO_LOGS=1 runs pgdoctor with ``--no-logs``, to see what the live checks
alone conclude.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_runner import run_cli

from doctor.lab import cluster

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def doctor_run(config: str, since_start: float) -> tuple[int, dict]:
    """Run pgdoctor as a user would, reading logs written since ``since_start`` (epoch seconds)."""
    since = f"{int(time.time() - since_start) + 3}s"
    argv = ["run", "-c", config, "--format", "json", "--since", since]
    if os.environ.get("PGDOCTOR_FAULT_TESTS_NO_LOGS") == "1":
        argv.append("--no-logs")
    cp = run_cli(*argv, timeout=90, cwd=REPO)
    assert cp.stdout.strip(), f"pgdoctor printed nothing (exit {cp.returncode}): {cp.stderr[-2000:]}"
    return cp.returncode, cp.json


def _show(report: dict) -> str:
    return "\n".join(f"  {d['id']} [{d['status']}] caused_by={d['caused_by']}: {d['summary']}"
                     for d in report["diagnoses"]) or "  (no diagnosis)"


@dataclass
class Case:
    fault: str  # <problem-id>[.<variant>]: the first diagnosis must be <problem-id> unless ``expect`` says otherwise
    names: Callable[[dict, object], list[str]]  # (break info, lab) -> strings the summary must contain
    expect: str | None = None
    node: str | None = None
    on: Callable[[dict, object], str] | None = None  # which node's config to run on (default: the fault's)
    exit_code: int = 2
    also: dict[str, Callable[[dict, object], list[str]]] = field(default_factory=dict)  # id (or "id|id") -> texts
    fix: Callable[[dict, object], list[str]] | None = None  # strings the first diagnosis' fix must contain
    evidence: list[str] = field(default_factory=list)  # strings the first diagnosis' evidence must contain

    @property
    def problem(self) -> str:
        return self.expect or self.fault.split(".")[0]


def _cfg(info: dict, lab) -> str:
    return info["config"] or str(lab.node("node1").config)


def _endpoints(lab) -> list[str]:
    return list(lab.layout.etcd_endpoints)


def _sysids(info: dict) -> tuple[str, str]:
    """(cluster, member) system identifiers from Patroni's real 'system ID mismatch' line."""
    m = re.search(r"different cluster: (\d+) != (\d+)", info["details"]["symptom"])
    return m.group(1), m.group(2)


def _segment(info: dict) -> str:
    return re.search(r"requested WAL segment (\w+) has already been removed", info["details"]["symptom"]).group(1)


CASES = [
    Case("config-invalid-yaml", lambda i, lab: [i["config"], "tab character"]),
    Case("dcs-unreachable", lambda i, lab: [*_endpoints(lab), "none of the 3 etcd endpoints"],
         on=lambda i, lab: str(lab.node(i["details"]["leader_before"]).config)),
    Case("dcs-unreachable.quorum-lost",
         lambda i, lab: ["no quorum"] + [lab.node(f"node{s[-1]}").etcd_client_url for s in i["details"]["stopped"]],
         node="node1"),
    Case("dcs-unreachable.at-start", lambda i, lab: _endpoints(lab),
         also={"rest-api-unreachable": lambda i, lab: [i["node"], "refused"]}),
    Case("datadir-permissions", lambda i, lab: [i["data_dir"], "0755"]),
    Case("port-in-use.pg",
         lambda i, lab: [i["details"]["port"], f"pid {i['details']['listener_pid']}", "PostgreSQL"]),
    Case("port-in-use.rest",
         lambda i, lab: [i["details"]["port"], f"pid {i['details']['listener_pid']}", "REST API"]),
    Case("datadir-not-empty", lambda i, lab: [i["data_dir"], "restore-notes.txt"]),
    Case("initialize-key-stuck",
         lambda i, lab: ["/service/postgres/initialize", "no member is bootstrapping"], node="node1"),
    Case("replication-auth-failed",
         lambda i, lab: ["wrong replication password", "replicator", i["config"], "password authentication failed"]),
    Case("pg-hba-replication-missing",
         lambda i, lab: ["replicator", f"leader {i['details']['leader']}", "host replication replicator"]),
    Case("timeline-diverged",
         lambda i, lab: [f"{i['details']['old_leader']} diverged", f"leader {i['details']['new_leader']}",
                         "pg_rewind will not fix it", "use_pg_rewind is off"]),
    Case("postgres-outside-patroni",
         lambda i, lab: [f"pid {i['details']['postgres_pid']}", i["data_dir"], "not started by Patroni"]),
    # A postmaster.pid naming a dead pid does not block PostgreSQL (it replaces such a file) and
    # Patroni 4 ignores one naming a live non-postgres process; what is really wrong on that node
    # is that Patroni is stopped. The stale file is reported next to it, as a warning.
    Case("postmaster-pid-stale", lambda i, lab: [i["config"]], expect="patroni-not-running",
         also={"postmaster-pid-stale": lambda i, lab: [i["details"]["postmaster_pid"],
                                                       f"pid {i['details']['pid_in_file']}"]}),
    Case("cluster-paused", lambda i, lab: ["cluster postgres", "maintenance mode", "pause: true"],
         on=lambda i, lab: str(lab.node("node1").config), exit_code=1),
    Case("dcs-api-mismatch",
         lambda i, lab: [i["config"], "etcd: section", "/v2/machines", "HTTP 404"],
         also={"rest-api-unreachable": lambda i, lab: [i["node"]]}),
    # Patroni SIGKILLed: its PostgreSQL keeps serving with nobody renewing the member key. The closed
    # REST port is that same fact seen from the network, so it comes second.
    Case("patroni-not-running",
         lambda i, lab: [i["config"], f"pid {i['details']['postgres_pid']}", i["data_dir"], "still runs without it",
                         "2 Patroni processes of the same cluster run other configs here"],
         also={"rest-api-unreachable": lambda i, lab: [i["node"], "refused"]},
         fix=lambda i, lab: ["systemctl start patroni"]),
    # Patroni SIGSTOPped: the port accepts, nothing answers; the process state says why.
    Case("rest-api-unreachable",
         lambda i, lab: [i["node"], lab.node(i["node"]).rest_url, "timeout",
                         f"Patroni pid {i['details']['stopped_patroni']} exists but is stopped"],
         fix=lambda i, lab: [f"kill -CONT {i['details']['stopped_patroni']}"]),
    # Patroni exits at the mismatch, so patroni-not-running and the closed REST port follow from it;
    # the fix must not be `patronictl reinit` (it needs the member's REST API, which is gone).
    Case("system-id-mismatch",
         lambda i, lab: [i["node"], i["data_dir"], "/service/postgres/initialize", *_sysids(i)],
         also={"patroni-not-running": lambda i, lab: [i["config"]]},
         fix=lambda i, lab: [f"mv -- {i['data_dir']} {i['data_dir']}.system-{_sysids(i)[1]}"]),
    # Only the old leader's log tells this story: the DCS answered, its loop did not run in time.
    # The replica stays "running" without a WAL receiver: replica-not-streaming is the consequence.
    Case("wal-segment-removed",
         lambda i, lab: [_segment(i), "has already been removed"],
         # The replica's WAL receiver retries every few seconds and is 'streaming' for an instant each time:
         # what the fault guarantees is that the replica is named, not streaming or (at that instant) lagging.
         also={"replica-not-streaming|replication-lag": lambda i, lab: [i["node"], i["details"]["leader"]]},
         fix=lambda i, lab: [f"reinit postgres {i['node']}"]),
    # The full tmpfs crashes the postmaster (PANIC): disk-full is the cause, postgres-start-failed
    # (the crash seen in the logs) the consequence.
    Case("disk-full", lambda i, lab: [i["data_dir"], "128.0 MB"],
         also={"postgres-start-failed": lambda i, lab: ["No space left on device"]},
         fix=lambda i, lab: [f"df -h {i['data_dir']}"]),
    # Patroni itself dies on the root-owned data dir; the dead Patroni and its closed REST port follow from it.
    Case("datadir-permissions.owner-root", lambda i, lab: [i["data_dir"], "owned by root:root"],
         also={"patroni-not-running": lambda i, lab: [i["config"]]},
         fix=lambda i, lab: [f"chown -R postgres:postgres -- {i['data_dir']}"]),
    # Patroni shrinks the timing it was given and only warns: a warning, exit 1.
    Case("config-invalid.timing", lambda i, lab: ["10 + 2*10 = 30 > 20", "DCS /config key"],
         on=lambda i, lab: str(lab.node("node1").config), exit_code=1,
         fix=lambda i, lab: ["edit-config -s ttl=30"]),
    # Seen from a replica that may not take over: no leader key, the members still running.
    Case("no-leader.nofailover", lambda i, lab: ["cluster postgres has no leader", "/service/postgres/leader is missing",
                                                 f"{i['node']} (primary, stopped)"],
         on=lambda i, lab: i["details"]["config"]),
    # The FATAL that names the library goes to Patroni's stderr; Patroni's log guarantees only its give-up line
    # (which of its "not running" lines is quoted first depends on how far the loop got).
    Case("postgres-start-failed.missing-library", lambda i, lab: ["not running"],
         evidence=["failed to start postgres"]),
    Case("bootstrap-failed", lambda i, lab: ["post_bootstrap"],
         evidence=["removing initialize key after failed attempt to bootstrap",
                   "renaming data directory to {data_dir}.failed"],
         fix=lambda i, lab: [f"rm -rf -- {i['data_dir']}.failed"]),
    # pg_rewind ran and was refused. The forked timeline it leaves behind shows as timeline-diverged only once
    # the member's PostgreSQL answers again, which Patroni's next loop may or may not have reached: not asserted.
    Case("rewind-failed", lambda i, lab: ["pg_rewind exit code=1"],
         evidence=['could not fetch remote file "global/pg_control": ERROR:  permission denied for function '
                   "pg_read_binary_file", "Failed to rewind from healthy primary: {new_leader}"],
         fix=lambda i, lab: [f"reinit postgres {i['node']} --force"]),
    # The archiver fails on every segment of the leader; nothing else is wrong yet (pg_wal only grows).
    Case("archive-command-failed", lambda i, lab: ["archive command failed with exit code 1"],
         evidence=["The failed archive command was: false"]),
    # Every member requires a watchdog the host does not have: the leader demotes itself, nobody promotes.
    Case("watchdog-unavailable", lambda i, lab: ["watchdog"],
         evidence=["Demoting self because watchdog could not be activated"]),
]


def _assert_healthy(lab, since_start: float) -> None:
    for n in lab.nodes:
        rc, rep = doctor_run(str(n.config), since_start)
        assert rc == 0 and rep["diagnoses"] == [], f"{n.name}: exit {rc}\n{_show(rep)}"
        members = {m["name"]: m for m in rep["cluster"]["members"]}
        assert sorted(members) == ["node1", "node2", "node3"]
        assert [k for k, m in members.items() if m["role"] == "Leader"] == [rep["cluster"]["leader"]]
        assert all(m["timeline"] is not None for m in members.values())


def test_postmaster_pid_naming_a_live_process_is_resolved_by_patroni(healthy_lab):
    """Patroni 4 sees through a postmaster.pid naming a live process that is no postmaster ('Process N is not
    postmaster') and starts PostgreSQL anyway: the logs show the problem, the live check passes, exit 0."""
    t0 = time.time()
    info = healthy_lab.break_fault("postmaster-pid-stale.live-pid")
    try:
        assert "warning" not in info["details"], info["details"]
        rc, rep = doctor_run(info["config"], t0)
        assert rc == 0 and rep["diagnoses"] == [], _show(rep)
        stale = next((d for d in rep["resolved"] if d["id"] == "postmaster-pid-stale"), None)
        assert stale is not None, rep["resolved"]
        assert f"Process {info['details']['pid_in_file']} is not postmaster" in stale["summary"], stale["summary"]
    finally:
        healthy_lab.heal()


def test_leader_lock_lost_is_named_whether_or_not_the_member_has_rejoined(healthy_lab):
    """Only the old leader's log tells this story: the DCS answered, its loop did not run in time. Patroni heals it
    by itself (the member rejoins as a replica, its heartbeat says so), so depending on how soon pgdoctor runs the
    problem is current (exit 2) or resolved (exit 0); either way it is named with the line that says the lock was lost."""
    t0 = time.time()
    info = healthy_lab.break_fault("leader-lock-lost")
    try:
        assert "warning" not in info["details"], info["details"]
        rc, rep = doctor_run(info["config"], t0)
        current = [d for d in rep["diagnoses"] if d["id"] == "leader-lock-lost"]
        resolved = [d for d in rep["resolved"] if d["id"] == "leader-lock-lost"]
        assert current or resolved, f"leader-lock-lost neither current nor resolved\n{_show(rep)}"
        d = (current or resolved)[0]
        # What the fault guarantees: the old leader's own log says it lost the lock, in whichever of Patroni's
        # lines came first on this machine ("failed to update leader lock" or "Demoting self ...").
        lost = re.compile(r"[Dd]emot|failed to update leader lock")
        assert any(lost.search(e) for e in d["evidence"]), d["evidence"]
        assert info["details"]["new_leader"] != info["details"]["old_leader"], info["details"]
        assert info["details"]["old_leader"] in d["summary"] + "\n".join(d["evidence"]), (d["summary"], d["evidence"])
        for text in ("ttl", "loop_wait", "retry_timeout"):
            assert text in "\n".join(d["fix"]), d["fix"]
        if current:
            assert rep["diagnoses"][0]["id"] == "leader-lock-lost" and rc == 2, f"exit {rc}\n{_show(rep)}"
        else:
            assert rc == 0 and rep["diagnoses"] == [], f"exit {rc}\n{_show(rep)}"
    finally:
        healthy_lab.heal()


def test_basebackup_failed_is_named_from_patroni_stderr(healthy_lab, tmp_path):
    """pg_basebackup refuses the configured option before it connects (not a login or pg_hba problem). Its
    error goes to Patroni's stderr (the journal under systemd; a file in the lab that ``pgdoctor run`` does
    not find), while Patroni's own log says only "pg_basebackup exited with code=1", a lifecycle event: so
    the diagnosis is asked of ``pgdoctor logs`` on that stderr, as an operator reads the journal."""
    stderr_files = {n.name: Path(n.patroni_stdout) for n in healthy_lab.nodes}
    offsets = {name: (p.stat().st_size if p.exists() else 0) for name, p in stderr_files.items()}
    info = healthy_lab.break_fault("basebackup-failed")
    try:
        assert "warning" not in info["details"], info["details"]
        # The stderr file is the lab's whole life (earlier faults' lines carry no time to filter on): read only
        # what this fault wrote, as `journalctl --since` would.
        with stderr_files[info["node"]].open("rb") as fh:
            fh.seek(offsets[info["node"]])
            stderr = tmp_path / "patroni-stderr.log"
            stderr.write_bytes(fh.read())
        cp = run_cli("logs", str(stderr), "--format", "json", timeout=90)
        rep = cp.json
        assert cp.returncode == 2 and rep["diagnoses"], f"exit {cp.returncode}\n{_show(rep)}"
        first = rep["diagnoses"][0]
        assert first["id"] == "basebackup-failed", _show(rep)
        assert 'transfer rate "10" is out of range' in first["summary"], first["summary"]
        assert not {"replication-auth-failed", "pg-hba-replication-missing"} & {d["id"] for d in rep["diagnoses"]}
    finally:
        healthy_lab.heal()


def test_healthy_right_after_bootstrap(lab):
    """A cluster that has just bootstrapped (transient slot errors in its logs) is healthy."""
    t0 = time.time()
    cluster.recreate(lab.layout)
    _assert_healthy(lab, t0)


def test_healthy_lab(healthy_lab):
    _assert_healthy(healthy_lab, time.time() - 60)


@pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
def test_fault(healthy_lab, case: Case):
    t0 = time.time()
    info = healthy_lab.break_fault(case.fault, node=case.node)
    try:
        assert "warning" not in info["details"], f"the fault's symptom did not show: {info['details']}"
        config = case.on(info, healthy_lab) if case.on else _cfg(info, healthy_lab)
        rc, rep = doctor_run(config, t0)
        assert rep["diagnoses"], f"no diagnosis for {case.fault} on {config}"
        first = rep["diagnoses"][0]
        assert first["id"] == case.problem, f"{case.fault} on {config}: first diagnosis\n{_show(rep)}"
        for text in case.names(info, healthy_lab):
            assert text in first["summary"], f"{text!r} not in: {first['summary']}"
        assert first["fix"], f"{case.problem} has no filled-in fix"
        unfilled = {name for block in first["fix"] for name in re.findall(r"<([a-z_]+)>", block)} - {"method"}
        assert not unfilled, f"fix has unfilled values {unfilled}: {first['fix']}"
        evidence = "\n".join(first["evidence"])
        for text in case.evidence:
            text = text.format(data_dir=info["data_dir"], **info["details"])
            assert text in evidence, f"{text!r} not in the evidence: {first['evidence']}"
        if case.fix:
            for text in case.fix(info, healthy_lab):
                assert text in "\n".join(first["fix"]), f"{text!r} not in the fix: {first['fix']}"
        for pids, texts in case.also.items():  # "a|b": either problem id will do
            other = next((d for d in rep["diagnoses"] if d["id"] in pids.split("|")), None)
            assert other is not None, f"{pids} missing\n{_show(rep)}"
            for text in texts(info, healthy_lab):
                assert text in other["summary"], f"{text!r} not in {other['id']}: {other['summary']}"
        assert rc == case.exit_code, f"exit {rc}\n{_show(rep)}"
    finally:
        healthy_lab.heal()
