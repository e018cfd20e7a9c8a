"""The log scorer (bench/score_logs.py) counts top-1, top-3 and false alarms as it says, on a tiny corpus.

This tests the scorer's arithmetic, not pgdoctor's quality: the cases are chosen so that each count is
known in advance (a case pgdoctor names, one labelled with another id, a healthy log that is not).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


score_logs = _load("score_logs")

MISMATCH = ("2026-11-26 06:0{s}:00,000 ERROR: Failed to get list of machines from http://127.0.0.1:2379/v2: "
            "EtcdException('Bad response : 404 page not found\\n')")


def _case(root: Path, name: str, expected: str | None, lines: list[str], kind: str = "") -> None:
    case = root / name
    case.mkdir(parents=True)
    (case / "patroni.log").write_text("\n".join(lines) + "\n")
    label = "expected: null\n" if expected is None else f"expected: {expected}\n"
    (case / "label.yml").write_text(label + (f"kind: {kind}\n" if kind else ""))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    lines = [MISMATCH.format(s=s) for s in range(4)] + [
        f"2026-11-26 06:0{s}:05,000 INFO: waiting on etcd" for s in range(4)]
    _case(tmp_path, "a-named", "dcs-api-mismatch", lines, kind="problem")
    _case(tmp_path, "b-other-id", "system-id-mismatch", lines, kind="problem")  # pgdoctor says dcs-api-mismatch
    _case(tmp_path, "c-healthy-but-alarmed", None, lines, kind="healthy")
    _case(tmp_path, "d-healthy", None, ["2026-11-26 06:00:00,000 INFO: no action. I am (node1), the leader with the lock"],
          kind="healthy")
    (tmp_path / "not-a-case").mkdir()  # no label.yml: not scored
    return tmp_path


def test_scorer_counts_top1_top3_and_false_alarms(corpus: Path) -> None:
    cases = score_logs.corpus_cases(corpus)
    assert [c.name for c in cases] == ["a-named", "b-other-id", "c-healthy-but-alarmed", "d-healthy"]
    scored = score_logs.score({"tiny": cases})["tiny"]
    f = scored["figures"]
    assert (f["cases"], f["problems"], f["healthy"]) == (4, 2, 2)
    assert (f["top1"], f["top3"], f["false_alarms"], f["errors"]) == (1, 1, 1, 0)
    assert (f["top1_pct"], f["top3_pct"], f["false_alarm_pct"]) == (50.0, 50.0, 50.0)
    assert {m["case"] for m in scored["misses"]} == {"b-other-id", "c-healthy-but-alarmed"}
    assert scored["by"]["kind"]["healthy"]["false_alarms"] == 1


def test_scorer_cli_prints_a_table_and_json(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert score_logs.main([str(corpus), "--no-samples", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[str(corpus)]["figures"]["top1"] == 1
    assert score_logs.main([str(corpus), "--no-samples", "--misses", "5"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "miss b-other-id: expected system-id-mismatch, got dcs-api-mismatch" in out


def test_a_label_without_expected_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _case(tmp_path, "x", "dcs-api-mismatch", ["x"])
    (tmp_path / "x" / "label.yml").write_text("kind: problem\n")
    assert score_logs.main([str(tmp_path), "--no-samples"]) == 3
    assert "needs 'expected" in capsys.readouterr().err


def test_the_sample_table_is_read_from_the_sample_test() -> None:
    expected = score_logs.sample_expectations()
    assert expected["initialize-key-stuck.patroni.log"] == "initialize-key-stuck"
    assert expected["healthy.bootstrap.patroni.log"] is None
