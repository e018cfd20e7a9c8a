"""pyproject.toml lists its packages by hand (checks/ and playbooks_md/ install as doctor.checks and
doctor.playbooks_md, which discovery cannot do): a package folder missing from the list would be left out of
the wheel while the editable install still worked."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "doctor").rglob("__init__.py")}
    on_disk |= {"doctor.checks", "doctor.playbooks_md"}
    assert on_disk == listed
    assert setuptools["package-dir"]["doctor.checks"] == "checks"
    assert setuptools["package-dir"]["doctor.playbooks_md"] == "playbooks_md"
