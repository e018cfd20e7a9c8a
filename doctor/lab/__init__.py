"""The real-cluster lab: three Patroni members with PostgreSQL 15 and a three-member etcd on
loopback addresses, started, inspected, broken and healed for real.

    from doctor import lab
    lab.up(); lab.status(); lab.break_fault("dcs-unreachable"); lab.heal(); lab.down(purge=True)

Every function takes an optional :class:`Layout`; the default comes from the environment
(``PGDOCTOR_LAB_ADDRS``, ``PGDOCTOR_LAB_DIR``).
"""

from __future__ import annotations

from .layout import LabError, Layout, Node


def default_layout() -> Layout:
    return Layout.from_env()


def up(lay: Layout | None = None, wait: bool = True, timeout: float | None = None) -> dict:
    from . import cluster
    return cluster.up(lay or default_layout(), wait=wait, timeout=timeout or cluster.UP_TIMEOUT)


def down(lay: Layout | None = None, purge: bool = False) -> dict:
    from . import cluster
    return cluster.down(lay or default_layout(), purge=purge)


def status(lay: Layout | None = None, rest: bool = True) -> dict:
    from . import cluster
    return cluster.status(lay or default_layout(), rest=rest)


def wait_healthy(lay: Layout | None = None, timeout: float | None = None) -> float:
    from . import cluster
    return cluster.wait_healthy(lay or default_layout(), timeout=timeout or cluster.UP_TIMEOUT)


def break_fault(fault: str, node: str | None = None, lay: Layout | None = None, **kw) -> dict:
    from . import faults
    return faults.break_fault(fault, node=node, lay=lay, **kw)


def heal(lay: Layout | None = None) -> dict:
    from . import faults
    return faults.heal(lay=lay)


__all__ = [
    "LabError",
    "Layout",
    "Node",
    "break_fault",
    "default_layout",
    "down",
    "heal",
    "status",
    "up",
    "wait_healthy",
]
