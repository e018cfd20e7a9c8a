"""Fixtures for tests that run against the real lab cluster (``pytest -m lab``).

The lab needs root and what ``scripts/install-lab.sh`` installs; CI runs the installer first, so a
missing piece is a failure, not a skip.  The lab's addresses and base dir come from
PGDOCTOR_LAB_ADDRS / PGDOCTOR_LAB_DIR (defaults 127.0.0.11-13, /var/tmp/pgdoctor-lab).
Set PGDOCTOR_LAB_KEEP=1 to leave the lab running after the session.
"""

from __future__ import annotations

import os

import pytest

from doctor.lab import cluster, faults
from doctor.lab.layout import LabError, Layout


class Lab:
    """Handle passed to tests: the layout plus the lab operations."""

    def __init__(self, lay: Layout):
        self.layout = lay

    @property
    def nodes(self):
        return self.layout.nodes

    def node(self, name):
        return self.layout.node(name)

    def status(self) -> dict:
        return cluster.status(self.layout)

    def up(self) -> dict:
        return cluster.up(self.layout)

    def down(self, purge: bool = False) -> dict:
        return cluster.down(self.layout, purge=purge)

    def break_fault(self, fault: str, node: str | None = None, **kw) -> dict:
        return faults.break_fault(fault, node=node, lay=self.layout, **kw)

    def heal(self) -> dict:
        return faults.heal(lay=self.layout)

    def ensure_healthy(self) -> None:
        """Heal an active fault or an unhealthy cluster; a no-op on a healthy lab."""
        if faults.active_fault(self.layout) or not cluster.health(self.layout)[0]:
            faults.heal(lay=self.layout)

    def leader(self) -> str:
        for n in self.status()["nodes"]:
            if n["role"] == "primary":
                return n["name"]
        raise LabError("the lab has no leader")


@pytest.fixture(scope="session")
def lab():
    lay = Layout.from_env()
    missing = lay.bins.missing()
    if missing:
        pytest.fail("lab binaries missing: " + ", ".join(missing)
                    + " -- run `sudo scripts/install-lab.sh` first", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("lab tests must run as root (Patroni runs as the postgres OS user)", pytrace=False)
    # Always a new cluster: a lab left behind (by a demo, a crashed run, an active fault) must not decide
    # what the tests see. down() stops only what the lab's pid files name; purge removes its base dir.
    cluster.down(lay, purge=True)
    try:
        cluster.up(lay)
    except LabError as exc:
        cluster.down(lay)
        pytest.fail(f"lab did not come up: {exc}", pytrace=False)
    handle = Lab(lay)
    try:
        yield handle
    finally:
        if os.environ.get("PGDOCTOR_LAB_KEEP") != "1":
            cluster.down(lay, purge=True)


@pytest.fixture
def healthy_lab(lab):
    """The session lab, healed before the test if a previous test left a fault behind."""
    lab.ensure_healthy()
    yield lab


def pytest_collection_modifyitems(config, items):
    """Tests marked ``extended`` (check_patroni parity over eight lab states, the version matrix) take tens
    of minutes: they run with ``bash scripts/test.sh --extended`` (PGDOCTOR_EXTENDED=1), not in every run."""
    if os.environ.get("PGDOCTOR_EXTENDED") == "1":
        return
    skip = pytest.mark.skip(reason="extended lab test: run with bash scripts/test.sh --extended")
    for item in items:
        if "extended" in item.keywords:
            item.add_marker(skip)
