"""Persistent vs. transient log lines: a loop that outlasts a few HA loops is a problem, the same line
seen briefly during a bootstrap, clone or failover and followed by progress is not.

The excerpts are built here, in the shapes Patroni and PostgreSQL print them (Patroni logs what its HA
loop returns once per loop, after ``Lock owner: ...; I am ...`` when its data directory is empty), under
the prefixes logs arrive with: plain files, syslog, the journal, quoted with ``> ``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from doctor.commands.logs import analyze_logs
from doctor.logscan import patterns_from
from doctor.logscan.persist import DEFAULT_LOOP_WAIT, duration_text
from doctor.logscan.scan import Scanner
from doctor.logscan.sources import FileSource
from doctor.playbooks import PlaybookError, parse_playbook

T0 = dt.datetime(2026, 11, 26, 6, 0, 0)


def patroni(t: float, level: str, msg: str) -> str:
    stamp = T0 + dt.timedelta(seconds=t)
    return f"{stamp:%Y-%m-%d %H:%M:%S},{stamp.microsecond // 1000:03d} {level}: {msg}"


def postgres(t: float, pid: int, level: str, msg: str) -> str:
    stamp = T0 + dt.timedelta(seconds=t)
    return f"{stamp:%Y-%m-%d %H:%M:%S}.{stamp.microsecond // 1000:03d} UTC [{pid}] {level}:  {msg}"


def journal(line: str) -> str:
    return f"Nov 26 06:00:00 db2 patroni[4242]: {line}"


def syslog(line: str) -> str:
    return f"2026-11-26T06:00:00.000000+00:00 db2 patroni[4242]: {line}"


def quoted(line: str) -> str:
    return f"> {line}"


def as_json(line: str) -> str:
    """Patroni's ``log.type: json`` record of a plain Patroni line."""
    import json

    stamp, rest = line[:23], line[24:]
    level, msg = rest.split(": ", 1)
    return json.dumps({"asctime": stamp, "levelname": level, "message": msg})


PREFIXES: dict[str, Callable[[str], str]] = {"plain": lambda s: s, "journal": journal, "syslog": syslog,
                                             "quoted": quoted, "json": as_json}


def waiting_loop(start: float, loops: int, owner: str = "None", me: str = "node2", step: float = 10.0,
                 standby: bool = False) -> list[str]:
    """``loops`` HA loops of a member with an empty data dir and no leader to clone from."""
    out = []
    for i in range(loops):
        t = start + i * step
        out.append(patroni(t, "INFO", f"Lock owner: {owner}; I am {me}"))
        out.append(patroni(t + 0.05, "INFO", f"waiting for {'standby_' if standby else ''}leader to bootstrap"))
    return out


def clone_then_follow(start: float, me: str = "node2", leader: str = "node1") -> list[str]:
    return [patroni(start, "INFO", f"Lock owner: {leader}; I am {me}"),
            patroni(start + 0.1, "INFO", f"trying to bootstrap from leader '{leader}'"),
            patroni(start + 3, "INFO", "replica has been created using basebackup"),
            patroni(start + 3.1, "INFO", f"bootstrapped from leader '{leader}'"),
            patroni(start + 4, "INFO", "postmaster pid=3516"),
            patroni(start + 12, "INFO", f"no action. I am ({me}), a secondary, and following a leader ({leader})"),
            patroni(start + 22, "INFO", f"no action. I am ({me}), a secondary, and following a leader ({leader})")]


def report(tmp_path: Path, name: str, lines: list[str]):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return analyze_logs([FileSource(str(path))])


def current(rep) -> list[str]:
    return [d.id for d in rep.diagnoses]


def test_a_brief_wait_during_a_normal_start_is_silent(tmp_path: Path) -> None:
    rep = report(tmp_path, "node2.patroni.log", waiting_loop(0, 2) + clone_then_follow(20))
    assert current(rep) == [] and [d.id for d in rep.resolved] == []
    match = next(m for m in rep.facts.get("logs.matches") if m["pattern"] == "init-waiting-for-leader")
    assert match["benign"] and match["quiet_reason"].startswith("transient:")
    assert match["persist"]["persistent"] is False and match["persist"]["run"]["then"] == "progress"


def test_a_single_wait_at_the_end_of_the_log_is_silent(tmp_path: Path) -> None:
    rep = report(tmp_path, "node2.patroni.log", waiting_loop(0, 1))
    assert current(rep) == []


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_a_persistent_wait_without_lock_owner_is_initialize_key_stuck(tmp_path: Path, prefix: str) -> None:
    lines = [PREFIXES[prefix](ln) for ln in waiting_loop(0, 37)]
    rep = report(tmp_path, "node2.patroni.log", lines)
    assert current(rep) == ["initialize-key-stuck"]
    evidence = " ".join(rep.diagnoses[0].evidence)
    assert "x37 in a row over 6m00s" in evidence and "with no progress" in evidence
    events = [e for e in rep.as_dict()["events"] if e["event"] == "waiting"]
    assert len(events) == 1 and events[0]["count"] == 37, "the loop is one row of the timeline"


def test_a_persistent_wait_with_a_lock_owner_is_not_initialize_key_stuck(tmp_path: Path) -> None:
    """A leader holds the lock but no member can be cloned from: the initialize key is not the problem."""
    rep = report(tmp_path, "node2.patroni.log", waiting_loop(0, 20, owner="node1"))
    assert "initialize-key-stuck" not in current(rep)
    match = next(m for m in rep.facts.get("logs.matches") if m["pattern"] == "init-waiting-for-leader")
    assert match["benign"] and "never with init-lock-none" in match["quiet_reason"]


def test_a_standby_cluster_waiting_for_its_standby_leader(tmp_path: Path) -> None:
    rep = report(tmp_path, "node2.patroni.log", waiting_loop(0, 10, standby=True))
    assert current(rep) == ["initialize-key-stuck"]


def test_a_long_wait_that_ended_in_a_clone_is_over_not_current(tmp_path: Path) -> None:
    rep = report(tmp_path, "node2.patroni.log", waiting_loop(0, 30) + clone_then_follow(300))
    assert current(rep) == []
    assert [d.id for d in rep.resolved] == ["initialize-key-stuck"]


def test_a_progress_line_between_loops_starts_a_new_run(tmp_path: Path) -> None:
    """Three short waits, each ended by the member following a leader: never more than 3 loops in a row."""
    lines: list[str] = []
    for k in range(3):
        lines += [*waiting_loop(k * 100, 3), patroni(k * 100 + 35, "INFO", "no action. I am (node2), a secondary, " "and following a leader (node1)")]
    rep = report(tmp_path, "node2.patroni.log", lines)
    assert current(rep) == []
    match = next(m for m in rep.facts.get("logs.matches") if m["pattern"] == "init-waiting-for-leader")
    assert match["count"] == 9 and match["persist"]["runs"] == 3 and match["persist"]["run"]["count"] == 3


def slot_errors(start: float, seconds: float, every: float = 5.0, slot: str = "node2") -> list[str]:
    """The leader's PostgreSQL refusing a replica's START_REPLICATION for a slot Patroni has not created."""
    out, t = [], start
    while t <= start + seconds:
        out.append(postgres(t, 811, "ERROR", f'replication slot "{slot}" does not exist'))
        out.append(postgres(t, 811, "STATEMENT", f"START_REPLICATION SLOT \"{slot}\" 0/3000000 TIMELINE 1"))
        t += every
    return out


def test_the_slot_race_of_a_bootstrap_is_silent(tmp_path: Path) -> None:
    rep = report(tmp_path, "node1.postgres.log", slot_errors(0, 10))
    assert current(rep) == []


def test_a_slot_error_that_outlives_the_race_is_a_slot_problem(tmp_path: Path) -> None:
    rep = report(tmp_path, "node1.postgres.log", slot_errors(0, 300))
    assert current(rep) == ["replication-slot-problem"]
    evidence = " ".join(rep.diagnoses[0].evidence)
    assert "x61 in a row over 5m00s" in evidence and "with no progress" in evidence


def test_the_replica_side_slot_error_ends_when_streaming_starts(tmp_path: Path) -> None:
    lines = [postgres(t, 900, "FATAL", 'could not start WAL streaming: ERROR:  replication slot "node3" does not exist')
             for t in (0, 5, 10)]
    lines.append(postgres(15, 900, "LOG", "started streaming WAL from primary at 0/4000000 on timeline 1"))
    rep = report(tmp_path, "node3.postgres.log", lines)
    assert current(rep) == []


def test_loop_wait_from_the_config_sets_the_window(tmp_path: Path) -> None:
    """Slot errors for 40 s: past 3 loops of the default 10 s, within 3 loops of a configured 30 s."""
    log = tmp_path / "node1.postgres.log"
    log.write_text("\n".join(slot_errors(0, 40)) + "\n")
    patterns = patterns_from()

    def persistent(loop_wait: float | None) -> bool:
        s = Scanner(patterns, engine="re", loop_wait=loop_wait, workers=1).scan([FileSource(str(log))])
        m = next(m for m in s.matches() if m["pattern"] == "slot-missing")
        assert m["persist"]["loop_seconds"] == (loop_wait or DEFAULT_LOOP_WAIT)
        return not m["benign"]

    assert persistent(None) and not persistent(30)


def test_parallel_ranges_count_runs_as_one_pass(tmp_path: Path) -> None:
    """Runs crossing the boundaries of the ranges several processes read merge as in one pass."""
    lines: list[str] = []
    for k in range(40):
        lines += waiting_loop(k * 400, 2 + k % 7) + clone_then_follow(k * 400 + 100)
        lines += slot_errors(k * 400 + 200, (k % 5) * 12)
    log = tmp_path / "mixed.log"
    log.write_text("\n".join(lines) + "\n")
    patterns = patterns_from()
    one = Scanner(patterns, engine="re", workers=1, block_size=2048).scan([FileSource(str(log))])
    two = Scanner(patterns, engine="re", workers=2, block_size=2048).scan([FileSource(str(log))])
    assert two.shared == [str(log)]
    assert two.matches() == one.matches()
    runs = next(m for m in one.matches() if m["pattern"] == "init-waiting-for-leader")["persist"]
    assert runs["runs"] == 40 and runs["run"]["count"] == 8


@pytest.mark.parametrize("spec,error", [("persist: {loops: 0}", "at least 1"), ("persist: {loop: 3}", "unknown"),
                                        ("persist: {with: nope}", "names no pattern"), ("persist: yes", "number")])
def test_a_bad_persist_spec_is_refused(spec: str, error: str) -> None:
    text = ("---\nid: x\ntitle: x\nseverity: warning\npatterns:\n"
            f"  - {{id: a, regex: 'b', {spec.replace(': ', ': ', 1)}}}\n---\n## Symptoms\n")
    with pytest.raises(PlaybookError, match=error):
        parse_playbook(text, "x.md")


def test_duration_text() -> None:
    assert [duration_text(s) for s in (0, 59.6, 370, 3720)] == ["0s", "1m00s", "6m10s", "1h02m"]


def test_pgdoctor_logs_takes_loop_wait_from_the_config(tmp_path: Path) -> None:
    """``-c patroni.yml`` with ``loop_wait: 30``: 40 s of slot errors are within 3 loops, not a problem."""
    example = Path(__file__).resolve().parents[2] / "examples" / "patroni.yml"
    config = tmp_path / "patroni.yml"
    config.write_text(example.read_text().replace("loop_wait: 10", "loop_wait: 30"))
    log = tmp_path / "node1.postgres.log"
    log.write_text("\n".join(slot_errors(0, 40)) + "\n")
    assert current(analyze_logs([FileSource(str(log))])) == ["replication-slot-problem"]
    rep = analyze_logs([FileSource(str(log))], config_path=str(config))
    assert current(rep) == []
    match = next(m for m in rep.facts.get("logs.matches") if m["pattern"] == "slot-missing")
    assert match["persist"]["loop_seconds"] == 30 and match["persist"]["loop_from"] == "config"


OLD_ETCD = [  # Patroni 1.x/2.x with python-etcd (the etcd v2 API), as it words an unreachable etcd
    "ERROR: Failed to get list of machines from http://10.0.0.11:2379/v2: MaxRetryError(\"HTTPConnectionPool("
    "host='10.0.0.11', port=2379): Max retries exceeded with url: /v2/machines (Caused by NewConnectionError("
    "'<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] "
    "Connection refused'))\")",
    "ERROR: Machines cache is empty, no machines to try.",
]


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_old_patroni_etcd_wording_under_every_prefix(tmp_path: Path, prefix: str) -> None:
    lines = [PREFIXES[prefix](patroni(t + i * 0.1, *OLD_ETCD[i].split(": ", 1))) for t in (0, 10, 20)
             for i in range(len(OLD_ETCD))]
    assert current(report(tmp_path, "patroni.log", lines))[:1] == ["dcs-unreachable"]


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_a_brief_wait_then_progress_is_silent_under_every_prefix(tmp_path: Path, prefix: str) -> None:
    lines = [PREFIXES[prefix](ln) for ln in waiting_loop(0, 2) + clone_then_follow(20)]
    assert current(report(tmp_path, "node2.patroni.log", lines)) == []
