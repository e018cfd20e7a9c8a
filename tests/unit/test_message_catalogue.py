"""The message catalogue: every message Patroni, its DCS clients and PostgreSQL print is mapped, and pgdoctor
recognises what the mapping claims (a problem, a timeline event, or nothing to report).

Reads only the committed doctor/logscan/catalogue/*.tsv and mapping.yml (no network)."""

from __future__ import annotations

import collections

import pytest

from doctor.logscan import patterns_from
from doctor.logscan.catalogue import as_log_line, load_catalogue, load_mapping, required
from doctor.logscan.engines import make_engine
from doctor.logscan.scan import Scanner
from doctor.logscan.sources import StdinSource, as_stream
from doctor.playbooks import load_playbooks

CATALOGUE = load_catalogue()
MAPPING = load_mapping()
BY_KEY = {(m.source, m.message): m for m in MAPPING}
PATTERNS = patterns_from()
ENGINE = make_engine([p.regex for p in PATTERNS], "auto")
EVENTS = {p.event for p in PATTERNS if p.event}


def _scan(line: str) -> Scanner:
    return Scanner(PATTERNS, engine=ENGINE).scan([StdinSource(as_stream((line + "\n").encode("utf-8")))])


def _problems(s: Scanner) -> set[str]:
    """Problems the line is evidence of (a pattern that is not benign; its count threshold aside)."""
    return {m["playbook"] for m in s.matches() if m.get("quiet_reason") != "benign"}


def _events(s: Scanner) -> set[str]:
    return {str(e["event"]) for e in s.events()}


def _cases(target: str) -> list:
    out = []
    seen = set()
    for row in CATALOGUE:
        mapped = BY_KEY.get((row.source, row.message))
        if mapped is None or mapped.target != target:
            continue
        line = as_log_line(row, mapped.args, error=target == "problem")
        if (line, mapped.value) in seen:
            continue
        seen.add((line, mapped.value))
        out.append(pytest.param(line, mapped.value, id=f"{row.source}:{row.message[:60]}"))
    return out


def test_catalogue_is_there_and_covers_every_source():
    sources = collections.Counter(m.source for m in CATALOGUE)
    assert {"patroni", "python-etcd", "urllib3", "postgres", "pg_basebackup", "pg_rewind"} <= set(sources), sources
    assert sources["patroni"] >= 500 and sources["postgres"] >= 500
    versions = {v for m in CATALOGUE if m.source == "patroni" for v in m.versions}
    assert {v.rsplit(".", 1)[0] for v in versions} >= {"2.1", "3.0", "3.2", "3.3", "4.0", "4.1"}
    modules = {o for m in CATALOGUE if m.source == "patroni" for o in m.origins}
    for dcs in ("etcd", "etcd3", "consul", "zookeeper", "kubernetes", "raft"):
        assert any(o.startswith(f"patroni.dcs.{dcs}") for o in modules), dcs
    for tool in ("postgres", "pg_basebackup", "pg_rewind"):
        pg = {v for m in CATALOGUE if m.source == tool for v in m.versions}
        assert {"15", "18"} <= pg, (tool, pg)


def test_every_required_message_is_mapped():
    missing = sorted({(m.source, m.message) for m in CATALOGUE if required(m) and (m.source, m.message) not in BY_KEY})
    assert not missing, f"{len(missing)} catalogue messages have no mapping, e.g.:\n" + "\n".join(
        f"  {s}: {t!r}" for s, t in missing[:40])


def test_mapping_names_known_ids_and_only_catalogue_messages():
    books = load_playbooks()
    known = {(m.source, m.message) for m in CATALOGUE}
    dupes = [k for k, n in collections.Counter((m.source, m.message) for m in MAPPING).items() if n > 1]
    assert not dupes, f"mapped twice: {dupes[:10]}"
    stale = [(m.source, m.message) for m in MAPPING if (m.source, m.message) not in known]
    assert not stale, f"mapping entries that are not in the catalogue: {stale[:10]}"
    bad = [(m.message, m.value) for m in MAPPING if m.target == "problem" and m.value not in books]
    assert not bad, f"unknown problem ids: {bad[:10]}"
    bad = [(m.message, m.value) for m in MAPPING if m.target == "event" and m.value not in EVENTS]
    assert not bad, f"unknown timeline events (known: {sorted(EVENTS)}): {bad[:10]}"
    assert all(m.value.strip() for m in MAPPING if m.target == "benign"), "a benign message needs its reason"


@pytest.mark.parametrize("line,problem", _cases("problem"))
def test_problem_messages_are_recognised(line, problem):
    found = _problems(_scan(line))
    assert problem in found, f"{line!r} should reveal {problem}, pgdoctor sees {sorted(found) or 'nothing'}"


@pytest.mark.parametrize("line,event", _cases("event"))
def test_event_messages_mark_the_timeline(line, event):
    s = _scan(line)
    assert event in _events(s), f"{line!r} should mark '{event}', pgdoctor sees {sorted(_events(s)) or 'nothing'}"
    assert not _problems(s), f"{line!r} is an event, not a problem: {sorted(_problems(s))}"


@pytest.mark.parametrize("line,reason", _cases("benign"))
def test_benign_messages_raise_no_problem(line, reason):
    found = _problems(_scan(line))
    assert not found, f"{line!r} is benign ({reason}) but pgdoctor reports {sorted(found)}"
