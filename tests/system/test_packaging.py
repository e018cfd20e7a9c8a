"""The built wheel, installed with its dependencies into a bare venv and run from another directory,
finds every playbook: nothing leans on packages this machine's own Python happens to have."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _bare_interpreter() -> str:
    """Debian's interpreter when it can make venvs (what a fresh machine has), else this one's base."""
    if SYSTEM_PYTHON.exists():
        probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import venv, ensurepip"], capture_output=True)
        if probe.returncode == 0:
            return str(SYSTEM_PYTHON)
    return getattr(sys, "_base_executable", sys.executable)


def test_installed_wheel_ships_every_playbook(tmp_path):
    # Built from a clean copy: an in-tree build would leave build/ in the checkout, and a stale build/lib
    # (modules since moved) would end up in the wheel.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                                 "__pycache__", ".pytest_cache", "artifacts"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, cwd=str(tmp_path))
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("pgdoctor-*.whl")
    # checks/ and playbooks_md/ install inside the doctor namespace, never as top-level packages.
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/", 1)[0] for name in zf.namelist() if not name.startswith("pgdoctor-")}
        names = set(zf.namelist())
    assert tops == {"doctor"}
    assert "doctor/checks/__init__.py" in names and "doctor/playbooks_md/datadir-permissions.md" in names

    venv = tmp_path / "venv"
    subprocess.run([_bare_interpreter(), "-m", "venv", str(venv)], check=True)  # no system site packages
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                             capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert install.returncode == 0, install.stderr[-2000:]
    exe = venv / "bin" / "pgdoctor"
    out = subprocess.run([str(exe), "checks", "--format", "json"], capture_output=True, text=True, cwd="/", env=env)
    assert out.returncode == 0, out.stderr
    shipped = set(json.loads(out.stdout)["playbooks"])
    in_repo = {p.stem for p in (REPO / "playbooks_md").glob("*.md") if p.name.lower() != "readme.md"}
    assert shipped == in_repo
    out = subprocess.run([str(exe), "explain", "datadir-permissions"], capture_output=True, text=True, cwd="/", env=env)
    assert out.returncode == 0 and "chmod 700" in out.stdout
    # The installed copy, not the work tree, answered.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import doctor; print(doctor.__file__)"],
                           capture_output=True, text=True, cwd="/", env=env)
    assert str(venv) in where.stdout
    for top in ("checks", "playbooks_md"):
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {top}"], capture_output=True, text=True,
                               cwd="/", env=env)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
