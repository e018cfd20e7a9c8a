"""Property tests on the inputs a stranger controls: a patroni.yml, a bundle (or bare facts.json)
given to ``analyze``, and the values a fix command is built from.

Whatever the input: no traceback and no internal error, an exit code in 0-3, a refusal in one
line, valid JSON with ``--format json``, a finding (not silence) for a config that does not parse,
and no value that adds a shell operator or expansion to a fix command. A tampered facts snapshot
may leave a check unable to judge (its ``error`` finding); the command itself must not fail. Seeded and bounded
(tests/fuzz/fuzz_support.py); ``bench/fuzz.py`` runs the same strategies longer, with figures.
"""

from __future__ import annotations

import json

import pytest
import yaml
from fuzz_support import (
    assert_clean,
    assert_fix_safe,
    bundle_bytes,
    config_bytes,
    facts_mutations,
    fuzz_settings,
    invoke,
    judge_config,
    set_path,
)
from hypothesis import given

from doctor.facts import Facts
from doctor.pipeline import FULL_PROFILES, analyze


@fuzz_settings(150)
@given(data=config_bytes())
def test_any_config_gives_findings_or_a_one_line_refusal(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "patroni.yml"
    path.write_bytes(data)
    doc = judge_config(str(path))
    if doc is None:
        return  # refused in one line (judge_config asserts it)
    statuses = {f["check"]: f["status"] for f in doc["findings"]}
    assert "error" not in statuses.values(), doc["findings"]
    try:
        parsed = yaml.safe_load(data.decode("utf-8"))
    except Exception:  # any reason it does not load: pgdoctor must say so
        parsed = None
    if not isinstance(parsed, dict):
        assert "fail" in statuses.values(), (data[:200], doc["findings"])


@fuzz_settings(120)
@given(data=bundle_bytes())
def test_any_bundle_is_analyzed_or_refused_in_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bundle") / "b.tar.gz"
    path.write_bytes(data)
    report = assert_clean(invoke("analyze", str(path), "--format", "json"), "json", check_errors_ok=True)
    if report is not None:
        assert report["command"] in ("analyze", "cluster") and isinstance(report["diagnoses"], list)


@pytest.mark.parametrize("fmt", ["text", "html"])
@fuzz_settings(25)
@given(data=bundle_bytes())
def test_any_bundle_renders_in_every_format(tmp_path_factory, fmt, data):
    path = tmp_path_factory.mktemp("bundle") / "b.tar.gz"
    path.write_bytes(data)
    assert_clean(invoke("analyze", str(path), "--format", fmt), fmt, check_errors_ok=True)


def _report(doc: dict) -> dict:
    return json.loads(json.dumps(analyze(Facts(doc), command="analyze", profiles=FULL_PROFILES).as_dict(),
                                 default=str))


@fuzz_settings(120)
@given(case=facts_mutations())
def test_a_hostile_fact_never_adds_a_shell_operator_to_a_fix(case):
    doc, path, value = case
    try:
        hostile = _report(set_path(doc, path, value))
    except Exception as exc:  # the version check is the one refusal a snapshot may get
        from doctor.facts import FactsVersionError
        assert isinstance(exc, FactsVersionError), repr(exc)
        return
    plain = _report(set_path(doc, path, "zzplainzz"))
    assert hostile["exit_code"] in (0, 1, 2, 3)
    assert_fix_safe(plain, hostile)


# What the fuzzing above found, kept as plain cases: a value of another type than the collector writes
# (a tampered bundle) used to end the whole command ("internal error") or a check ("check raised").
TAMPERED = [
    (("dcs", "members", 0, "name"), ["node1"]),
    (("patroni_api", "cluster", "body", "members", 0, "name"), {"x": 1}),
    (("system", "datadir", "entry_count"), "127.0.0.1"),
    (("system", "datadir", "entries"), [["x"], 3]),
    (("dcs", "members", 0, "timeline"), "; rm -rf /"),
    (("dcs", "endpoints", 0, "latency_ms"), "slow"),
    (("system", "disk", 0, "mountpoint"), ["x"]),
    (("system", "disk", 0, "total"), {}),
    (("config", "yaml_error", "line"), "; rm -rf /"),
]


def _fixture_with(path: tuple) -> dict | None:
    from fuzz_support import fixture_names, leaf_paths, read_fixture
    for name in fixture_names():
        doc = read_fixture(name)
        if any(p[:len(path)] == path for p in leaf_paths(doc)):
            return doc
    return None


@pytest.mark.parametrize("path,value", TAMPERED, ids=[".".join(map(str, p)) for p, _ in TAMPERED])
def test_a_tampered_fact_is_judged_without_failing(path, value):
    doc = _fixture_with(path)
    assert doc is not None, path
    report = _report(set_path(doc, path, value))
    errors = [(f["check"], f["summary"]) for f in report["findings"] if f["status"] == "error"]
    assert not errors, errors
