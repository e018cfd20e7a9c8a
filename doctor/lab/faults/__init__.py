"""Breaking the lab for real, and healing it.

Each fault is produced the way it happens on real clusters (see the lab notes), waits (bounded)
until its real symptom shows up in the logs, and records itself in ``<base>/fault.json`` so that
:func:`heal` knows what to undo. Only one fault is active at a time.

A fault is named after the problem it produces: ``<problem>`` or ``<problem>.<variant>``, where
``<problem>`` is a playbook id (``port-in-use.pg``, ``dcs-unreachable.quorum-lost``).

    from doctor.lab import faults
    info = faults.break_fault("dcs-unreachable")
    info["details"]["symptom"]     # the log line that shows it
    faults.heal()

Layout: ``registry`` (the ``@fault``/``@healer`` registry), ``state`` (fault.json), ``logs`` (log marks
and symptoms), ``helpers`` (cluster helpers, ``reclone``), ``runner`` (break/heal), and one module per
area: ``config``, ``dcs``, ``datadir``, ``ports``, ``auth``, ``replication``, ``timeline``,
``process``, ``leadership``, ``disk``, ``drift`` (one member's patroni.yml apart from the others'), ``members`` (member states), ``archive``, ``clone``, ``watchdog``,
``splitbrain``, ``roundtrip``.
"""

from __future__ import annotations

from . import (  # noqa: F401
    archive,
    auth,
    clone,
    config,
    datadir,
    dcs,
    disk,
    drift,
    leadership,
    members,
    ports,
    process,
    replication,
    roundtrip,
    splitbrain,
    timeline,
    watchdog,
)
from .helpers import leader, patch_config, patronictl, replicas, roles, sql, wait_until
from .logs import log_marks, logs_since, wait_log
from .registry import ALIASES, FAULTS, Ctx, Fault, fault, healer, resolve
from .replication import SLOT_WAL_BYTES, probe_write
from .runner import break_fault, heal
from .state import active_fault, read_state

__all__ = [
    "ALIASES",
    "FAULTS",
    "SLOT_WAL_BYTES",
    "Ctx",
    "Fault",
    "active_fault",
    "break_fault",
    "fault",
    "heal",
    "healer",
    "leader",
    "log_marks",
    "logs_since",
    "patch_config",
    "patronictl",
    "probe_write",
    "read_state",
    "replicas",
    "resolve",
    "roles",
    "sql",
    "wait_log",
    "wait_until",
]
