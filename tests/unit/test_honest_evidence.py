"""An evidence line states only what was read.

For every facts fixture of a cluster, each source of facts is removed in turn (the leader's PostgreSQL,
a member's REST /patroni, a member's PostgreSQL, the DCS keys) and every check runs on what is left. No
evidence line may then claim a value from the removed source: a line that names it must say it was not
read. And no check may raise because a source is missing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from doctor.facts import Facts
from doctor.pipeline import analyze
from tests.unit.conftest import read_fixture

FIXTURES = Path(__file__).parent / "fixtures"
NOT_READ = re.compile(r"not read|does not answer|did not answer|could not be read|not queried")


def _cluster_fixtures() -> list[str]:
    out = []
    for f in sorted(FIXTURES.glob("*.json")):
        data = read_fixture(f)
        if (data.get("dcs") or {}).get("members"):
            out.append(f.name)
    return out


def _evidence(data: dict[str, Any]) -> list[str]:
    report = analyze(Facts(data), profiles=("run", "replication"))
    errors = [f"{f.check}: {f.summary}" for f in report.findings if f.status == "error"]
    assert not errors, errors
    return [e for f in report.findings for e in f.evidence]


def _leader(data: dict[str, Any]) -> str | None:
    return (data.get("dcs") or {}).get("leader")


def _names(data: dict[str, Any]) -> list[str]:
    return [m["name"] for m in data["dcs"]["members"] if m.get("name")]


# each: (what is removed, how, the claims that must not appear without "not read")
Removal = tuple[str, Callable[[dict[str, Any]], None], list[re.Pattern]]


def removals(data: dict[str, Any]) -> list[Removal]:
    out: list[Removal] = []
    leader = _leader(data)
    if leader:
        def refuse_leader(d: dict[str, Any], name: str = leader) -> None:
            pg = d.setdefault("replication", {}).setdefault("members", {}) if isinstance(d.get("replication"), dict) \
                else d.setdefault("replication", {"members": {}})["members"]
            pg[name] = {"member": name, "host": "127.0.0.1", "port": 5432, "reachable": False,
                        "error": {"kind": "refused", "message": "connection refused"}}
        out.append((f"{leader}'s PostgreSQL", refuse_leader,
                    [re.compile(rf"pg_stat_replication on {re.escape(leader)}"),
                     re.compile(rf"on {re.escape(leader)}: synchronous_standby_names"),
                     re.compile(rf"on {re.escape(leader)}: slot "),
                     re.compile(rf"a connection to {re.escape(leader)}'s PostgreSQL .* worked")]))
    answers = (data.get("patroni_api") or {}).get("members") or {}
    for name, answer in answers.items():
        url = answer.get("url") if isinstance(answer, dict) else None

        def drop_rest(d: dict[str, Any], name: str = name) -> None:
            d["patroni_api"]["members"].pop(name, None)
            if d["patroni_api"].get("name") == name:
                d["patroni_api"].pop("patroni", None)
        claims = [re.compile(rf"{re.escape(name)}'s REST /patroni replication\[\]"),
                  re.compile(rf"{re.escape(name)} REST /patroni")]
        if url:
            claims.append(re.compile(rf"\(REST {re.escape(url)}"))
        out.append((f"{name}'s REST /patroni", drop_rest, claims))
    for name in (data.get("replication") or {}).get("members") or {}:
        def drop_pg(d: dict[str, Any], name: str = name) -> None:
            d["replication"]["members"].pop(name, None)
        n = re.escape(name)
        out.append((f"{name}'s PostgreSQL facts", drop_pg,
                    [re.compile(rf"pg_stat_wal_receiver on {n}: status"), re.compile(rf"pg_settings on {n} where"),
                     re.compile(rf"a connection to {n}'s PostgreSQL .* worked"),
                     re.compile(rf"pg_stat_replication on {n}:? (?:for|state|no row)")]))

    def drop_keys(d: dict[str, Any]) -> None:
        dcs = d["dcs"]
        for k in list(dcs):
            if k not in ("section", "prefix", "endpoint_urls", "endpoints", "quorum"):
                dcs.pop(k)
        dcs["keys_read"] = False
        dcs["keys_error"] = {"kind": "timeout", "message": "no key read"}
    prefix = re.escape((data.get("dcs") or {}).get("prefix") or "/service/")
    out.append(("the DCS keys", drop_keys, [re.compile(rf"{prefix}leader = "), re.compile(r"DCS member key"),
                                            re.compile(rf"{prefix}(?:failover|config) in the DCS"),
                                            re.compile(r"member keys in the DCS: ")]))
    return out


CASES = [(name, what) for name in _cluster_fixtures()
         for what, _, _ in removals(read_fixture(FIXTURES / name))]


@pytest.mark.parametrize("fixture,source", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_no_evidence_line_claims_a_value_from_a_removed_source(fixture, source):
    original = read_fixture(FIXTURES / fixture)
    what, remove, claims = next(r for r in removals(original) if r[0] == source)
    data = copy.deepcopy(original)
    remove(data)
    bad = [line for line in _evidence(data) for c in claims if c.search(line) and not NOT_READ.search(line)]
    assert not bad, f"with {what} removed, evidence still claims it: {bad}"


def test_the_claims_are_made_when_the_source_is_there():
    """The patterns above are not vacuous: with every source present, the same checks make such claims."""
    lines = _evidence(read_fixture(FIXTURES / "replica-not-streaming.json"))
    assert any(re.search(r"pg_stat_replication on node2: state", x) for x in lines), lines
    lines = _evidence(read_fixture(FIXTURES / "member-down.peer-stopped.json"))
    assert any("DCS member key" in x for x in lines), lines


def test_an_unread_walsender_list_is_named_with_the_reason():
    """Older Patroni (replicas 'running'), the leader's PostgreSQL refused and its REST answer gone: nobody
    is called not streaming from a list that was never read, and the evidence says why it was not."""
    data = read_fixture(FIXTURES / "healthy.peer-patroni-3.0.0.json")
    data["replication"]["members"]["srv1"]["error"] = {"kind": "refused", "message": "connection refused"}
    del data["patroni_api"]["members"]["srv1"]["body"]["replication"]
    del data["patroni_api"]["members"]["srv1"]["body"]["xlog"]
    report = analyze(Facts(data), profiles=("run", "replication"))
    ids = {d.id for d in report.diagnoses}
    assert "replica-not-streaming" not in ids and "no-failover-candidate" not in ids, ids
    # the leader's PostgreSQL refused: that is the leader's problem, with its evidence
    lead = next(d for d in report.diagnoses if d.id == "leader-postgres-down")
    assert any("a connection to srv1's PostgreSQL at 10.20.199.3:5432 failed (refused" in e for e in lead.evidence)
