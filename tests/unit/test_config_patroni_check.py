"""config.patroni with Patroni's validator output as a fact, and with odd snapshots."""

from __future__ import annotations

from pathlib import Path

from doctor.collect import CollectOptions
from doctor.facts import Facts
from doctor.pipeline import analyze, load_config_into
from doctor.redact import Redactor

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patroni.yml"


def _facts(validate: dict | None = None, domains: dict | None = None) -> Facts:
    facts = Facts({"version": 1})
    load_config_into(facts, CollectOptions(config_path=str(EXAMPLE)), Redactor())
    facts.data["config"]["schema"] = []  # judged on this machine: keep the example's bin_dir out of it
    if validate is not None:
        facts.data["config"]["validate"] = validate
    for key, value in (domains or {}).items():
        facts.set(key, value)
    return facts


def _finding(facts: Facts):
    report = analyze(facts, only=["config.patroni"])
    return next(f for f in report.findings if f.check == "config.patroni")


def test_an_objection_of_patroni_alone_fails_and_is_quoted():
    line = "postgresql.bin_dir  does not contain 'pg_controldata' in '/usr/lib/postgresql/15/bin'"
    f = _finding(_facts({"available": True, "exit_code": 1, "problems": [line]}))
    assert f.status == "fail"
    assert "Patroni's validator rejects it: postgresql.bin_dir does not contain 'pg_controldata'" in f.summary
    assert f.values["patroni_objections"] == [line]


def test_objections_about_this_host_are_evidence_not_config_problems():
    lines = ["etcd3.hosts.0 127.0.0.11:2379 didn't pass validation: 127.0.0.11:2379 is not reachable",
             "postgresql.data_dir /var/tmp/pgdoctor-example/data didn't pass validation: "
             "doesn't look like a valid data directory"]
    f = _finding(_facts({"available": True, "exit_code": 1, "problems": lines}))
    assert f.status == "ok", f.summary
    assert any(e.startswith("not a config problem (whether the DCS answers") for e in f.evidence)
    assert any(e.startswith("not a config problem (what the data directory holds") for e in f.evidence)


def test_a_patroni_traceback_is_quoted_by_its_exception():
    lines = ["Traceback (most recent call last):", '  File "/opt/venv/bin/patroni", line 8, in <module>',
             "yaml.scanner.ScannerError: while scanning for the next token",
             "found character '\\t' that cannot start any token", '  in "/etc/patroni.yml", line 7, column 1']
    f = _finding(_facts({"available": True, "exit_code": 1, "problems": lines}))
    assert f.status == "fail"
    assert ("yaml.scanner.ScannerError: while scanning for the next token found character '\\t' that cannot start "
            "any token in \"/etc/patroni.yml\", line 7, column 1") in f.summary


def test_patroni_content_with_the_config_is_ok():
    f = _finding(_facts({"available": True, "exit_code": 0, "problems": []}))
    assert f.status == "ok" and "patroni --validate-config --ignore-listen-port: no problems" in f.evidence


def test_timing_from_the_dcs_that_is_not_a_number_is_a_problem_not_a_crash():
    f = _finding(_facts(domains={"dcs": {"config": {"ttl": float("inf"), "loop_wait": 10, "retry_timeout": 10}}}))
    assert f.status == "fail" and "are not numbers" in f.summary


def test_a_redacted_endpoint_url_with_credentials_is_read_without_crashing():
    facts = _facts()
    facts.data["config"]["data"]["etcd3"] = {"url": "http://root:[REDACTED:password:0a1b2c3d]@10.1.2.3:2379"}
    f = _finding(facts)
    assert f.status == "fail", f.summary  # the cluster spans hosts: 127.0.0.11 cannot be reached from 10.1.2.3
    assert "uses the loopback address 127.0.0.11, but the cluster spans hosts" in f.summary


def test_a_snapshot_without_the_schema_fact_is_judged_from_its_copy():
    facts = _facts()
    del facts.data["config"]["schema"]
    facts.data["config"]["data"]["bootstrap"]["dcs"]["loop_wait"] = 0
    f = _finding(facts)
    assert f.status == "fail" and "bootstrap.dcs.loop_wait must be an integer >= 1 (it is 0)" in f.summary
