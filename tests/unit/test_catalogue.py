"""The catalogue: from every problem id to everything that belongs to it, found by name.

Driven by the registries (the playbooks in playbooks_md/, the checks, the lab's faults), not by a
hand-kept table. For every playbook ``<id>``:

- it has the four sections Symptoms, Cause, Fix, Verify;
- a registered check names it as its playbook, or it has log patterns;
- a facts fixture ``tests/unit/fixtures/<id>[.<variant>].json`` whose analysis reports ``<id>`` (a fail or
  warn finding with that playbook, or a diagnosis), or a real sample log ``sample_logs/<id>[.<variant>].*.log``
  that ``pgdoctor logs`` diagnoses as ``<id>``;
- a lab fault with ``problem=<id>`` (``doctor/lab/faults/``), or ``lab: none — <reason>`` in its front matter.

Two kinds of playbook are treated differently, on purpose:

- ``preflight-*`` are checklist items of ``pgdoctor preflight`` on a node where Patroni does not run yet. Their
  facts exist only under the preflight profile, so their fixture is ``fixtures/preflight/<id>.json``: the
  prepared node ``healthy.prepared-node.json`` with one item broken. The lab's members are installed and
  running, so no lab fault produces them; each says why in ``lab: none — ...``.
- ``lifecycle-events`` is not a problem: its patterns only mark events (promotion, rewind, restart) for the
  timeline and are all benign, so nothing may ever diagnose it; it is checked for exactly that, and for the
  events a real log yields.

Fixture and sample names whose first dot-separated part is ``healthy`` are the healthy baselines.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from doctor.commands.logs import analyze_logs
from doctor.engine import load_checks
from doctor.facts import Facts
from doctor.lab.faults import ALIASES, FAULTS, resolve
from doctor.lab.layout import LabError
from doctor.logscan.sources import FileSource
from doctor.model.fleet import CLUSTER_PROFILE
from doctor.pipeline import Report, analyze, analyze_cluster
from doctor.playbooks import builtin_dir, load_playbooks, parse_playbook
from tests.unit.conftest import FIXTURES, read_fixture

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_logs"
PREFLIGHT = FIXTURES / "preflight"
HEALTHY = "healthy"
TIMELINE_ONLY = "lifecycle-events"
SECTIONS = ("symptoms", "cause", "fix", "verify")

BOOKS = {b.id: b for b in load_playbooks().values() if Path(b.source).parent == builtin_dir()}
CHECKS = {c.id: c for c in load_checks().values() if c.origin == "builtin"}
PROBLEMS = sorted(BOOKS)


def is_preflight(pid: str) -> bool:
    return pid.startswith("preflight-")


def problem_of(name: str) -> str:
    """The problem id a fixture or sample file is named after: its name up to the first dot."""
    return name.split(".")[0]


def fixtures_of(pid: str) -> list[Path]:
    folder = PREFLIGHT if is_preflight(pid) else FIXTURES
    return sorted(p for p in folder.glob("*.json") if problem_of(p.name) == pid)


def samples_of(pid: str) -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*.log") if problem_of(p.name) == pid)


@cache
def analysis(path: Path) -> Report:
    """The report on a facts fixture: preflight fixtures under the preflight profile, snapshots collected for
    ``verify`` (their ``profile``) as ``verify``, cluster snapshots (several members', ``profile: cluster``) as
    ``analyze`` of several bundles, the others as ``run``."""
    data = read_fixture(path)
    if data.get("profile") == CLUSTER_PROFILE:  # several members' snapshots: the cluster report
        return analyze_cluster(Facts(data))
    if data.get("profile") == "verify":
        return analyze(Facts(data), command="verify", profiles=("verify",))
    if path.parent == PREFLIGHT:
        return analyze(Facts(data), command="preflight", profiles=("preflight",),
                       settings={"etcd_here": bool(data.get("preflight", {}).get("etcd_here"))})
    return analyze(Facts(data), profiles=("run", "replication"))


def reported_by_fixture(path: Path) -> set[str]:
    """Problem ids the analysis of a facts fixture reports: fail/warn findings' playbooks and diagnoses."""
    report = analysis(path)
    return {f.playbook for f in report.findings if f.status in ("fail", "warn")} | {d.id for d in report.diagnoses}


@cache
def diagnosed_by_sample(path: Path) -> frozenset[str]:
    """Problem ids ``pgdoctor logs`` diagnoses in a sample log, current or already resolved in it."""
    report = analyze_logs([FileSource(str(path))])
    return frozenset(d.id for d in list(report.diagnoses) + list(report.resolved))


# ------------------------------------------------------------------------------------------ every playbook
@pytest.mark.parametrize("pid", PROBLEMS)
def test_playbook_has_its_four_sections(pid: str) -> None:
    book = BOOKS[pid]
    missing = [s for s in SECTIONS if not book.section(s).strip()]
    assert missing == [], f"{book.source}: sections missing or empty: {missing}"


@pytest.mark.parametrize("pid", PROBLEMS)
def test_playbook_passes_the_checks_a_teams_playbook_gets(pid: str) -> None:
    """Built-in playbooks load without compiling their regexes (a run without logs needs none of them):
    here each is parsed as a team's playbook is, every regex compiled and every ``require`` a group."""
    book = BOOKS[pid]
    again = parse_playbook(Path(book.source).read_text(encoding="utf-8"), book.source, check_regexes=True)
    assert [p.id for p in again.patterns] == [p.id for p in book.patterns]


@pytest.mark.parametrize("pid", PROBLEMS)
def test_playbook_is_detected_by_a_check_or_log_patterns(pid: str) -> None:
    checks = [c.id for c in CHECKS.values() if c.playbook == pid]
    reporting = [p.id for p in BOOKS[pid].patterns if not p.benign]
    if pid == TIMELINE_ONLY:
        assert checks == [] and reporting == [], "the timeline's events must never be reported as a problem"
        assert any(p.event for p in BOOKS[pid].patterns)
        return
    assert checks or reporting, f"{pid}: no check has playbook={pid!r} and it has no (non-benign) log pattern"
    if is_preflight(pid):
        assert checks and all("preflight" in CHECKS[c].profiles for c in checks), checks


@pytest.mark.parametrize("pid", [p for p in PROBLEMS if p != TIMELINE_ONLY])
def test_playbook_fires_on_its_fixture_or_sample_log(pid: str) -> None:
    fixtures, samples = fixtures_of(pid), samples_of(pid)
    assert fixtures or samples, (f"{pid}: no fixture tests/unit/fixtures/{'preflight/' if is_preflight(pid) else ''}"
                                 f"{pid}[.<variant>].json and no sample_logs/{pid}.*.log")
    # every fixture named after the problem reports it; a sample set needs one log that shows it
    # (the others are context from other nodes)
    for path in fixtures:
        assert pid in reported_by_fixture(path), f"{path.name} does not report {pid}: {sorted(reported_by_fixture(path))}"
        base = json.loads(path.read_text()).get("base")
        if base:  # one item broken on a healthy snapshot: the break, not the snapshot, must be what fires
            assert pid not in reported_by_fixture(path.parent / base), f"{base} already reports {pid}"
    if samples and not fixtures:
        seen = {p.name: diagnosed_by_sample(p) for p in samples}
        assert any(pid in ids for ids in seen.values()), f"no sample of {pid} is diagnosed as {pid}: {seen}"


def test_timeline_events_come_from_a_real_log() -> None:
    report = analyze_logs([FileSource(str(SAMPLES / "healthy.bootstrap.patroni.log"))])
    assert report.diagnoses == [] and report.resolved == []
    assert {"bootstrap", "start"} <= {e["event"] for e in report.facts.get("logs.events")}


@pytest.mark.parametrize("pid", PROBLEMS)
def test_playbook_has_a_lab_fault_or_says_why_not(pid: str) -> None:
    faults = sorted(f.id for f in FAULTS.values() if f.problem == pid)
    lab = BOOKS[pid].lab
    if faults:
        assert lab is None, f"{pid} has lab faults {faults} but its front matter says lab: {lab}"
    else:
        assert lab and re.match(r"none — \S.{10,}", lab), (
            f"{pid}: no lab fault has problem={pid!r}; add one to doctor/lab/faults/ or put "
            f"'lab: none — <reason>' in {BOOKS[pid].source}")


# ------------------------------------------------------------------------------------------ every name
def test_every_fault_produces_a_playbook_problem() -> None:
    unknown = {f.id: f.problem for f in FAULTS.values() if f.problem not in BOOKS}
    assert unknown == {}
    for fid, f in FAULTS.items():
        assert fid == (f"{f.problem}.{f.variant}" if f.variant else f.problem)


def test_old_fault_ids_and_the_variant_option_name_the_same_faults() -> None:
    assert sorted(set(ALIASES.values()) - set(FAULTS)) == []
    f, note = resolve("port-in-use-pg")
    assert f.id == "port-in-use.pg" and note == "port-in-use-pg is the old name of port-in-use.pg"
    f, note = resolve("datadir-permissions", variant="owner-root")
    assert f.id == "datadir-permissions.owner-root" and note is None
    with pytest.raises(LabError, match="unknown fault 'port-in-use.ssh'"):
        resolve("port-in-use", variant="ssh")


def test_every_check_names_a_playbook() -> None:
    assert {c.id: c.playbook for c in CHECKS.values() if c.playbook not in BOOKS} == {}


@pytest.mark.parametrize("folder", [FIXTURES, PREFLIGHT, SAMPLES, ROOT / "tests" / "browser" / "fixtures"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fixture_and_sample_is_named_after_a_problem(folder: Path) -> None:
    names = [p.name for p in folder.iterdir() if p.suffix in (".json", ".log")]
    assert names
    stray = [n for n in names if problem_of(n) not in BOOKS and problem_of(n) != HEALTHY]
    assert stray == [], f"name these <problem-id>[.<variant>]... or {HEALTHY}.<what>: {stray}"


def test_every_fault_is_broken_by_a_lab_test() -> None:
    text = "\n".join(p.read_text() for p in (ROOT / "tests" / "lab").glob("test_*.py"))
    untested = [fid for fid in FAULTS if f'"{fid}"' not in text]
    assert untested == [], f"no test in tests/lab breaks these faults: {untested}"


# ------------------------------------------------------------------------------------------ healthy baselines
HEALTHY_FIXTURES = sorted(p for p in list(FIXTURES.glob("*.json")) + list(PREFLIGHT.glob("*.json"))
                          if problem_of(p.name) == HEALTHY)


@pytest.mark.parametrize("path", HEALTHY_FIXTURES, ids=lambda p: p.name)
def test_healthy_baseline_reports_no_problem(path: Path) -> None:
    report = analysis(path)
    if path.name == "healthy.prepared-node.json":
        # the real snapshot of a prepared node, taken in a container without systemd or time sync: those
        # items warn; nothing fails. healthy.systemd-host.json is the same node on a systemd host.
        assert [f.check for f in report.findings if f.status in ("fail", "error")] == []
        return
    assert [(f.check, f.summary) for f in report.findings if f.status not in ("ok", "skip")] == []
    assert [d.id for d in report.diagnoses] == [] and report.exit_code == 0


def test_every_check_passes_on_a_healthy_baseline() -> None:
    """A check that never says ok on a healthy snapshot cannot tell healthy from broken."""
    ok = {f.check for path in HEALTHY_FIXTURES for f in analysis(path).findings if f.status == "ok"}
    assert sorted(set(CHECKS) - ok) == []
