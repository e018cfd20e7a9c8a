"""contrib/ansible is lint-clean under ansible-lint's strictest profile (``production``), and its role keeps
what the issue asks of it: secrets only under no_log, check mode that changes nothing on the hosts.

The playbook itself runs against the real lab in tests/lab/test_fleet_lab.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ANSIBLE = Path(__file__).resolve().parents[2] / "contrib" / "ansible"
BIN = Path(sys.executable).parent


def test_ansible_lint_production_profile_passes(tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "ansible-lint"), "--nocolor", "-c", ".ansible-lint", "."], cwd=ANSIBLE,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ANSIBLE_HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path),
                                   PATH=f"{BIN}:{os.environ['PATH']}"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in done.stderr + done.stdout


def _tasks() -> list[dict]:
    out = []
    for path in sorted((ANSIBLE / "roles" / "pgdoctor" / "tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            out += [*task.get("block", []), task]
    return out


def test_the_task_that_gets_the_environment_hides_its_output() -> None:
    """``pgdoctor_environment`` may hold PGPASSWORD: the one task given it runs with no_log."""
    given = [t for t in _tasks() if "pgdoctor_environment" in str(t.get("environment", ""))]
    assert [t["name"] for t in given] == ["Write the bundle (facts, report, redacted config and logs)"]
    assert all("no_log" in t for t in given)


def test_what_changes_a_host_is_skipped_in_check_mode() -> None:
    """Commands do not run in check mode; fetching and removing the bundle wait for a real run."""
    by_name = {t["name"]: t for t in _tasks()}
    for name in ("Fetch the bundle to the controller", "Remove the bundle from the host",
                 "Analyze the bundles of every member together"):
        assert by_name[name]["when"] == "not ansible_check_mode", name
