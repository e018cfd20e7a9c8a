"""Lab faults that put members into the states of doctor/model/member_states.py, produced the way they
happen on real clusters (Patroni's own code decides the state; nothing is written into the DCS by hand).

- ``member-down``: maintenance mode on, a replica's postmaster stopped with a fast shutdown. Patroni
  does not start a PostgreSQL while paused and writes ``stopped`` (patroni/ha.py ``_run_cycle``). Variant
  ``start-failed``: a process then binds the replica's PostgreSQL address:port without listening and the
  cluster is resumed: Patroni starts PostgreSQL, which cannot bind, writes ``start failed`` and retries every
  loop (``starting`` for a moment each time). (While paused a failed start or restart is overwritten with
  ``stopped`` at the next loop, so only an unpaused cluster keeps ``start failed``.)
- ``leader-postgres-down``: the leader's postmaster SIGSTOPped. Patroni keeps its own connections and
  the leader key (a stopped postmaster is still a live pid), every new connection hangs: writes from new
  clients are impossible. (Stopping it while paused is not this fault: Patroni then drops the key,
  "removed leader lock because postgres is not running".)
- ``pending-restart``: ``patronictl edit-config`` raises ``max_connections`` (a restart-only parameter).
- ``scheduled-action``: ``patronictl switchover --scheduled`` an hour ahead.
- ``member-count``: a replica's Patroni (and its PostgreSQL) stopped until its member key expires; the
  leader still keeps its slot (``retain_slots``).

"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta, timezone

from .. import cluster, procs
from ..layout import LabError, Node
from .helpers import (
    leader,
    patch_config,
    patronictl,
    pending_members,
    replicas,
    restart_pending,
    resume,
    sql,
    wait_until,
)
from .logs import patroni_logs, symptom
from .registry import Ctx, fault, healer

STATE_TIMEOUT = 60.0


def _state(n: Node) -> str | None:
    st = cluster.member_status(n)
    return st.get("state") if st else None


def _wait_state(n: Node, want: str, timeout: float = STATE_TIMEOUT) -> None:
    wait_until(lambda: _state(n) == want, timeout, f"{n.name}'s Patroni to report its PostgreSQL '{want}'")


def _pause(ctx: Ctx) -> None:
    patronictl(ctx.lay, "pause", "--wait")


# --------------------------------------------------------------------------- member-down

HOLDER = "pgdoctor-lab-port-holder"


def _hold_port(ctx: Ctx, n: Node, port: int) -> int:
    """A process that binds the address:port without listening: PostgreSQL cannot bind it ("Address already in
    use"), and a connection to it is refused at once (a listener that accepts would stall Patroni's REST API
    while its own status query waits on it)."""
    # without SO_REUSEADDR (with it, PostgreSQL could bind and listen beside it), so the bind waits until the
    # stopped server's connections have left TIME_WAIT (60 s on Linux); the cluster is paused meanwhile
    code = ("import socket, time\n"
            "s = socket.socket()\n"
            "while True:\n"
            "    try:\n"
            f"        s.bind(({n.address!r}, {port}))\n"
            "        break\n"
            "    except OSError:\n"
            "        time.sleep(0.5)\n"
            f"time.sleep(10 ** 9)  # {HOLDER}\n")
    pid = procs.spawn(["/usr/bin/python3", "-c", code], ctx.lay.base_dir / f"port-holder-{n.name}-{port}.log", None,
                      as_postgres=False, cwd=ctx.lay.base_dir)
    ctx.add_extra_pid(pid, HOLDER)
    wait_until(lambda: not procs.port_free(n.address, port), 90, f"{n.address}:{port} to be held")
    return pid


@fault("member-down", "maintenance mode on and a replica's postmaster stopped: Patroni reports 'stopped'")
@fault("member-down", "a replica's address:port bound by another process, the cluster resumed: Patroni reports "
       "'start failed' and retries every loop", variant="start-failed")
def break_member_down(ctx: Ctx) -> None:
    n = ctx.node
    _pause(ctx)
    cluster.stop_postgres(n)
    if ctx.variant == "start-failed":
        pid = _hold_port(ctx, n, n.pg_port)
        ctx.details.update(holder_pid=pid, port=f"{n.address}:{n.pg_port}")
        resume(ctx.lay)
        _wait_state(n, "start failed")
    else:
        _wait_state(n, "stopped")
        symptom(ctx, r"PAUSE: postgres is not running", patroni_logs(n), 20)
    ctx.details.update(member=n.name, state=_state(n))


@healer("member-down", "member-down.start-failed")
def heal_member_down(ctx: Ctx) -> str:
    for pid, match in cluster.extra_pids(ctx.lay):
        procs.stop_pid(pid, match, grace=5)
    resume(ctx.lay)
    return f"stopped the port holder, resumed; Patroni starts {ctx.node.name}'s PostgreSQL"


# --------------------------------------------------------------------------- leader-postgres-down


@fault("leader-postgres-down", "the leader's postmaster SIGSTOPped: Patroni keeps the leader key, new connections hang", target="leader")
def break_leader_postgres_down(ctx: Ctx) -> None:
    n = ctx.node
    pid = cluster.postgres_pid(n)
    if not pid:
        raise LabError(f"{n.name} has no running postmaster")
    procs.signal_pid(pid, signal.SIGSTOP)
    ctx.state["stopped_postmaster"] = pid
    ctx.save()
    ctx.details.update(leader=n.name, stopped_postmaster=pid)

    def refuses() -> bool:
        import psycopg
        try:
            psycopg.connect(n.dsn(connect_timeout=2), autocommit=True).close()
            return False
        except psycopg.OperationalError:
            return True
    wait_until(refuses, 20, f"new connections to {n.name} to hang")


@healer("leader-postgres-down")
def heal_leader_postgres_down(ctx: Ctx) -> str:
    pid = ctx.state.get("stopped_postmaster")
    if pid and procs.alive(pid):
        procs.signal_pid(pid, signal.SIGCONT)
    return f"kill -CONT {pid}"


# --------------------------------------------------------------------------- pending-restart


PENDING_PARAMETER = ("max_connections", "120")


@fault("pending-restart", "patronictl edit-config raises max_connections: every member waits for a restart", target="cluster")
def break_pending_restart(ctx: Ctx) -> None:
    name, value = PENDING_PARAMETER
    out = patronictl(ctx.lay, "edit-config", "--set", f"postgresql.parameters.{name}={value}", "--force")
    ctx.details.update(parameter=name, value=value, patronictl=out.strip()[-400:])
    wait_until(lambda: all((cluster.member_status(n) or {}).get("pending_restart") for n in ctx.lay.nodes),
               STATE_TIMEOUT, "every member to report pending_restart")


@healer("pending-restart")
def heal_pending_restart(ctx: Ctx) -> str:
    """Drop the raised parameter again (PATCH /config with null deletes the key). A member that restarted while
    the raised value was in force now waits for the opposite restart: restart those too, as an operator would."""
    name, _ = PENDING_PARAMETER
    patch_config(ctx.lay, {"postgresql": {"parameters": {name: None}}})

    try:
        wait_until(lambda: not pending_members(ctx.lay), 30, "pending_restart to clear")
        done = f"PATCH /config postgresql.parameters.{name}=null"
    except LabError:
        restart_pending(ctx.lay, STATE_TIMEOUT)
        if pending_members(ctx.lay):
            raise
        done = f"PATCH /config postgresql.parameters.{name}=null; patronictl restart --pending"
    # Patroni 2.1.7 (seen on the lab) clears its pending_restart flag but leaves the raised value in
    # postgresql.conf, so PostgreSQL itself still waits for a restart (pg_settings.pending_restart).
    still = [n.name for n in ctx.lay.nodes if _pg_pending(n)]
    if not still:
        return done
    patronictl(ctx.lay, "restart", ctx.lay.scope, *still, "--force", timeout=120)
    wait_until(lambda: not any(_pg_pending(n) for n in ctx.lay.nodes), STATE_TIMEOUT,
               "pg_settings.pending_restart to clear")
    return f"{done}; patronictl restart {' '.join(still)} (PostgreSQL still had {name} pending)"


def _pg_pending(n: Node) -> bool:
    try:
        return bool(sql(n, "SELECT count(*) FROM pg_settings WHERE pending_restart", fetch=True)[0][0])
    except LabError:  # not serving right now: heal's health wait judges it
        return False


# --------------------------------------------------------------------------- scheduled-action


@fault("scheduled-action", "patronictl switchover --scheduled an hour ahead", target="cluster")
def break_scheduled_action(ctx: Ctx) -> None:
    lead = leader(ctx.lay)
    cand = sorted(replicas(ctx.lay), key=lambda x: x.name)[0]
    at = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=0).isoformat()
    out = patronictl(ctx.lay, "switchover", "--leader", lead.name, "--candidate", cand.name, "--scheduled", at,
                     "--force")
    ctx.details.update(leader=lead.name, candidate=cand.name, at=at, patronictl=out.strip()[-400:])
    wait_until(lambda: bool((cluster.cluster_view(ctx.lay) or {}).get("scheduled_switchover")), 20,
               "the scheduled switchover in /cluster")


@healer("scheduled-action")
def heal_scheduled_action(ctx: Ctx) -> str:
    if (cluster.cluster_view(ctx.lay) or {}).get("scheduled_switchover"):
        patronictl(ctx.lay, "flush", ctx.lay.scope, "switchover", "--force")
    return "patronictl flush switchover"


# --------------------------------------------------------------------------- member-count


@fault("member-count", "a replica's Patroni stopped until its member key expired", target="replica")
def break_member_count(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    names = lambda: {m.get("name") for m in (cluster.cluster_view(ctx.lay) or {}).get("members") or []}  # noqa: E731
    wait_until(lambda: n.name not in names(), 90, f"{n.name}'s member key to expire")
    ctx.details.update(member=n.name, stopped_at=time.time())


@healer("member-count")
def heal_member_count(ctx: Ctx) -> str:
    return f"start {ctx.node.name}'s Patroni (lab up)"
