"""The engine: isolation of checks, skips on missing facts, plugins, diagnosis merging and ranking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from doctor import engine
from doctor.diagnosis import diagnose, verdict_of
from doctor.engine import CheckContext, Finding, Verdict, run_checks
from doctor.facts import Facts, FactsVersionError
from doctor.model.node import NodeView
from doctor.playbooks import load_playbooks

REPO = str(Path(__file__).resolve().parents[2])


def _ctx(data=None):
    facts = Facts(data or {"version": 1})
    return CheckContext(facts=facts, node=NodeView(), settings={})


def test_raising_check_becomes_error_finding_and_run_goes_on():
    @engine.check("test.raises", "always raises", "config-invalid", profiles=("unit-test",))
    def _boom(ctx):
        raise RuntimeError("kaboom")

    @engine.check("test.fine", "always fine", "config-invalid", profiles=("unit-test",))
    def _fine(ctx):
        return Verdict("ok", "fine")

    try:
        findings = run_checks(_ctx(), profiles=("unit-test",))
        by_id = {f.check: f for f in findings}
        assert by_id["test.raises"].status == "error"
        assert "RuntimeError: kaboom" in by_id["test.raises"].summary
        assert by_id["test.fine"].status == "ok"
    finally:
        engine._REGISTRY.pop("test.raises", None)
        engine._REGISTRY.pop("test.fine", None)


def test_missing_facts_skip_with_reason():
    @engine.check("test.needs", "needs dcs", "dcs-unreachable", profiles=("unit-test",), needs=("dcs.endpoints",))
    def _needs(ctx):
        raise AssertionError("must not run")

    try:
        f = run_checks(_ctx(), profiles=("unit-test",))[0]
        assert f.status == "skip" and "dcs.endpoints" in f.summary
        f = run_checks(_ctx({"version": 1, "dcs": {"error": {"kind": "timeout", "message": "deadline"}}}),
                       profiles=("unit-test",))[0]
        assert f.status == "skip" and "timeout" in f.summary
    finally:
        engine._REGISTRY.pop("test.needs", None)


def test_diagnosis_merges_findings_and_log_matches_of_one_playbook():
    books = load_playbooks()
    findings = [
        Finding("a.one", "t", "fail", "first summary", "port-in-use", evidence=["e1"], values={"port": 8008, "pid": 1}),
        Finding("a.two", "t", "warn", "second summary", "port-in-use", evidence=["e2"]),
        Finding("b.one", "t", "fail", "yaml broken", "config-invalid-yaml", values={"line": 3, "column": 1}),
        Finding("c.one", "t", "fail", "rogue postmaster", "postgres-outside-patroni", values={"pid": 7}),
    ]
    logs = [{"playbook": "port-in-use", "pattern": "p", "source": "patroni", "count": 12,
             "sample": "Can't start; there is already a node named 'node1' running", "groups": {}}]
    ds = diagnose(findings, books, NodeView().template_values(), logs)
    # cause before consequence: the YAML error first; port-in-use is explained by the rogue postmaster
    assert [d.id for d in ds] == ["config-invalid-yaml", "postgres-outside-patroni", "port-in-use"]
    port = ds[2]
    assert port.status == "fail" and port.summary == "first summary"
    assert port.checks == ["a.one", "a.two"]
    assert any("x12" in e and "already a node named" in e for e in port.evidence)
    assert port.caused_by == ["postgres-outside-patroni"]


def test_benign_log_matches_never_become_diagnoses():
    ds = diagnose([], load_playbooks(), {}, [{"playbook": "port-in-use", "benign": True, "count": 3, "sample": "x"}])
    assert ds == []


def test_verdict_and_exit_codes():
    def mk(s):
        return Finding("c", "t", s, "x", None)
    assert verdict_of([mk("ok")], []) == ("ok", 0)
    assert verdict_of([mk("ok"), mk("warn")], []) == ("warn", 1)
    assert verdict_of([mk("warn"), mk("fail")], []) == ("fail", 2)
    assert verdict_of([mk("error")], []) == ("error", 3)
    assert verdict_of([mk("error"), mk("fail")], []) == ("fail", 2)


def test_facts_version_is_checked():
    with pytest.raises(FactsVersionError, match="newer pgdoctor"):
        Facts.from_json('{"version": 99}')
    with pytest.raises(FactsVersionError, match="not a pgdoctor facts file"):
        Facts.from_json("garbage")
    assert Facts.from_json('{"version": 1, "x": {"y": 2}}').get("x.y") == 2


def test_every_check_has_a_playbook():
    books = load_playbooks()
    missing = [c.id for c in engine.load_checks().values() if c.playbook not in books]
    assert missing == []


def test_design_problem_ids_have_playbooks():
    """The foundation's problem ids all have a playbook with the four sections."""
    books = load_playbooks()
    for pid in ("config-invalid-yaml", "config-invalid", "datadir-permissions", "datadir-not-empty", "port-in-use",
                "postgres-outside-patroni", "postmaster-pid-stale", "patroni-not-running", "disk-full"):
        book = books[pid]
        for section in ("symptoms", "cause", "fix", "verify"):
            assert book.section(section).strip(), (pid, section)


def test_third_party_check_is_picked_up_through_entry_point(tmp_path):
    """A real distribution on sys.path with a pgdoctor.checks entry point registers its check."""
    pkg = tmp_path / "acme_checks.py"
    pkg.write_text(textwrap.dedent('''
        from doctor.engine import check, fail

        @check("acme.always", "acme house rule", "config-invalid", profiles=("run",))
        def acme(ctx):
            return fail("acme says the house rule is broken")
    '''))
    dist = tmp_path / "acme_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pgdoctor.checks]\nacme = acme_checks\n")
    code = ("import json, sys; from doctor.engine import load_checks; r = load_checks(); "
            "print(json.dumps({k: v.origin for k, v in r.items() if k.startswith('acme')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert '"acme.always": "acme_checks"' in out.stdout


def test_broken_plugin_is_an_error_finding_not_a_crash(tmp_path, monkeypatch):
    dist = tmp_path / "broken_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pgdoctor.checks]\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    findings = run_checks(_ctx(), profiles=("nothing",))
    assert any(f.check == "plugin.broken" and f.status == "error" for f in findings)


def test_log_only_problem_that_the_live_check_clears_is_resolved_not_failing():
    books = load_playbooks()
    findings = [Finding("ports.in-use", "t", "ok", "free", "port-in-use")]
    logs = [{"playbook": "port-in-use", "pattern": "p", "source": "patroni", "count": 4, "first": "06:00", "last": "06:05",
             "sample": "Can't start; there is already a node named 'node1' running", "groups": {}}]
    ds = diagnose(findings, books, NodeView().template_values(), logs)
    assert len(ds) == 1 and ds[0].resolved and ds[0].status == "warn"
    assert ds[0].summary.startswith("resolved now")
    assert verdict_of(findings, ds) == ("ok", 0)
    # Without a live check saying ok, the same log match is a current problem.
    ds = diagnose([], books, NodeView().template_values(), logs)
    assert not ds[0].resolved and ds[0].status == "fail"
    assert verdict_of([], ds) == ("fail", 2)


def test_log_only_problem_quiet_for_longer_than_the_window_is_over():
    books = load_playbooks()
    logs = [{"playbook": "leader-lock-lost", "pattern": "p", "source": "patroni", "count": 2, "first": "05:00",
             "last": "05:01", "age_seconds": 3000.0, "sample": "lost the lock", "groups": {}}]
    ds = diagnose([], books, NodeView().template_values(), logs)
    assert ds[0].resolved and "not seen in the last 50 min" in ds[0].summary
    assert verdict_of([], ds) == ("ok", 0)
    logs[0]["age_seconds"] = 20.0
    ds = diagnose([], books, NodeView().template_values(), logs)
    assert not ds[0].resolved and ds[0].status == "fail"


def test_docs_list_every_problem_id():
    text = (Path(REPO) / "docs" / "problem-ids.md").read_text()
    missing = [pid for pid in load_playbooks() if f"| `{pid}` |" not in text]
    assert missing == [], f"add these to docs/problem-ids.md: {missing}"


def test_fix_commands_have_no_literal_placeholders():
    """A command block must be copy-pasteable: values come from templates, never `<something>` to edit by hand."""
    import re

    from doctor.playbooks import CODE_RE

    found = []
    for pid, book in load_playbooks().items():
        for block in CODE_RE.findall(book.section("fix")):
            found += [(pid, m.group(0)) for m in re.finditer(r"<[a-z][a-z _'-]*>", block)]
    assert found == []


def test_ignore_demotes_an_ignored_checks_failures_only():
    """As kubeadm's --ignore-preflight-errors: by check or problem id, any case, or 'all'; the finding
    stays in the report as a warning marked ignored; other statuses and other checks are untouched."""
    @engine.check("test.broken", "always fails", "port-in-use", profiles=("unit-test",))
    def _broken(ctx):
        return [Verdict("fail", "port 8008 taken"), Verdict("ok", "port 5432 free")]

    @engine.check("test.other", "fails too", "config-invalid", profiles=("unit-test",))
    def _other(ctx):
        return Verdict("fail", "bad config")

    @engine.check("test.raises2", "raises", "port-in-use", profiles=("unit-test",))
    def _raises(ctx):
        raise RuntimeError("kaboom")

    def statuses(ignore):
        return [(f.check, f.status, f.ignored) for f in run_checks(_ctx(), profiles=("unit-test",), ignore=ignore)]

    try:
        assert statuses(()) == [("test.broken", "fail", False), ("test.broken", "ok", False),
                                ("test.other", "fail", False), ("test.raises2", "error", False)]
        for ignore in (["TEST.BROKEN"], ["Port-In-Use"]):
            assert statuses(ignore) == [("test.broken", "warn", True), ("test.broken", "ok", False),
                                        ("test.other", "fail", False), ("test.raises2", "error", False)], ignore
        assert [s for _, s, _ in statuses(["all"])] == ["warn", "ok", "warn", "error"]
        demoted = run_checks(_ctx(), profiles=("unit-test",), ignore=["test.other"])
        assert demoted[2].as_dict()["ignored"] is True and "ignored" not in demoted[0].as_dict()
    finally:
        for cid in ("test.broken", "test.other", "test.raises2"):
            engine._REGISTRY.pop(cid, None)


def test_diagnosis_steps_group_fill_and_rank():
    from doctor.diagnosis import fill_values, group_by_playbook, link_causes, rank, resolve

    books = load_playbooks()
    findings = [Finding("a", "t", "warn", "w", "port-in-use", values={"port": 1}),
                Finding("b", "t", "fail", "f", "port-in-use", values={"port": 2}),
                Finding("c", "t", "ok", "fine", "config-invalid")]
    logs = [{"playbook": "port-in-use", "pattern": "p", "groups": {"port": 3, "pid": 9}},
            {"playbook": "port-in-use", "benign": True, "pattern": "q"}]
    groups = group_by_playbook(findings, logs, books, {})
    assert [(g.playbook, [f.check for f in g.findings], len(g.logs)) for g in groups] == [("port-in-use", ["b", "a"], 1)]
    # a finding's value beats a log line's, which beats the node's; the most severe finding wins
    values = fill_values(groups[0], books["port-in-use"], {"port": 0, "scope": "main"})
    assert values["port"] == 2 and values["pid"] == 9 and values["scope"] == "main"
    assert not resolve(groups[0], books["port-in-use"], {"port-in-use"}, logs, 600).resolved  # a live finding
    only_logs = group_by_playbook([], logs, books, {})[0]
    assert resolve(only_logs, books["port-in-use"], {"port-in-use"}, logs, 600).resolved  # live check passes now
    ds = diagnose([Finding("x", "t", "fail", "p", "port-in-use"), Finding("y", "t", "fail", "r", "postgres-outside-patroni")],
                  books, {})
    for d in ds:
        d.caused_by.clear()
    link_causes(ds, books)
    assert {d.id: d.caused_by for d in ds} == {"postgres-outside-patroni": [], "port-in-use": ["postgres-outside-patroni"]}
    assert [d.id for d in rank(sorted(ds, key=lambda d: d.id, reverse=True))] == ["postgres-outside-patroni",
                                                                               "port-in-use"]
