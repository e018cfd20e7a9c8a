"""Hostile and endless inputs: devices, pipes and FIFOs under a deadline, lines that cannot be parsed,
untimed lines in bulk, unbounded distinct values, and bundles that expand to far more than they weigh.

Every command runs in a subprocess with a generous timeout: the timeout only guards against a hang,
the assertions are on what pgdoctor says and its exit code.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from doctor.bundle import BundleError, reader
from doctor.bundle import logs as bundle_logs
from doctor.collect.deadline import Deadline
from doctor.engine import CheckContext, load_checks
from doctor.facts import Facts
from doctor.logscan import patterns_from
from doctor.logscan import scan as scan_mod
from doctor.logscan.parse import ParseError, parse_line
from doctor.logscan.scan import MAX_DISTINCT, NOT_REACHED, SAMPLE_CAP, Scanner
from doctor.logscan.sources import FileSource, StdinSource, as_stream
from doctor.model.node import NodeView
from doctor.redact import Redactor

ROOT = Path(__file__).resolve().parents[2]
DCS_LINE = "2026-11-26 06:24:07,967 INFO: demoting self because DCS is not accessible and I was a leader"
HEARTBEAT = "2026-11-26 06:24:07,967 INFO: no action. I am (node1), the leader with the lock"
QUORUM = ('{"level":"warn","ts":%s,"caller":"etcdserver/raft.go:1",'
          '"msg":"stepped down to follower since quorum is not active"}')
AUTH = '2026-11-26 06:{m:02d}:{s:02d}.000 UTC [81] FATAL:  password authentication failed for user "{user}"'
UNTIMED = ('pg_basebackup: error: connection to server at "127.0.2.11", port 5432 failed: FATAL:  '
           'password authentication failed for user "replicator"')
HANG_GUARD = 120  # seconds; far above what any of these takes


def pgdoctor(*args: str, stdin=None, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", *args], input=input,
                          stdin=stdin, capture_output=True, cwd=ROOT, timeout=HANG_GUARD)


def ids(scanner: Scanner) -> set[str]:
    return {m["playbook"] for m in scanner.matches() if not m["benign"]}


# ----------------------------------------------------------------------------- devices, pipes, FIFOs

@pytest.mark.parametrize("device", ["/dev/urandom", "/dev/zero"])
def test_a_device_is_refused_in_one_line(device):
    proc = pgdoctor("logs", device)
    assert proc.returncode == 3
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "character device, not a log file" in lines[0], proc.stderr


def test_a_device_next_to_a_log_is_a_note_and_the_log_is_read(tmp_path):
    log = tmp_path / "patroni.log"
    log.write_text(DCS_LINE + "\n")
    proc = pgdoctor("logs", "/dev/zero", str(log), "--format", "json")
    assert proc.returncode == 2, proc.stderr
    sources = {s["label"]: s for s in json.loads(proc.stdout)["logs"]["sources"]}
    assert not sources["/dev/zero"]["read"] and "character device" in sources["/dev/zero"]["errors"][0]["message"]
    assert sources[str(log)]["complete"]


def test_stdin_from_a_device_is_refused():
    with open("/dev/zero", "rb") as zero:
        proc = pgdoctor("logs", "-", stdin=zero)
    assert proc.returncode == 3 and b"standard input" not in proc.stdout
    assert b"character device" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_fifo_without_a_writer_stops_at_the_deadline(tmp_path):
    fifo = tmp_path / "patroni.fifo"
    os.mkfifo(fifo)
    proc = pgdoctor("logs", str(fifo), "--deadline", "2")
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1
    # "nothing came before the time limit", or on a slow machine "not read, the time limit was reached
    # before this source was read"
    assert b"the time limit" in proc.stderr, proc.stderr


def test_a_fifo_with_a_writer_is_read(tmp_path):
    fifo = tmp_path / "patroni.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as fh:  # blocks until pgdoctor opens the FIFO for reading
            fh.write(DCS_LINE + "\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    proc = pgdoctor("logs", str(fifo), "--format", "json", "--deadline", "60")
    writer.join(timeout=5)
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert [d["id"] for d in doc["diagnoses"]] == ["dcs-unreachable"]
    assert doc["logs"]["sources"][0]["complete"]


def test_process_substitution_is_read(tmp_path):
    log = tmp_path / "patroni.log"
    log.write_text(DCS_LINE + "\n")
    cmd = f'"{sys.executable}" -c "from doctor.cli import main; main()" logs <(cat "{log}") --format json'
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, cwd=ROOT, timeout=HANG_GUARD)
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout)["diagnoses"][0]["id"] == "dcs-unreachable"


def test_a_stalled_pipe_stops_at_the_deadline_and_the_verdict_is_not_healthy():
    """A writer that sends healthy lines and then hangs: what came is read, the source is marked stopped,
    and the verdict says the logs were not read to their end (exit 1), never "no problem"."""
    proc = subprocess.Popen([sys.executable, "-c", "from doctor.cli import main; main()", "logs", "-", "--format",
                             "json", "--deadline", "6"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdin is not None
    proc.stdin.write((HEARTBEAT + "\n").encode() * 3)
    proc.stdin.flush()
    try:
        proc.wait(timeout=HANG_GUARD)  # stdin stays open (communicate() would close it): only the deadline ends it
    finally:
        proc.kill()
        proc.stdin.close()
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 1, err
    doc = json.loads(out)
    src = doc["logs"]["sources"][0]
    assert src["lines"] == 3 and not src["complete"] and "time limit" in src["stopped"]
    assert doc["verdict"] == "warn" and [d["id"] for d in doc["diagnoses"]] == ["logs-incomplete"]


def test_sources_not_reached_before_the_deadline_say_so(tmp_path):
    log = tmp_path / "patroni.log"
    log.write_text(DCS_LINE + "\n")
    s = Scanner(patterns_from(), deadline=time.monotonic() - 1).scan([FileSource(str(log)), FileSource(str(log))])
    assert [src["stopped"] for src in s.sources] == [NOT_REACHED, NOT_REACHED]
    assert not any(src["complete"] for src in s.sources)


# ----------------------------------------------------------------------------- lines that cannot be parsed

@pytest.mark.parametrize("ts", ["1e20", "NaN", "-5", "Infinity", "1e400"])
def test_a_timestamp_that_is_no_time_is_a_parse_error(ts):
    with pytest.raises(ParseError):
        parse_line(QUORUM % ts)


def test_deep_json_is_a_parse_error_not_a_crash():
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_line('{"a":' * 30000 + "1" + "}" * 30000)
    with pytest.raises(ParseError):
        parse_line('{"MESSAGE": "x", "__REALTIME_TIMESTAMP": "1e999"}')


def test_hostile_lines_are_counted_and_the_structured_log_is_read_to_its_end(tmp_path):
    log = tmp_path / "etcd.log"
    log.write_text("\n".join([
        QUORUM % "1724871566.1",
        '{"a":' * 30000 + "1" + "}" * 30000,
        QUORUM % "1e20", QUORUM % "NaN", QUORUM % "-5",
        QUORUM % "1724871567.1",
    ]) + "\n")
    proc = pgdoctor("logs", str(log), "--format", "json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    src = doc["logs"]["sources"][0]
    assert src["complete"] and src["lines"] == 6 and src["unparsed_lines"] == 4
    note = next(n for n in src["notes"] if "could not be parsed" in n)
    assert note.startswith("4 lines could not be parsed") and "JSON nested too deeply (1)" in note
    assert "timestamp out of range (3)" in note
    match = next(m for m in doc["logs"]["matches"] if m["pattern"] == "etcd-quorum-lost")
    assert match["count"] == 2


def test_a_hostile_candidate_line_in_a_plain_log_is_skipped_and_counted():
    deep = '{"msg":"stepped down to follower since quorum is not active","x":' + "[" * 30000 + "]" * 30000 + "}"
    data = "\n".join(["plain text first", deep, DCS_LINE]) + "\n"
    s = Scanner(patterns_from()).scan([StdinSource(as_stream(data.encode()))])
    assert s.sources[0]["unparsed_lines"] == 1 and s.sources[0]["complete"]
    assert "dcs-unreachable" in ids(s)


# ----------------------------------------------------------------------------- bounded cost and state

def test_untimed_lines_cost_one_parse_each(monkeypatch):
    """Each untimed matching line takes the time of the timed line before it without looking back
    again: the parser runs about once per line, however many untimed lines come in a row."""
    calls = 0
    real = scan_mod.parse_line

    def counting(text, kind=None):
        nonlocal calls
        calls += 1
        return real(text, kind)

    monkeypatch.setattr(scan_mod, "parse_line", counting)
    n = 5000
    data = ("2026-11-26 05:00:00,000 INFO: start\n" + (UNTIMED + "\n") * n).encode()
    s = Scanner(patterns_from(), block_size=64 * 1024).scan([StdinSource(as_stream(data))])
    match = next(m for m in s.matches() if m["pattern"] == "auth-password-failed")
    assert match["count"] == n and match["first"] == match["last"] == "2026-11-26T05:00:00.000"
    assert calls <= 2 * (n + 1)


def test_a_hundred_thousand_untimed_lines_complete_and_obey_since():
    data = ("2026-11-26 05:00:00,000 INFO: start\n" + (UNTIMED + "\n") * 100_000).encode()
    import datetime as dt

    after = dt.datetime(2026, 11, 26, 6, 0).timestamp()
    s = Scanner(patterns_from(), since=after).scan([StdinSource(as_stream(data))])
    assert not [m for m in s.matches() if m["pattern"] == "auth-password-failed"]
    s = Scanner(patterns_from()).scan([StdinSource(as_stream(data))])
    assert next(m for m in s.matches() if m["pattern"] == "auth-password-failed")["count"] == 100_000


def _auth_log(users: list[str]) -> bytes:
    return "".join(AUTH.format(m=(i // 60) % 60, s=i % 60, user=u) + "\n" for i, u in enumerate(users)).encode()


def test_distinct_values_are_kept_for_a_few_and_counted_for_the_rest():
    users = [f"user{i:05d}" for i in range(3000)]
    s = Scanner(patterns_from()).scan([StdinSource(as_stream(_auth_log(users)))])
    auth = [m for m in s.matches() if m["pattern"] == "auth-password-failed"]
    assert len(auth) == MAX_DISTINCT + 1
    folded = next(m for m in auth if "folded" in m)
    assert folded["count"] == 3000 - MAX_DISTINCT and folded["folded"]["distinct"] == 3000 - MAX_DISTINCT
    assert f"and {3000 - MAX_DISTINCT} more distinct user value(s)" in folded["sample"]
    assert folded["values"]["user"] == users[MAX_DISTINCT:MAX_DISTINCT + 5]


def test_this_nodes_user_is_never_folded_and_folded_users_are_not_taken_for_it(tmp_path):
    others = [f"user{i:05d}" for i in range(500)]
    from doctor.commands.logs import analyze_logs

    report = analyze_logs([StdinSource(as_stream(_auth_log(others)))])
    assert report.as_dict()["diagnoses"] == []  # none of them is the replication user
    report = analyze_logs([StdinSource(as_stream(_auth_log([*others, "replicator"])))])
    assert [d["id"] for d in report.as_dict()["diagnoses"]] == ["replication-auth-failed"]
    example = (Path(__file__).resolve().parents[2] / "examples" / "patroni.yml").read_text()
    config = tmp_path / "patroni.yml"
    config.write_text(example.replace("username: replicator", "username: user00400"))
    report = analyze_logs([StdinSource(as_stream(_auth_log(others)))], config_path=str(config))
    diag = report.as_dict()["diagnoses"]
    assert [d["id"] for d in diag] == ["replication-auth-failed"] and "user00400" in diag[0]["summary"]


def test_text_taken_from_a_line_is_bounded():
    line = "2026-11-26 06:24:07,967 ERROR: Request to server http://127.0.0.1:2379 failed: " + "x" * 50_000
    s = Scanner(patterns_from()).scan([StdinSource(as_stream((line + "\n").encode() * 3))])
    for m in s.matches():
        assert len(m["sample"]) <= SAMPLE_CAP
        assert all(len(str(v)) <= SAMPLE_CAP for v in m["groups"].values())
        assert all(len(str(v)) <= SAMPLE_CAP for vs in m["values"].values() for v in vs)


# ----------------------------------------------------------------------------- the logs.read check

def _check(facts: dict) -> list:
    from doctor.engine import _run_one

    c = load_checks()["logs.read"]
    return _run_one(c, CheckContext(facts=Facts({"version": 1, **facts}), node=NodeView(), settings={}))


def test_the_check_warns_on_a_stopped_source_and_passes_otherwise():
    stopped = {"label": "a.log", "lines": 10, "stopped": "the time limit was reached"}
    [f] = _check({"logs": {"sources": [stopped, {"label": "b.log", "lines": 3}]}})
    assert f.status == "warn" and f.playbook == "logs-incomplete" and "a.log" in f.summary
    [f] = _check({"logs": {"sources": [{"label": "b.log", "lines": 3}]}})
    assert f.status == "ok"
    [f] = _check({"logs": {"skipped": "log reading turned off (--no-logs)"}})
    assert f.status == "skip"


# ----------------------------------------------------------------------------- bundles

def _bundle(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"b/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_facts_json_that_expands_past_the_cap_is_refused_in_one_line(tmp_path):
    facts = b'{"version": 1, "pad": "' + b"a" * (reader.MAX_FACTS + 1024) + b'"}'
    bomb = tmp_path / "bomb.tar.gz"
    _bundle(bomb, {"manifest.json": b'{"format": "pgdoctor-bundle"}', "facts.json": facts})
    assert bomb.stat().st_size < 1024 * 1024
    proc = pgdoctor("analyze", str(bomb))
    assert proc.returncode == 3
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "facts.json is" in lines[0] and "more than the 32 MiB" in lines[0]


def test_a_bare_facts_json_past_the_cap_and_a_device_are_refused(tmp_path):
    big = tmp_path / "facts.json"
    with big.open("wb") as fh:
        fh.write(b"{")
        fh.truncate(reader.MAX_FACTS + 1)
    with pytest.raises(BundleError, match="more than the 32 MiB"):
        reader.open_bundle(str(big))
    with pytest.raises(BundleError, match="not a regular file"):
        reader.open_bundle("/dev/zero")


def test_reading_a_bundle_stops_at_the_deadline(tmp_path):
    path = tmp_path / "b.tar.gz"
    _bundle(path, {"facts.json": b'{"version": 1}', "manifest.json": b'{"format": "pgdoctor-bundle"}'})
    with pytest.raises(BundleError, match="stopped at the time limit"):
        reader.open_bundle(str(path), deadline=time.monotonic() - 1)
    assert reader.open_bundle(str(path), deadline=time.monotonic() + 60).facts.get("version") == 1


def test_bundle_member_names_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_LISTED", 3)
    path = tmp_path / "b.tar.gz"
    members = {f"logs/{i}.log": b"x" for i in range(6)}
    members.update({"facts.json": b'{"version": 1}', "manifest.json": b'{"format": "pgdoctor-bundle"}'})
    _bundle(path, members)
    opened = reader.open_bundle(str(path))
    assert len(opened.names) == 3 and opened.notes == ["the archive has 5 more member(s) than the 3 listed"]


def test_bundle_logs_skip_devices_and_stop_at_the_deadline(tmp_path):
    log = tmp_path / "patroni.log"
    log.write_text(DCS_LINE + "\n")
    facts = Facts({"version": 1})
    out = bundle_logs.harvest(facts, Redactor(), 3600, 1024 * 1024, ["/dev/zero", str(log)],
                              deadline=Deadline.for_command(5.0, "bundle"))
    assert [x.source for x in out.excerpts] == [str(log)]
    assert any(p["what"] == "log file /dev/zero" and p["error"]["kind"] == "not a regular file"
               for p in out.not_collected)
    spent = Deadline(timeout=5.0, end=time.monotonic() - 1, name="bundle")
    out = bundle_logs.harvest(facts, Redactor(), 3600, 1024 * 1024, [str(log)], deadline=spent)
    assert not out.excerpts and out.left_out[0] == {"file": str(log), "reason": bundle_logs.OUT_OF_TIME}
