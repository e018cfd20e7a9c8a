"""The fault registry: one entry per way the lab can break, keyed by the problem id it produces.

A fault's id is ``<problem>`` or ``<problem>.<variant>``, where ``<problem>`` is a playbook id
(``playbooks_md/<problem>.md``), so the playbook, its facts fixture ``tests/unit/fixtures/<id>.json``,
its sample logs ``sample_logs/<id>.*.log`` and ``pgdoctor lab break <id>`` share one name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..layout import LabError, Layout, Node


@dataclass
class Ctx:
    """What a breaker or healer works with: the lab, the target node, the fault's state file."""

    lay: Layout
    target: Node | None  # None for a fault of the whole cluster
    state: dict
    wait: bool = True
    variant: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def node(self) -> Node:
        """The target node, for the faults that have one (all but the cluster-wide ones)."""
        if self.target is None:
            raise LabError("this fault needs a target node (--node)")
        return self.target

    def save(self) -> None:
        from .state import write_state
        write_state(self.lay, self.state)

    def add_extra_pid(self, pid: int, match: str) -> None:
        """Record a helper process the fault started, so that heal and ``lab down`` stop it."""
        self.state.setdefault("extra_pids", []).append({"pid": pid, "match": match})
        self.save()


Breaker = Callable[[Ctx], None]
Healer = Callable[[Ctx], "str | None"]


@dataclass
class Fault:
    problem: str  # the playbook id this fault produces
    variant: str | None
    summary: str
    target: str  # "replica", "leader", "node1", "cluster": which node --node defaults to
    breaker: Breaker
    healer: Healer | None = None

    @property
    def id(self) -> str:
        return f"{self.problem}.{self.variant}" if self.variant else self.problem


FAULTS: dict[str, Fault] = {}

# Fault ids from before faults were named after their problem; `lab break` still takes them.
ALIASES: dict[str, str] = {
    "dcs-quorum-lost": "dcs-unreachable.quorum-lost",
    "dcs-down-at-start": "dcs-unreachable.at-start",
    "port-in-use-pg": "port-in-use.pg",
    "port-in-use-rest": "port-in-use.rest",
    "sync-strict-unavailable": "sync-standby-unavailable.strict",
    "sync-unavailable": "sync-standby-unavailable.nonstrict",
}


def fault(problem: str, summary: str, *, variant: str | None = None,
          target: str = "replica") -> Callable[[Breaker], Breaker]:
    """Register the decorated function as the breaker of fault ``problem[.variant]``.

    One function may carry several ``@fault`` lines (one per variant); it reads ``ctx.variant``."""

    def deco(fn: Breaker) -> Breaker:
        f = Fault(problem, variant, summary, target, fn)
        if f.id in FAULTS:
            raise ValueError(f"fault {f.id} registered twice")
        FAULTS[f.id] = f
        return fn

    return deco


def healer(*fault_ids: str) -> Callable[[Healer], Healer]:
    """Register the decorated function as what undoes each of ``fault_ids``."""

    def deco(fn: Healer) -> Healer:
        for fid in fault_ids:
            FAULTS[fid].healer = fn
        return fn

    return deco


def resolve(fault_id: str, variant: str | None = None) -> tuple[Fault, str | None]:
    """The fault ``fault_id`` names (with ``--variant`` appended), and a note when it is an old name."""
    fid = f"{fault_id}.{variant}" if variant else fault_id
    note = None
    if fid not in FAULTS and fid in ALIASES:
        note = f"{fid} is the old name of {ALIASES[fid]}"
        fid = ALIASES[fid]
    f = FAULTS.get(fid)
    if f is None:
        raise LabError(f"unknown fault {fid!r}; known: {', '.join(FAULTS)}")
    return f, note
