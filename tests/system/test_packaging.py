"""`pip install .` into a fresh venv, run from another directory, finds every playbook."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_installed_package_ships_every_playbook(tmp_path):
    venv = tmp_path / "venv"
    # System site packages provide the runtime dependencies; pgdoctor itself is built and installed fresh.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(REPO)],
                             capture_output=True, text=True, cwd=str(tmp_path))
    assert install.returncode == 0, install.stderr[-2000:]
    exe = venv / "bin" / "pgdoctor"
    out = subprocess.run([str(exe), "checks", "--format", "json"], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    shipped = set(json.loads(out.stdout)["playbooks"])
    in_repo = {p.stem for p in (REPO / "playbooks_md").glob("*.md") if p.name.lower() != "readme.md"}
    assert shipped == in_repo
    out = subprocess.run([str(exe), "explain", "datadir-permissions"], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and "chmod 700" in out.stdout
    # The installed copy, not the work tree, answered.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import doctor; print(doctor.__file__)"],
                           capture_output=True, text=True, cwd="/")
    assert str(venv) in where.stdout
