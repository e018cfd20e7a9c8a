"""Break the running lab with one fault, and heal it again."""

from __future__ import annotations

import time

from .. import cluster
from ..layout import LabError, Layout, Node
from .helpers import leader, replicas, restart_pending, stop_extra_pids
from .logs import log_marks
from .registry import ALIASES, FAULTS, Ctx, Fault, resolve
from .state import active_fault, clear_state, read_state, write_state


def _resolve_node(lay: Layout, f: Fault, node: str | None) -> Node | None:
    if node:
        return lay.node(node)
    if f.target == "cluster":
        return None
    if f.target == "leader":
        return leader(lay)
    if f.target == "replica":
        reps = sorted(replicas(lay), key=lambda x: x.name)
        if not reps:
            raise LabError("the lab has no replica right now; run `pgdoctor lab heal` first")
        return reps[-1]
    return lay.node(f.target)


def break_fault(fault_id: str, node: str | None = None, lay: Layout | None = None,
                wait: bool = True, variant: str | None = None) -> dict:
    """Produce fault ``fault_id`` (``<problem>[.<variant>]``) for real on the running lab.

    ``variant`` is appended to the id (``break_fault("datadir-permissions", variant="owner-root")``)."""
    lay = lay or Layout.from_env()
    f, note = resolve(fault_id, variant)
    current = active_fault(lay)
    if current:
        raise LabError(f"fault {current} is still active; run `pgdoctor lab heal` first")
    ok, why = cluster.health(lay)
    if not ok:
        raise LabError(f"the lab is not healthy ({why}); run `pgdoctor lab up` or `heal` first")
    target = _resolve_node(lay, f, node)
    state = {
        "fault": f.id,
        "problem": f.problem,
        "variant": f.variant,
        "node": target.name if target else None,
        "started_at": time.time(),
        "log_marks": log_marks(lay),
        "extra_pids": [],
        "details": {},
    }
    write_state(lay, state)
    ctx = Ctx(lay, target, state, wait=wait, variant=f.variant)
    f.breaker(ctx)
    state["details"] = ctx.details
    write_state(lay, state)
    out = {
        "fault": f.id,
        "problem": f.problem,
        "variant": f.variant,
        "node": target.name if target else None,
        "config": str(target.config) if target else None,
        "data_dir": str(target.data_dir) if target else None,
        "patroni_log": str(target.patroni_log) if target else None,
        "postgres_log_dir": str(target.postgres_log_dir) if target else None,
        "details": ctx.details,
        "log_marks": state["log_marks"],
    }
    if note:
        out["note"] = note
    return out


def heal(lay: Layout | None = None, timeout: float = 120.0) -> dict:
    """Undo the active fault and wait for a healthy cluster; recreate the cluster if that fails."""
    lay = lay or Layout.from_env()
    t0 = time.monotonic()
    cluster.check_environment(lay)
    state = read_state(lay)
    fid = state.get("fault") if state else None
    action = "started what was not running"
    if state:
        node = lay.node(state["node"]) if state.get("node") else None
        f = FAULTS.get(fid) or FAULTS.get(ALIASES.get(fid or "", ""))  # a state file from before the rename
        ctx = Ctx(lay, node, state, variant=f.variant if f else state.get("variant"))
        if f and f.healer:
            action = f.healer(ctx) or action
        stop_extra_pids(lay)
    if restart_pending(lay):
        action += "; restarted the members that waited for a restart (patronictl restart --pending)"
    clear_state(lay)
    try:
        cluster.up(lay, wait=True, timeout=max(10.0, timeout - (time.monotonic() - t0)))
    except LabError as exc:
        action += f"; not healthy ({exc}), recreated the cluster from scratch"
        cluster.recreate(lay)
    return {"fault": fid, "action": action, "seconds": round(time.monotonic() - t0, 1)}
