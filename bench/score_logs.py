#!/usr/bin/env python3
"""How well ``pgdoctor logs`` names the cause: top-1, top-3 and false alarms over labelled logs.

Sets scored:

* ``sample_logs/`` (unless ``--no-samples``): each main sample is one case; its expected problem is the
  table ``EXPECTED`` of ``tests/unit/test_sample_logs.py`` (read from that file, not imported), None
  where the log shows nothing wrong.
* every CORPUS directory given: a folder per case with its log files and a ``label.yml`` holding
  ``expected: <problem-id>`` or ``expected: null`` (a healthy log); ``kind`` and ``format``, when
  present, give a breakdown (``bench/make_corpus.py`` writes such a corpus).

For each case the report's diagnoses are ranked as pgdoctor ranks them, current ones first, then
those it names as over (a log that goes on until the member is healthy again names its problem as
resolved). A problem case is a top-1 hit when its id is first, a top-3 hit when it is among the first
three; a case labelled null is a false alarm when pgdoctor reports any current diagnosis or any
warning or failing check.

By default each case is judged in this process through the same pipeline as the command
(``doctor.commands.logs.analyze_logs`` with the pure-Python engine; both engines give the same answers,
``tests/unit/test_log_parallel.py``) and its JSON is the one ``--format json`` writes; ``--subprocess``
runs ``pgdoctor logs --format json`` itself for every case (slower: a process per case).

    .venv/bin/python bench/score_logs.py                        # sample_logs only
    .venv/bin/python bench/score_logs.py /tmp/pgdoctor-corpus   # and a corpus
    .venv/bin/python bench/score_logs.py /tmp/pgdoctor-corpus --json --misses 20
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "sample_logs"
SAMPLE_TABLE = ROOT / "tests" / "unit" / "test_sample_logs.py"


@dataclass
class Case:
    name: str
    files: list[Path]
    expected: str | None
    kind: str = ""
    format: str = ""


@dataclass
class Result:
    case: str
    expected: str | None
    ranked: list[str]
    kind: str = ""
    format: str = ""
    error: str | None = None
    alarms: list[str] = field(default_factory=list)  # current diagnoses and warning/failing checks

    @property
    def top1(self) -> bool:
        return self.expected is not None and self.ranked[:1] == [self.expected]

    @property
    def top3(self) -> bool:
        return self.expected is not None and self.expected in self.ranked[:3]

    @property
    def false_alarm(self) -> bool:
        return self.expected is None and bool(self.alarms)


def sample_expectations(table: Path = SAMPLE_TABLE) -> dict[str, str | None]:
    """The ``EXPECTED`` dict literal of the sample-log test, read with ``ast`` (the test is not imported)."""
    tree = ast.parse(table.read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "EXPECTED" and node.value is not None:
            return dict(ast.literal_eval(node.value))
    raise ValueError(f"{table}: no EXPECTED table")


def sample_cases(directory: Path = SAMPLES) -> list[Case]:
    return [Case(name, [directory / name], expected, kind="problem" if expected else "healthy", format="lab")
            for name, expected in sorted(sample_expectations().items()) if (directory / name).exists()]


def corpus_cases(directory: Path) -> list[Case]:
    """One case per sub-folder that holds a ``label.yml``; a folder without one is not a case."""
    import yaml

    cases = []
    for case in sorted(p for p in directory.iterdir() if p.is_dir()):
        label_file = case / "label.yml"
        if not label_file.is_file():
            continue
        doc = yaml.safe_load(label_file.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict) or "expected" not in doc:
            raise ValueError(f"{label_file}: needs 'expected: <problem-id>' or 'expected: null'")
        files = sorted(f for f in case.iterdir() if f.is_file() and f.name != "label.yml"
                       and not f.name.startswith("."))
        expected = doc["expected"]
        cases.append(Case(case.name, files, None if expected in (None, "", "null") else str(expected),
                          kind=str(doc.get("kind") or ("problem" if expected else "healthy")),
                          format=str(doc.get("format") or "")))
    return cases


def report_json(files: list[Path], subprocess_mode: bool, engine: str) -> dict[str, Any]:
    """What ``pgdoctor logs --format json FILES`` writes for one case."""
    if subprocess_mode:
        proc = subprocess.run([sys.executable, "-m", "doctor", "logs", *map(str, files), "--format", "json"],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        if proc.returncode == 3:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "exit 3")
        return json.loads(proc.stdout)
    from doctor.commands.logs import analyze_logs
    from doctor.logscan.sources import FileSource
    from doctor.render.jsonout import render_json

    report = analyze_logs([FileSource(str(f)) for f in files], engine=engine)
    return json.loads(render_json(report.as_dict()))


def judge(case: Case, subprocess_mode: bool = False, engine: str = "re") -> Result:
    try:
        doc = report_json(case.files, subprocess_mode, engine)
    except Exception as exc:  # one broken case is a scored error, not the end of the run
        return Result(case.name, case.expected, [], case.kind, case.format, error=f"{type(exc).__name__}: {exc}")
    current = [str(d.get("id")) for d in doc.get("diagnoses") or []]
    over = [str(d.get("id")) for d in doc.get("resolved") or []]
    checks = [f"check {f.get('check') or f.get('id')}" for f in doc.get("findings") or []
              if f.get("status") in ("warn", "fail")]
    return Result(case.name, case.expected, list(dict.fromkeys(current + over)), case.kind, case.format,
                  alarms=current + checks)


def figures(results: Iterable[Result]) -> dict[str, Any]:
    """Counts and rates: problem cases (top-1, top-3), cases labelled null (false alarms), errors."""
    rs = list(results)
    problems = [r for r in rs if r.expected is not None]
    healthy = [r for r in rs if r.expected is None]

    def rate(n: int, d: int) -> float | None:
        return round(100.0 * n / d, 1) if d else None

    top1, top3, alarms = sum(r.top1 for r in problems), sum(r.top3 for r in problems), sum(r.false_alarm for r in healthy)
    return {"cases": len(rs), "problems": len(problems), "top1": top1, "top3": top3,
            "top1_pct": rate(top1, len(problems)), "top3_pct": rate(top3, len(problems)),
            "healthy": len(healthy), "false_alarms": alarms, "false_alarm_pct": rate(alarms, len(healthy)),
            "errors": sum(1 for r in rs if r.error)}


def score(sets: dict[str, list[Case]], subprocess_mode: bool = False, engine: str = "re") -> dict[str, Any]:
    """Every set judged: its figures, a breakdown by format and kind, and its misses."""
    out: dict[str, Any] = {}
    for name, cases in sets.items():
        results = [judge(c, subprocess_mode, engine) for c in cases]
        by: dict[str, Any] = {}
        for key in ("format", "kind"):
            values = sorted({getattr(r, key) for r in results if getattr(r, key)})
            if len(values) > 1:
                by[key] = {v: figures(r for r in results if getattr(r, key) == v) for v in values}
        misses = [asdict(r) | {"top1": r.top1, "top3": r.top3, "false_alarm": r.false_alarm} for r in results
                  if (r.expected is not None and not r.top1) or r.false_alarm or r.error]
        out[name] = {"figures": figures(results), "by": by, "misses": misses}
    return out


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def table(scored: dict[str, Any], misses: int = 0) -> str:
    head = f"{'set':<44} {'cases':>6} {'problems':>8} {'top-1':>14} {'top-3':>14} {'healthy':>7} {'false alarms':>14}"
    lines = [head, "-" * len(head)]

    def row(label: str, f: dict[str, Any]) -> str:
        return (f"{label:<44} {f['cases']:>6} {f['problems']:>8} {f['top1']:>6} {_pct(f['top1_pct']):>7} "
                f"{f['top3']:>6} {_pct(f['top3_pct']):>7} {f['healthy']:>7} {f['false_alarms']:>6} "
                f"{_pct(f['false_alarm_pct']):>7}" + (f"  ({f['errors']} errors)" if f["errors"] else ""))

    for name, s in scored.items():
        lines.append(row(name, s["figures"]))
        for key, groups in s["by"].items():
            for value, f in groups.items():
                lines.append(row(f"  {key} {value}", f))
        for m in s["misses"][:misses]:
            what = m["error"] or ("false alarm: " + ", ".join(m["alarms"][:3]) if m["false_alarm"]
                                  else f"expected {m['expected']}, got {', '.join(m['ranked'][:3]) or 'nothing'}")
            lines.append(f"    miss {m['case']}: {what}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="*", help="labelled corpus directories (a folder per case with label.yml)")
    ap.add_argument("--no-samples", action="store_true", help="leave sample_logs/ out")
    ap.add_argument("--json", action="store_true", help="print the figures (and every miss) as JSON")
    ap.add_argument("--subprocess", action="store_true", help="run `pgdoctor logs --format json` for every case")
    ap.add_argument("--engine", default="re", choices=("re", "hyperscan", "auto"), help="in-process engine")
    ap.add_argument("--misses", type=int, default=0, help="list this many misses per set under the table")
    args = ap.parse_args(argv)
    sets: dict[str, list[Case]] = {}
    if not args.no_samples:
        sets["sample_logs"] = sample_cases()
    for d in args.corpus:
        path = Path(d)
        if not path.is_dir():
            print(f"score_logs: {d} is not a directory", file=sys.stderr)
            return 3
        try:
            sets[str(path)] = corpus_cases(path)
        except ValueError as exc:
            print(f"score_logs: {exc}", file=sys.stderr)
            return 3
    scored = score(sets, args.subprocess, args.engine)
    print(json.dumps(scored, indent=2) if args.json else table(scored, args.misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
