"""What breakers and healers share: roles, SQL, patronictl, the dynamic config, waiting, re-cloning."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections.abc import Callable

import requests

from .. import cluster, configs, procs
from ..layout import LabError, Layout, Node
from .registry import Ctx


def roles(lay: Layout) -> dict[str, str | None]:
    out = {}
    for n in lay.nodes:
        st = cluster.member_status(n)
        out[n.name] = st.get("role") if st else None
    return out


def leader(lay: Layout) -> Node:
    for name, role in roles(lay).items():
        if role in ("primary", "master"):
            return lay.node(name)
    raise LabError("the lab has no leader right now; run `pgdoctor lab heal` first")


def leader_among(lay: Layout, nodes: list[Node]) -> str | None:
    for n in nodes:
        if (cluster.member_status(n) or {}).get("role") in ("primary", "master"):
            return n.name
    return None


def replicas(lay: Layout) -> list[Node]:
    return [lay.node(k) for k, r in roles(lay).items() if r == "replica"]


def sql(n: Node, query: str, params=None, fetch: bool = False, timeout: int = 5):
    import psycopg
    try:
        with psycopg.connect(n.dsn(connect_timeout=timeout), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if fetch else None
    except psycopg.Error as exc:
        raise LabError(f"SQL on {n.name} failed: {str(exc).strip().splitlines()[0]}") from None


def try_sql(n: Node, query: str, params=None) -> None:
    """SQL in a healer: the cluster may be half up, so a failure is not an error."""
    with contextlib.suppress(LabError):
        sql(n, query, params)


def try_on_leader(lay: Layout, query: str) -> None:
    """SQL on whichever member leads, in a healer: no leader or a failure is not an error."""
    with contextlib.suppress(LabError):
        sql(leader(lay), query)


def patronictl(lay: Layout, *args: str, timeout: float = 60) -> str:
    cp = procs.run([*lay.patronictl_argv(), *args], timeout=timeout)
    return cp.stdout


def patch_config(lay: Layout, patch: dict) -> None:
    """PATCH the dynamic configuration (the DCS /config key) through a member's REST API."""
    last = None
    for n in lay.nodes:
        try:
            r = requests.patch(f"{n.rest_url}/config", json=patch, timeout=5)
            if r.status_code == 200:
                return
            last = f"{n.name}: HTTP {r.status_code} {r.text.strip()[:200]}"
        except requests.RequestException as exc:
            last = f"{n.name}: {exc}"
    raise LabError(f"could not change the dynamic configuration: {last}")


def pending_members(lay: Layout) -> list[str]:
    """The members whose Patroni says they wait for a restart to apply a parameter."""
    return [n.name for n in lay.nodes if (cluster.member_status(n) or {}).get("pending_restart")]


def restart_pending(lay: Layout, timeout: float = 60) -> bool:
    """Restart the members that wait for a restart (a healer that dropped a restart-only parameter leaves
    them so), as an operator would; best effort. True when there were any."""
    if not pending_members(lay):
        return False
    with contextlib.suppress(LabError):
        patronictl(lay, "restart", lay.scope, "--pending", "--force", timeout=120)
        wait_until(lambda: not pending_members(lay), timeout, "pending_restart to clear after patronictl restart --pending")
    return True


def restore_dynamic_config(lay: Layout) -> None:
    """Patch the DCS /config back to the healthy lab's values (best effort: used by healers)."""
    with contextlib.suppress(LabError):
        patch_config(lay, configs.baseline_dynamic_config())


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except LabError:
            pass
        time.sleep(0.3)
    raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")


def member_names(lay: Layout) -> list[str]:
    return [m["name"] for m in (cluster.cluster_view(lay) or {}).get("members", [])]


def rm_data_dir(n: Node) -> None:
    if n.data_dir.exists():
        shutil.rmtree(n.data_dir)


def reclone(lay: Layout, n: Node, config: bool = False) -> str:
    """Stop ``n``, unmount and remove its data dir (and rewrite its healthy config when ``config``):
    the ``cluster.up`` at the end of ``heal`` starts its Patroni, which clones it from the leader."""
    cluster.stop_member(n)
    for mnt in reversed(cluster.mounts_under(n.data_dir)):
        procs.run(["umount", mnt], check=False)
    rm_data_dir(n)
    if config:
        configs.write(lay, n)
    return f"re-cloned {n.name}" + (f" with its healthy {n.config}" if config else "")


def restore_configs(lay: Layout, reload: bool = True) -> None:
    """Write every node's healthy config back; reload Patronis that run."""
    for n in lay.nodes:
        configs.write(lay, n)
        if reload and cluster.patroni_pid(n):
            cluster.reload_patroni(n)


def start_foreign_listener(ctx: Ctx, n: Node, port: int) -> int:
    """A process that is not PostgreSQL or Patroni holding ``n``'s address:port."""
    log = ctx.lay.base_dir / f"foreign-listener-{n.name}-{port}.log"
    argv = ["/usr/bin/python3", "-m", "http.server", "--bind", n.address, str(port),
            "--directory", str(ctx.lay.base_dir / n.name / "log")]
    pid = procs.spawn(argv, log, None, as_postgres=False, cwd=ctx.lay.base_dir)
    ctx.add_extra_pid(pid, "http.server")
    wait_until(lambda: procs.port_accepts(n.address, port), 10, f"the listener on {n.address}:{port}")
    return pid


def stop_extra_pids(lay: Layout) -> None:
    for pid, match in cluster.extra_pids(lay):
        procs.stop_pid(pid, match, grace=5)


def sigcont_patroni(n: Node) -> None:
    pid = procs.read_pidfile(n.patroni_pidfile)
    if procs.alive(pid, str(n.config)):
        procs.signal_pid(pid, signal.SIGCONT)


def pause_replay(ctx: Ctx) -> Node:
    """Maintenance mode on (so Patroni leaves the replica alone), then WAL replay paused on the target
    replica, which keeps receiving WAL; returns the leader."""
    ld = leader(ctx.lay)
    patronictl(ctx.lay, "pause", "--wait")
    sql(ctx.node, "SELECT pg_wal_replay_pause()")
    return ld


def resume(lay: Layout) -> None:
    view = cluster.cluster_view(lay)
    if view and view.get("pause"):
        patronictl(lay, "resume", "--wait")
