"""The log scanner: formats it parses, robustness on bad input, counting, and the pattern catalogue."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.commands.logs import analyze_logs
from doctor.logscan import patterns_from
from doctor.logscan.parse import parse_line
from doctor.logscan.regex import required_literals, to_ere
from doctor.logscan.scan import Scanner
from doctor.logscan.sources import FileSource, SourceStats, StdinSource, as_stream, read_blocks
from doctor.model.node import NodeView
from doctor.playbooks import load_playbooks

ROOT = Path(__file__).resolve().parents[2]
DCS_LINE = "2026-11-26 06:24:07,967 INFO: demoting self because DCS is not accessible and I was a leader"
WAL_LINE = ("2026-11-26 06:40:01.100 UTC [812] FATAL:  could not receive data from WAL stream: ERROR:  "
            "requested WAL segment 000000010000000000000012 has already been removed")


def scan_bytes(data: bytes, engine: str = "auto") -> Scanner:
    return Scanner(patterns_from(), engine=engine).scan([StdinSource(as_stream(data))])


def ids(scanner: Scanner, benign: bool = False) -> list[str]:
    return sorted({m["playbook"] for m in scanner.matches() if m["benign"] == benign})


# ----------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("line,kind,level,message", [
    ("2024-08-28 19:39:26,352 INFO: no action. I am (pg1), the leader with the lock", "patroni", "INFO",
     "no action. I am (pg1), the leader with the lock"),
    ("2024-08-28 19:39:26,352 - ERROR - Failed to get list of machines", "patroni", "ERROR",
     "Failed to get list of machines"),
    ('2026-11-26 06:22:59.040 UTC [14290] LOG:  could not bind IPv4 address "127.0.4.13": Address already in use',
     "postgres", "LOG", 'could not bind IPv4 address "127.0.4.13": Address already in use'),
    ("1716900000.123 [77] FATAL:  the database system is starting up", "postgres", "FATAL",
     "the database system is starting up"),
    ("2026-11-26 06:20:26.357333 W | rafthttp: health check for peer 1 could not connect", "etcd", "WARNING",
     "rafthttp: health check for peer 1 could not connect"),
    ("raft2026/11/26 06:24:20 INFO: 522c received MsgVoteResp", "etcd", "INFO", "522c received MsgVoteResp"),
    ("Aug 28 19:39:26 db1 patroni[812]: 2024-08-28 19:39:26,352 INFO: waiting on etcd", "patroni", "INFO",
     "waiting on etcd"),
    ("2024-08-28T19:39:26+0000 db1 patroni[812]: 2024-08-28 19:39:26,352 ERROR: Error communicating with DCS",
     "patroni", "ERROR", "Error communicating with DCS"),
    ("Aug 28 19:39:26 db1 postgres[99]: [3-1] FATAL:  password authentication failed for user \"r\"",
     "postgres", "FATAL", 'password authentication failed for user "r"'),
    ('pg_basebackup: error: connection to server at "10.0.0.1", port 5432 failed: FATAL:  password '
     'authentication failed for user "replicator"', "pg_basebackup", None, None),
    ("a bare message with no prefix", None, None, "a bare message with no prefix"),
])
def test_parse_line_prefixes(line, kind, level, message):
    parsed = parse_line(line)
    assert parsed.kind == kind and parsed.level == level
    if message is not None:
        assert parsed.message == message


def test_parse_structured_lines():
    journal = json.dumps({"MESSAGE": "2024-08-28 19:39:26,352 INFO: waiting on etcd", "SYSLOG_IDENTIFIER": "patroni",
                          "__REALTIME_TIMESTAMP": "1724873966352000"})
    p = parse_line(journal)
    assert (p.kind, p.level, p.message, p.raw) == ("patroni", "INFO", "waiting on etcd",
                                                   "2024-08-28 19:39:26,352 INFO: waiting on etcd")
    jsonlog = json.dumps({"timestamp": "2024-01-01 10:00:00.123 UTC", "error_severity": "FATAL",
                          "message": 'password authentication failed for user "replicator"'})
    p = parse_line(jsonlog)
    assert (p.kind, p.level, p.ts) == ("postgres", "FATAL", 1704103200.123)
    csvlog = ('2024-01-01 10:00:00.123 UTC,"replicator","",123,"127.0.0.1:5000",abc.1,1,"authentication",'
              '2024-01-01 10:00:00 UTC,3/1,0,FATAL,28P01,"password authentication failed for user ""replicator""",'
              '"Connection matched",,,,,,,,,"",,')
    p = parse_line(csvlog)
    assert p.message.startswith('password authentication failed for user "replicator"') and p.level == "FATAL"


def test_structured_sources_are_searched_after_decoding():
    lines = [json.dumps({"MESSAGE": DCS_LINE, "SYSLOG_IDENTIFIER": "patroni", "__REALTIME_TIMESTAMP": "1795674247967000"}),
             json.dumps({"timestamp": "2024-01-01 10:00:00.123 UTC", "error_severity": "FATAL",
                         "message": 'no pg_hba.conf entry for replication connection from host "10.0.0.2", '
                                    'user "replicator", no encryption'})]
    s = scan_bytes(("\n".join(lines) + "\n").encode())
    assert ids(s) == ["dcs-unreachable", "pg-hba-replication-missing"]
    hba = next(m for m in s.matches() if m["playbook"] == "pg-hba-replication-missing")
    assert hba["groups"] == {"host": "10.0.0.2", "user": "replicator"}


# ----------------------------------------------------------------------------- counting, benign

def test_repeated_lines_are_counted_with_first_and_last():
    data = "\n".join(f"2026-11-26 06:22:{s:02d},246 INFO: waiting on etcd" for s in range(10, 40, 5)) + "\n"
    m = next(m for m in scan_bytes(data.encode()).matches() if m["pattern"] == "dcs-waiting-on-etcd")
    assert (m["count"], m["first"], m["last"]) == (6, "2026-11-26T06:22:10.246", "2026-11-26T06:22:35.246")
    assert m["sample"].endswith("waiting on etcd") and m["benign"] is False


def test_transient_noise_stays_quiet_but_persistent_counts():
    starting = "2026-11-26 06:16:{:02d}.226 UTC [3528] postgres@postgres FATAL:  the database system is starting up\n"
    brief = "".join(starting.format(s) for s in range(0, 4))
    assert ids(scan_bytes(brief.encode())) == []
    slot = ('2026-11-26 {}:{:02d}:00.311 UTC [3532] replicator@[unknown] ERROR:  replication slot "node2" '
            'does not exist\n')
    persistent = "".join(slot.format("07", m) for m in range(0, 30))
    assert "replication-slot-problem" in ids(scan_bytes(persistent.encode()))
    assert "replication-slot-problem" not in ids(scan_bytes("".join(slot.format("06", 1) for _ in range(3)).encode()))


def test_reference_messages_from_logs_alone():
    lines = [
        WAL_LINE,
        "2026-11-26 06:40:02,000 INFO: pg_rewind exit code=1",
        "2026-11-26 06:40:02,001 INFO:  stderr=pg_rewind: error: could not find common ancestor of the source and "
        "target cluster's timelines",
        "2026-11-26 06:40:02,002 ERROR: Failed to rewind from healthy primary: node1",
        "2026-11-26 06:40:03,000 ERROR: failed to update leader lock",
        "2026-11-26 06:40:04,000 INFO: removing initialize key after failed attempt to bootstrap the cluster",
        "2026-11-26 06:40:05,000 CRITICAL: Can't start; there is already a node named 'pg2' running",
    ]
    s = scan_bytes(("\n".join(lines) + "\n").encode())
    assert ids(s) == ["bootstrap-failed", "leader-lock-lost", "port-in-use", "rewind-failed", "wal-segment-removed"]
    wal = next(m for m in s.matches() if m["pattern"] == "wal-removed")
    assert wal["groups"]["segment"] == "000000010000000000000012"


def test_cause_ranks_before_consequence():
    lines = [
        "2026-11-26 06:24:07,000 ERROR: Error communicating with DCS",
        DCS_LINE,
        "2026-11-26 06:24:08,000 ERROR: failed to update leader lock",
        "2026-11-26 06:25:00.000 UTC [1] PANIC:  could not write to file \"pg_wal/xlogtemp.1\": No space left on device",
        "2026-11-26 06:25:01,000 ERROR: postmaster is not running",
    ]
    report = analyze_logs([StdinSource(as_stream(("\n".join(lines) + "\n").encode()))])
    order = [d.id for d in report.diagnoses]
    assert order.index("dcs-unreachable") < order.index("leader-lock-lost")
    assert order.index("disk-full") < order.index("postgres-start-failed")
    crashed = next(d for d in report.diagnoses if d.id == "postgres-start-failed")
    assert "disk-full" in crashed.caused_by
    assert any("x1" in e and "postmaster is not running" in e for e in crashed.evidence)


def test_secrets_in_log_lines_are_redacted():
    line = ("2026-11-26 06:40:02,000 ERROR: Request to server http://root:s3cretpw@127.0.0.1:2379 failed: "
            "MaxRetryError('x')\n") * 3
    report = analyze_logs([StdinSource(as_stream(line.encode()))])
    text = json.dumps(report.as_dict())
    assert "s3cretpw" not in text and "dcs-unreachable" in text


# ----------------------------------------------------------------------------- robustness

def test_binary_garbage_nul_and_invalid_utf8_are_notes(tmp_path):
    data = os.urandom(200_000) + b"\x00\x00" + b"\xff\xfe bad utf8 \n" + (DCS_LINE + "\n").encode() + b"\x00tail"
    s = Scanner(patterns_from()).scan([StdinSource(as_stream(data))])
    src = s.sources[0]
    assert src["read"] and any("NUL" in n for n in src["notes"]) and any("UTF-8" in n for n in src["notes"])
    assert "dcs-unreachable" in ids(s)


def test_huge_line_is_cut_and_reading_goes_on():
    huge = b"x" * (20 * 1024 * 1024)  # no newline for 20 MB
    data = huge + b"\n" + (DCS_LINE + "\n").encode()
    stats = SourceStats("t")
    blocks = list(read_blocks(as_stream(data), stats, block_size=1024 * 1024))
    assert max(len(b) for b in blocks) <= 1024 * 1024 + 64 * 1024 + 1
    assert stats.long_lines == 1
    s = Scanner(patterns_from(), block_size=1024 * 1024).scan([StdinSource(as_stream(data))])
    assert "dcs-unreachable" in ids(s) and any("cut" in n for n in s.sources[0]["notes"])


def test_truncated_gzip_keeps_what_came_before(tmp_path):
    body = ("".join(f"2026-11-26 06:22:{i % 60:02d},246 INFO: waiting on etcd\n" for i in range(20000))).encode()
    packed = gzip.compress(body)
    f = tmp_path / "patroni.log.2.gz"
    f.write_bytes(packed[: len(packed) // 2])
    s = Scanner(patterns_from()).scan([FileSource(str(f))])
    src = s.sources[0]
    assert src["read"] and any("compressed data ends early" in n for n in src["notes"])
    assert "dcs-unreachable" in ids(s)


def test_rotated_plain_and_gzip_files(tmp_path):
    (tmp_path / "patroni.log.1").write_text(DCS_LINE + "\n")
    (tmp_path / "patroni.log.2.gz").write_bytes(gzip.compress((WAL_LINE + "\n").encode()))
    s = Scanner(patterns_from()).scan([FileSource(str(tmp_path / "patroni.log.1")),
                                      FileSource(str(tmp_path / "patroni.log.2.gz"))])
    assert ids(s) == ["dcs-unreachable", "wal-segment-removed"]


def _pgdoctor(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", *args], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=60)


def test_unreadable_and_missing_files_are_one_line_errors(tmp_path):
    proc = _pgdoctor("logs", str(tmp_path / "nope.log"))
    assert proc.returncode == 3 and b"Traceback" not in proc.stderr
    assert b"does not exist" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    good = tmp_path / "patroni.log"
    good.write_text(DCS_LINE + "\n")
    proc = _pgdoctor("logs", str(good), str(tmp_path), str(tmp_path / "nope.log"), "--format", "json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    unread = [s for s in doc["logs"]["sources"] if not s["read"]]
    assert unread and "does not exist" in unread[0]["errors"][0]["message"]


def test_permission_denied_is_a_note(tmp_path):
    f = tmp_path / "secret.log"
    f.write_text(DCS_LINE + "\n")
    f.chmod(0)
    if os.access(f, os.R_OK):  # root reads anything: use a directory read as a file instead
        f = tmp_path
    s = Scanner(patterns_from()).scan([FileSource(str(f))])
    assert not s.sources[0]["read"] and s.sources[0]["errors"]


def test_stdin_and_binary_input_through_the_command():
    proc = _pgdoctor("logs", "-", "--format", "json", stdin=os.urandom(50_000) + b"\x00" * 100)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    proc = _pgdoctor("logs", "-", stdin=(WAL_LINE + "\n").encode())
    assert proc.returncode == 2 and b"wal-segment-removed" in proc.stdout


# ----------------------------------------------------------------------------- the catalogue

def test_catalogue_is_large_valid_and_searchable():
    patterns = patterns_from()
    assert len({p.regex for p in patterns}) >= 60
    assert len({p.id for p in patterns}) == len(patterns)
    logs = {p.log for p in patterns}
    assert {"patroni", "postgres", "etcd", "pg_basebackup", "pg_rewind", "any"} <= logs
    for p in patterns:
        lits = required_literals(p.regex)
        assert lits and min(len(x) for x in lits) >= 4, f"{p.id}: needs a literal of 4+ characters"
        assert "^" not in p.regex.replace("[^", ""), f"{p.id}: patterns are unanchored (lines carry prefixes)"
        to_ere(p.regex)


@pytest.mark.skipif(not shutil.which("grep"), reason="no grep")
def test_ere_export_is_accepted_by_grep(tmp_path):
    pats = tmp_path / "p.ere"
    pats.write_text("\n".join(to_ere(p.regex) for p in patterns_from()) + "\n")
    sample = tmp_path / "s.log"
    sample.write_text(DCS_LINE + "\n" + WAL_LINE + "\n" + "nothing here\n")
    proc = subprocess.run(["grep", "-E", "-c", "-f", str(pats), str(sample)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "2", proc.stderr


def test_both_master_and_primary_wordings():
    for word in ("primary", "master"):
        line = f"2026-11-26 06:40:00,000 ERROR: Failed to rewind from healthy {word}: x\n"
        assert "rewind-failed" in ids(scan_bytes(line.encode()))


def test_playbooks_with_patterns_render_their_fix():
    books = load_playbooks()
    for pid in ("bootstrap-failed", "leader-lock-lost", "wal-segment-removed", "rewind-failed",
                "postgres-start-failed"):
        book = books[pid]
        node = NodeView({"name": "pg2", "scope": "pg", "postgresql": {"data_dir": "/var/lib/postgresql/15/data"}},
                        "/etc/patroni/patroni.yml")
        fixes = book.fix_commands(node.template_values())
        text = "\n".join(fixes)
        assert fixes and ("patronictl -c /etc/patroni/patroni.yml" in text or "/var/lib/postgresql/15/data" in text)
        assert "<" not in text.replace("<<", ""), f"{pid}: unfilled value in {text}"


@pytest.mark.parametrize("block_size", [None, 512])
def test_untimed_traceback_lines_obey_since(block_size):
    """A traceback line has no time of its own: it takes the time of the line before it, even across
    a block boundary, so an outage long before --since does not count now."""
    import datetime as dt

    old = "2026-11-26 05:00:00,000"
    new = "2026-11-26 06:50:00,000"
    trace = [f"{old} ERROR: get_cluster", "Traceback (most recent call last):"]
    trace += [f'  File "/opt/venv/lib/python3.11/site-packages/patroni/dcs/etcd3.py", line {n}, in call' for n in range(40)]
    trace += ["    raise etcd.EtcdConnectionFailed('No more machines in the cluster')",
              "etcd.EtcdConnectionFailed: No more machines in the cluster"]
    healthy = [f"{new} INFO: no action. I am (node1), the leader with the lock"] * 3
    data = ("\n".join(trace + healthy) + "\n").encode()
    since = dt.datetime(2026, 11, 26, 6, 0).timestamp()
    scanner = Scanner(patterns_from(), since=since, block_size=block_size).scan([StdinSource(as_stream(data))])
    assert "dcs-unreachable" not in ids(scanner)
    # The control: without --since the same lines are found.
    scanner = Scanner(patterns_from(), block_size=block_size).scan([StdinSource(as_stream(data))])
    assert "dcs-unreachable" in ids(scanner)


# ---------------------------------------------------------------- judged against what came later / this node

SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"


def _report(lines: list[str], node_config: dict | None = None):
    """``pgdoctor logs`` on these lines (with ``-c`` a patroni.yml holding ``node_config``, when given)."""
    import tempfile

    import yaml

    source = [StdinSource(as_stream(("\n".join(lines) + "\n").encode()))]
    if node_config is None:
        return analyze_logs(source)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "patroni.yml"
        path.write_text(yaml.safe_dump(node_config))
        return analyze_logs(source, config_path=str(path))


def test_stuck_initialize_key_healed_by_a_later_clone_is_resolved():
    stuck = (SAMPLES / "initialize-key-stuck.patroni.log").read_text().splitlines()
    # the same member after the key was healed: the real lines Patroni writes on a successful clone
    healed = ["2026-11-26 06:24:10,101 INFO: trying to bootstrap from leader 'node3'",
              "2026-11-26 06:24:12,629 INFO: bootstrapped from leader 'node3'",
              "2026-11-26 06:24:22,706 INFO: no action. I am (node2), a secondary, and following a leader (node3)"]
    assert "initialize-key-stuck" in [d["id"] for d in _report(stuck).as_dict()["diagnoses"]]
    out = _report(stuck + healed).as_dict()
    assert "initialize-key-stuck" not in [d["id"] for d in out["diagnoses"]]
    resolved = {d["id"]: d for d in out["resolved"]}
    assert "bootstrapped from leader 'node3'" in resolved["initialize-key-stuck"]["summary"]
    # a problem that comes back after the healing line is current again
    assert "initialize-key-stuck" in [d["id"] for d in _report(stuck + healed + [
        ln.replace("06:23:", "06:25:") for ln in stuck]).as_dict()["diagnoses"]]


def test_no_standbys_resolved_by_a_later_non_empty_sync_assignment():
    lines = list((SAMPLES / "sync-standby-unavailable.strict.patroni.log").read_text().splitlines())
    before = [d["id"] for d in _report(lines).as_dict()["diagnoses"]]
    assert "sync-standby-unavailable" in before
    after = _report([*lines, "2026-11-26 06:40:00,000 INFO: Assigning synchronous standby status to ['node3']"]).as_dict()
    assert "sync-standby-unavailable" not in [d["id"] for d in after["diagnoses"]]
    assert "sync-standby-unavailable" in [d["id"] for d in after["resolved"]]
    still = _report([*lines, "2026-11-26 06:40:00,000 INFO: Assigning synchronous standby status to ['*']"]).as_dict()
    assert "sync-standby-unavailable" in [d["id"] for d in still["diagnoses"]]


def test_loop_time_exceeded_alone_is_not_a_lost_lock():
    lines = [ln for f in sorted(SAMPLES.glob("dcs-*.patroni.log")) for ln in f.read_text().splitlines()]
    loops = sorted(ln for ln in lines if "Loop time exceeded" in ln)[:8]
    assert len(loops) >= 3
    assert "leader-lock-lost" not in [d["id"] for d in _report(loops).as_dict()["diagnoses"]]
    real = (SAMPLES / "leader-lock-lost.patroni.log").read_text().splitlines()
    assert "leader-lock-lost" in [d["id"] for d in _report(real).as_dict()["diagnoses"]
                                  + _report(real).as_dict()["resolved"]]


def test_auth_failure_of_another_user_is_not_replication_auth():
    su = ['2026-11-26 06:22:51.744 UTC [14024] postgres@postgres FATAL:  password authentication failed for user "postgres"']
    assert "replication-auth-failed" not in [d["id"] for d in _report(su).as_dict()["diagnoses"]]
    repl = [ln for ln in (SAMPLES / "replication-auth-failed.postgres.log").read_text().splitlines()
            if "password authentication failed" in ln]
    assert "replication-auth-failed" in [d["id"] for d in _report(repl).as_dict()["diagnoses"]]
    # the node's own replication user name comes from its config
    cfg = {"postgresql": {"authentication": {"replication": {"username": "postgres"}}}}
    assert "replication-auth-failed" in [d["id"] for d in _report(su, cfg).as_dict()["diagnoses"]]


def test_fix_uses_the_endpoints_the_log_names_and_names_an_unconfirmed_url_as_text():
    lines = [f"2026-11-26 06:25:0{i},000 WARNING: Request failed to node1: GET http://127.0.0.11:8008/patroni "
             "(HTTPConnectionPool(host='127.0.0.11', port=8008): Max retries exceeded)" for i in range(4)]
    lines += [ln for ln in (SAMPLES / "dcs-unreachable.at-start.node1.patroni.log").read_text().splitlines()
              if "Failed to get list of machines" in ln][:6]
    out = _report(lines).as_dict()
    fixes = {d["id"]: "\n".join(d["fix"]) for d in out["diagnoses"] + out["resolved"]}
    # no config or DCS confirms the member's URL: the command stays generic, the fix names the URL as text
    rest = next(d for d in out["diagnoses"] + out["resolved"] if d["id"] == "rest-api-unreachable")
    assert "curl -sv '<member_api_url>'" in fixes["rest-api-unreachable"]
    assert 'member_api_url "http://127.0.0.11:8008/patroni"' in rest["fix_text"]
    assert "127.0.2.1" in fixes["dcs-unreachable"] and "127.0.0.1:2379" not in fixes["dcs-unreachable"]


def test_retry_loop_collapses_into_one_timeline_entry_with_the_node():
    from doctor.logscan.scan import collapse_cycles, node_from_path
    lines = []
    for i in range(20):
        lines += [f"2026-11-26 06:30:{i * 3:02d},100 INFO: trying to bootstrap from leader 'node1'",
                  f"2026-11-26 06:30:{i * 3:02d},900 ERROR: failed to bootstrap from leader 'node1'"]
    lines.append("2026-11-26 06:31:30,000 INFO: no action. I am (node2), a secondary, and following a leader (node1)")
    evs = scan_bytes(("\n".join(lines) + "\n").encode()).events()
    assert len(evs) == 1, evs
    assert evs[0]["count"] == 20 and evs[0]["event"] == "clone / clone-failed"
    assert evs[0]["last"].startswith("2026-11-26T06:30:57") and evs[0]["node"] == "node2"
    assert node_from_path("/var/tmp/lab-dev4/node2/data/log/postgresql.log") == "node2"
    assert node_from_path("sample_logs/dcs-unreachable.quorum-lost.node3.patroni.log") == "node3"
    assert node_from_path("/var/lib/postgresql/15/main/log/postgresql-2026-11-26_000000.log") is None
    assert len(collapse_cycles([])) == 0


def test_logs_with_nothing_read_exits_3_and_says_what_was_tried(tmp_path):
    empty_dir = tmp_path / "emptydir"
    empty_dir.mkdir()
    def run(*a):
        return subprocess.run([sys.executable, "-m", "doctor", "logs", *a], capture_output=True, text=True, timeout=60, cwd=str(Path(__file__).resolve().parents[2]))
    r = run(str(empty_dir))
    assert r.returncode == 3 and f"directory {empty_dir} has no log files" in r.stderr
    (tmp_path / "empty.log").write_text("")
    r = run(str(tmp_path / "empty.log"))
    assert r.returncode == 3 and "empty.log: empty" in r.stderr
    r = run("--unit", "pgdoctor-no-such-unit")
    assert r.returncode == 3 and "journal:pgdoctor-no-such-unit: no entries" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_without_a_config_the_fix_names_no_key_outside_the_cluster():
    """With no scope known, the initialize key's fix must not point at the namespace's root."""
    from cli_runner import run_cli

    out = run_cli("logs", str(SAMPLES / "initialize-key-stuck.patroni.log"), "--format", "json", check=2).json
    fix = "\n".join(out["diagnoses"][0]["fix"])
    assert "del '/service/<scope>/'initialize" in fix, fix
    assert "/service/initialize" not in fix, fix


@pytest.mark.parametrize("text", [b"", b"plain", "caf\u00e9 \u2014 \U0001f600".encode() * 500, b"ok \xff then", b"\xe2\x80",
                                  "\u00e9".encode() * 3000 + b"\xc3"])
def test_utf8_is_judged_a_slice_at_a_time_as_a_whole(text: bytes) -> None:
    """Slices cut multi-byte characters anywhere; the verdict is the one decoding the whole block gives."""
    from doctor.logscan.scan import valid_utf8

    try:
        text.decode("utf-8")
        whole = True
    except UnicodeDecodeError:
        whole = False
    assert all(valid_utf8(text, step) == whole for step in (1, 2, 3, 7, 4096))
