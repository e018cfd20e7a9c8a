"""The version matrix: the same faults on other Patroni and PostgreSQL releases give the same first diagnosis.

Each corner of the matrix (``PGDOCTOR_MATRIX_CORNERS``, default below: the oldest Patroni on PostgreSQL 15, the
newest on PostgreSQL 18, and two between) is a fresh three-member lab in ``<base>-matrix`` on the session lab's
addresses (the session lab is stopped meanwhile and started again afterwards). On each corner: the cluster right
after bootstrap is healthy on every node (no diagnosis, exit 0, logs included), and each fault of ``CASES``, broken
for real, is named first by ``pgdoctor run`` exactly as on the default lab (tests/lab/test_faults.py,
test_member_state_faults.py). Needs ``scripts/install-lab.sh --matrix``; long, so marked ``extended``.

``PGDOCTOR_MATRIX_SAMPLES=DIR`` also writes the bootstrap's logs and each fault's log windows to DIR, named
``<fault>.<corner>.<node>.<source>.log`` (how sample_logs/ got its per-version samples).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import run_cli

from doctor.lab import cluster, faults
from doctor.lab.layout import Layout
from doctor.lab.versions import Versions, patroni_line, postgres_major

pytestmark = [pytest.mark.lab, pytest.mark.extended]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORNERS = "2.1/15,3.0/15,3.3/15,4.0/18,4.1/18"


def corners() -> list[Versions]:
    out = []
    for item in os.environ.get("PGDOCTOR_MATRIX_CORNERS", DEFAULT_CORNERS).split(","):
        p, m = item.strip().split("/")
        out.append(Versions(patroni=patroni_line(p), postgres=postgres_major(m)))
    return out


@dataclass
class Case:
    fault: str  # <problem-id>[.<variant>]: the problem pgdoctor must name first
    on: Callable[[dict, Layout], str]  # (break info, layout) -> the config pgdoctor runs with
    node: str | None = None

    @property
    def problem(self) -> str:
        return self.fault.split(".")[0]


def _own(info: dict, lay: Layout) -> str:
    return info["config"] or str(lay.node("node1").config)


def _other(info: dict, lay: Layout) -> str:
    return str(next(n for n in lay.nodes if n.name != info["node"]).config)


def _node1(info: dict, lay: Layout) -> str:
    return str(lay.node("node1").config)


CASES = [
    Case("member-down", _other),
    Case("leader-postgres-down", _other),
    Case("pending-restart", _node1),
    Case("datadir-permissions", _own),
    Case("port-in-use.pg", _own),
    Case("initialize-key-stuck", _own, node="node1"),
    Case("replication-auth-failed", _own),
    Case("pg-hba-replication-missing", _own),
]


def doctor_run(config: str, since_start: float) -> tuple[int, dict]:
    since = f"{int(time.time() - since_start) + 3}s"
    cp = run_cli("run", "-c", config, "--format", "json", "--since", since, timeout=120, cwd=REPO)
    assert cp.stdout.strip(), f"pgdoctor printed nothing (exit {cp.returncode}): {cp.stderr[-2000:]}"
    return cp.returncode, cp.json


def _show(report: dict) -> str:
    return "\n".join(f"  {d['id']} [{d['status']}]: {d['summary']}" for d in report["diagnoses"]) or "  (none)"


def _tag(v: Versions) -> str:
    """'patroni-2-1-7-pg15': the corner in a file name, free of dots (sample names split on them)."""
    return f"patroni-{v.patroni_release.replace('.', '-')}-pg{v.postgres}"


def _save_samples(lay: Layout, fault: str, marks: dict[str, int] | None = None) -> None:
    out = os.environ.get("PGDOCTOR_MATRIX_SAMPLES")
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    for path, text in faults.logs_since(lay, marks).items():
        p = Path(path)
        rel = p.relative_to(lay.base_dir).parts
        source = {"patroni.log": "patroni", "patroni.stdout.log": "stderr", "postgresql.log": "postgres",
                  "etcd.log": "etcd"}.get(p.name, p.stem)
        name = f"{fault}.{_tag(lay.versions)}.{rel[0]}.{source}.log"
        (Path(out) / name).write_text(text)


@pytest.fixture(scope="module")
def session_stopped(lab):
    """The matrix labs use the session lab's addresses: stop it for the module, start it again after."""
    cluster.down(lab.layout)
    yield lab.layout
    cluster.up(lab.layout)


@pytest.fixture(scope="module", params=corners(), ids=_tag)
def corner(request, session_stopped):
    v: Versions = request.param
    lay = Layout(base_dir=Path(f"{session_stopped.base_dir}-matrix"), addrs=session_stopped.addrs).with_versions(v)
    missing = lay.bins.missing()
    if missing:
        pytest.fail(f"{_tag(v)}: missing {', '.join(missing)}: run scripts/install-lab.sh --matrix", pytrace=False)
    cluster.down(lay, purge=True)
    t0 = time.time()
    cluster.up(lay)
    _save_samples(lay, "healthy.bootstrap", marks={})
    yield lay, t0
    cluster.down(lay, purge=True)


def test_healthy_after_bootstrap(corner):
    lay, t0 = corner
    for n in lay.nodes:
        rc, rep = doctor_run(str(n.config), t0)
        assert rc == 0 and rep["diagnoses"] == [], f"{_tag(lay.versions)} {n.name}: exit {rc}\n{_show(rep)}"
        warned = [f"{f['check']}: {f['summary']}" for f in rep["findings"] if f["status"] in ("warn", "fail")]
        assert warned == [], f"{_tag(lay.versions)} {n.name}: {warned}"
        members = {m["name"]: m for m in rep["cluster"]["members"]}
        assert sorted(members) == ["node1", "node2", "node3"]


@pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
def test_fault_named_first(corner, case: Case):
    lay, _ = corner
    if faults.active_fault(lay) or not cluster.health(lay)[0]:
        faults.heal(lay=lay)
    t0 = time.time()
    info = faults.break_fault(case.fault, node=case.node, lay=lay)
    try:
        assert "warning" not in info["details"], f"the fault's symptom did not show: {info['details']}"
        rc, rep = doctor_run(case.on(info, lay), t0)
        assert rep["diagnoses"], f"{_tag(lay.versions)} {case.fault}: no diagnosis"
        assert rep["diagnoses"][0]["id"] == case.problem, f"{_tag(lay.versions)} {case.fault}:\n{_show(rep)}"
        unfilled = {x for block in rep["diagnoses"][0]["fix"] for x in re.findall(r"<([a-z_]+)>", block)}
        assert not unfilled - {"method"}, rep["diagnoses"][0]["fix"]
        worst = 2 if any(d["status"] == "fail" for d in rep["diagnoses"]) else 1
        assert rc == worst, f"{_tag(lay.versions)} {case.fault}: exit {rc}\n{_show(rep)}"
    finally:
        _save_samples(lay, case.fault)  # the window from the break to now, pgdoctor's run included
        faults.heal(lay=lay)
