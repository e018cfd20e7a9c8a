"""The whole cluster from one place, on the real lab.

- contrib/ansible's collect.yml with the lab's three members as three hosts of an inventory (ansible's
  ``local`` connection, each host's ``pgdoctor_config`` its member's patroni.yml, pgdoctor installed as a
  wheel built from this checkout, ``become`` through ``su``): on the healthy lab, then with a fault only
  node3's own facts show (its data dir's mode) and with config drift on node3; the cluster report must
  name each on node3.
- ``pgdoctor run --cluster`` from node3 names node3's drifted parameter; from node1, which cannot see
  node3's file, it says what it did not see.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli

from doctor.lab.layout import REPLICATION_PASSWORD, SUPERUSER_PASSWORD

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "contrib" / "ansible" / "collect.yml"
BIN = Path(sys.executable).parent
INSTALL_TASK = "TASK [pgdoctor : Install pgdoctor into its virtualenv]"


@pytest.fixture(scope="module")
def fleet(lab, tmp_path_factory):
    """An inventory of the lab's members and a function that runs collect.yml over it."""
    work = tmp_path_factory.mktemp("fleet")
    hosts = {n.name: {"pgdoctor_config": str(n.config)} for n in lab.nodes}
    inventory = {"all": {"children": {"patroni": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "ansible_become_method": "su",
        "pgdoctor_install": "wheel", "pgdoctor_checkout": str(REPO),
        "pgdoctor_venv": str(work / "opt" / "venv"), "pgdoctor_install_throttle": 1,  # one machine, one venv
        "pgdoctor_remote_dir": str(work / "remote"), "pgdoctor_fetch_dir": str(work / "fetched"),
        "pgdoctor_controller_pgdoctor": str(BIN / "pgdoctor"),
        # Only the bundles' last seconds of logs: the log lines of faults earlier lab tests broke on purpose
        # must not be judged here, and these tests plant local facts and config, never log lines.
        "pgdoctor_since": "5s"}}}}}
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))

    def collect(*extra: str) -> tuple[subprocess.CompletedProcess, Path | None]:
        before = set((work / "fetched").glob("*")) if (work / "fetched").exists() else set()
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{os.environ['PATH']}",
                   ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"), ANSIBLE_HOME=str(work / "ansible-home"))
        done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(work / "inventory.yml"), str(PLAYBOOK),
                               *extra], capture_output=True, text=True, env=env, timeout=600)
        new = sorted(set((work / "fetched").glob("*")) - before) if (work / "fetched").exists() else []
        return done, (new[0] if new else None)

    return collect


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "cluster-report.json").read_text())


def _problems(report: dict) -> set[tuple[str, str | None]]:
    return {(d["id"], d.get("member")) for d in report["diagnoses"]}


def _task_lines(output: str, task: str) -> list[str]:
    """The host lines (ok:/changed:/skipping:) under one task of ansible's default output."""
    part = output.split(task, 1)[1] if task in output else ""
    part = part.split("\nTASK [", 1)[0]
    return re.findall(r"^(?:ok|changed|skipping): \[\w+", part, re.M)


def test_collect_on_a_healthy_lab_gives_one_healthy_cluster_report(healthy_lab, fleet):
    done, run_dir = fleet()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert run_dir is not None
    bundles = sorted(p.name for p in (run_dir / "bundles").glob("*.tar.gz"))
    assert [re.search(r"-(node\d)-", b).group(1) for b in bundles] == ["node1", "node2", "node3"]
    report = _report(run_dir)
    assert report["command"] == "cluster" and report["exit_code"] == 0, _problems(report)
    assert [m["name"] for m in report["members"]["members"]] == ["node1", "node2", "node3"]
    assert {(m["name"], m["facts"]) for m in report["members"]["members"]} == {
        ("node1", "own"), ("node2", "own"), ("node3", "own")}
    assert (run_dir / "cluster-report.html").stat().st_size > 0 and (run_dir / "cluster-report.txt").stat().st_size
    assert not list(Path(done.args[2]).parent.glob("remote/*.tar.gz")), "bundles left on the hosts"  # args[2]: inventory
    # no secret in what ansible printed nor in the reports (the lab's passwords are in every member's patroni.yml)
    shown = done.stdout + done.stderr + "".join(p.read_text() for p in run_dir.glob("cluster-report.*"))
    assert SUPERUSER_PASSWORD not in shown and REPLICATION_PASSWORD not in shown
    # check mode: nothing installed, bundled or fetched; the hosts stay as they are
    checked, checked_dir = fleet("--check")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert checked_dir is None
    changed_on_hosts = re.findall(r"^changed: \[(\w+)\]", checked.stdout, re.M)
    assert changed_on_hosts == [], checked.stdout[-3000:]


def test_collect_names_a_data_dir_mode_only_node3_shows(lab, fleet):
    lab.ensure_healthy()
    lab.break_fault("datadir-permissions", node="node3")
    try:
        done, run_dir = fleet()
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        # installed by the first run: the second installs nothing (idempotent)
        assert set(_task_lines(done.stdout, INSTALL_TASK)) <= {"ok: [node1", "ok: [node2", "ok: [node3"}
        assert _task_lines(done.stdout, INSTALL_TASK)
        report = _report(run_dir)
        assert ("datadir-permissions", "node3") in _problems(report), _problems(report)
        assert not {m for p, m in _problems(report) if p == "datadir-permissions"} - {"node3"}
        assert report["exit_code"] == 2
    finally:
        lab.heal()


def test_collect_names_config_drift_on_node3(lab, fleet):
    lab.ensure_healthy()
    lab.break_fault("config-drift", node="node3")
    try:
        done, run_dir = fleet()
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        report = _report(run_dir)
        drift = [d for d in report["diagnoses"] if d["id"] == "config-drift"]
        assert [d.get("member") for d in drift] == ["node3"], _problems(report)
        assert "DCS hosts differs on node3" in drift[0]["summary"]
        text = (run_dir / "cluster-report.txt").read_text()
        assert "on node3" in text and "config-drift" in text
    finally:
        lab.heal()


def test_run_cluster_names_a_drifted_parameter_on_its_member(lab):
    lab.ensure_healthy()
    lab.break_fault("parameter-drift", node="node3")
    try:
        here = run_cli("run", "--cluster", "-c", str(lab.node("node3").config), "--no-logs", "--format", "json")
        report = json.loads(here.stdout)
        assert ("parameter-drift", "node3") in _problems(report), (here.stderr, _problems(report))
        assert [m["facts"] for m in report["members"]["members"]] == ["own", "REST API only", "REST API only"]
        # node1 reads node3's REST API, not its file: it cannot see the drift, and says so
        there = run_cli("run", "--cluster", "-c", str(lab.node("node1").config), "--no-logs", "--format", "json")
        seen = json.loads(there.stdout)
        assert "parameter-drift" not in {p for p, _ in _problems(seen)}
        assert any("node2, node3" in n and "contrib/ansible" in n for n in seen["members"]["notes"])
        versions = next(f for f in seen["findings"] if f["check"] == "fleet.versions")
        assert versions["status"] == "ok" and "Patroni" in versions["summary"]
    finally:
        lab.heal()


def test_the_playbook_parses(tmp_path):
    """``--syntax-check``: a cheap guard that runs before the long ones fail for a typo."""
    done = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(PLAYBOOK)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, ANSIBLE_HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path)))
    assert done.returncode == 0, done.stderr
