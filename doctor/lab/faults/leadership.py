"""Faults of who leads the cluster: a stuck or failed bootstrap, maintenance mode, no member that may
take over, no leader at all."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time

from .. import cluster, configs, procs
from ..layout import LabError, Layout
from .helpers import patronictl, reclone, replicas, restore_configs, resume, rm_data_dir, wait_until
from .logs import log_marks, patroni_logs, symptom
from .registry import Ctx, fault, healer


def wipe_cluster(ctx: Ctx) -> None:
    """Stop every member, delete the cluster's DCS keys and every data dir: the next Patroni to start
    bootstraps a new cluster. The log marks are taken again, after the shutdown lines."""
    lay = ctx.lay
    for m in lay.nodes:
        cluster.stop_member(m)
    cluster.etcdctl(lay, "del", "--prefix", lay.dcs_prefix)
    for m in lay.nodes:
        rm_data_dir(m)
    ctx.state["log_marks"] = log_marks(lay)
    ctx.save()


@fault("initialize-key-stuck", "fresh cluster: the bootstrapping Patroni and its initdb are "
       "SIGKILLed while initdb runs, so /initialize stays and no leader exists", target="node1")
def _b_initkey(ctx: Ctx) -> None:
    import psutil

    lay, n = ctx.lay, ctx.node
    wipe_cluster(ctx)
    pid = cluster.start_patroni(lay, n)
    killed = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            kids = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            kids = []
        if any("initdb" in procs.cmdline(k.pid) for k in kids):
            killed = [pid] + [k.pid for k in kids]
            for v in killed:
                procs.signal_pid(v, signal.SIGKILL)
            break
        time.sleep(0.01)
    if not killed:
        raise LabError("initdb was not seen running within 30s; cannot produce the fault")
    time.sleep(0.5)
    key = cluster.etcdctl(lay, "get", lay.dcs_prefix + "initialize", check=False).stdout.strip()
    others = [m for m in lay.nodes if m.name != n.name]
    for m in others:
        cluster.start_patroni(lay, m)
    ctx.details.update(killed_pids=killed, initialize_key=key.splitlines(),
                       started=[m.name for m in others], stopped=n.name)
    symptom(ctx, r"waiting for leader to bootstrap", patroni_logs(others[0]))


@healer("initialize-key-stuck")
def _h_initkey(ctx: Ctx) -> str:
    lay = ctx.lay
    for m in lay.nodes:
        cluster.stop_member(m)
    reclone(lay, ctx.node)
    cluster.etcdctl(lay, "del", lay.dcs_prefix + "initialize")
    return (f"stopped all members, emptied {ctx.node.data_dir}, deleted "
            f"{lay.dcs_prefix}initialize, started all")


def _failed_dirs(lay: Layout) -> list:
    return [m.data_dir.with_name(m.data_dir.name + ".failed") for m in lay.nodes]


@fault("bootstrap-failed", "fresh cluster: the bootstrapping member's pg_hba has only the replication "
       "line, so initdb succeeds but post_bootstrap cannot connect; Patroni removes the initialize key, "
       "renames the data dir to data.failed and exits", target="node1")
def _b_bootstrap(ctx: Ctx) -> None:
    lay, n = ctx.lay, ctx.node
    wipe_cluster(ctx)
    hba = [line for line in configs.default_pg_hba(lay) if " replication " in line]
    configs.write(lay, n, configs.NodeOptions(pg_hba=hba))
    cluster.start_patroni(lay, n)
    ctx.details.update(pg_hba=hba, config=str(n.config), others_stopped=[m.name for m in lay.nodes if m.name != n.name])
    # Patroni logs "removing initialize key", stops PostgreSQL, then renames the data dir: the rename is the
    # last step of the failure, so waiting for it leaves nothing of the sequence still to come.
    symptom(ctx, r"renaming data directory to", patroni_logs(n), 60)


@healer("bootstrap-failed")
def _h_bootstrap(ctx: Ctx) -> str:
    lay = ctx.lay
    for m in lay.nodes:
        cluster.stop_member(m)
    for d in _failed_dirs(lay):
        if d.exists():
            shutil.rmtree(d)
    reclone(lay, ctx.node, config=True)
    cluster.etcdctl(lay, "del", "--prefix", lay.dcs_prefix)
    return f"restored {ctx.node.config}, removed the data.failed dirs and the DCS keys, bootstrapped anew"


@fault("cluster-paused", "maintenance mode on (patronictl pause)", target="cluster")
def _b_pause(ctx: Ctx) -> None:
    out = patronictl(ctx.lay, "pause", "--wait")
    ctx.details.update(patronictl=out.strip())
    symptom(ctx, r"PAUSE: no action", patroni_logs(ctx.lay.nodes[0]), 15)


@healer("cluster-paused")
def _h_pause(ctx: Ctx) -> str:
    resume(ctx.lay)
    return "patronictl resume"


def _tag_nofailover(ctx: Ctx) -> list:
    """Tag every replica nofailover: true in its patroni.yml and reload; wait for /cluster to show it."""
    lay = ctx.lay
    reps = replicas(lay)
    for n in reps:
        configs.write(lay, n, configs.NodeOptions(tags={"nofailover": True}))
        cluster.reload_patroni(n)

    def tagged():
        members = (cluster.cluster_view(lay) or {}).get("members", [])
        return sum(1 for m in members if (m.get("tags") or {}).get("nofailover")) == len(reps)

    wait_until(tagged, 30, "the nofailover tags to show in /cluster")
    ctx.details.update(tagged=[n.name for n in reps])
    return reps


@fault("no-failover-candidate", "both replicas tagged nofailover: true in their patroni.yml and "
       "reloaded", target="cluster")
def _b_nofail(ctx: Ctx) -> None:
    _tag_nofailover(ctx)


@fault("no-leader", "both replicas tagged nofailover: true, then the leader's Patroni stopped "
       "(it releases the leader key): no member may take it", variant="nofailover", target="leader")
def _b_noleader(ctx: Ctx) -> None:
    lay, old = ctx.lay, ctx.node
    reps = _tag_nofailover(ctx)
    cluster.stop_member(old)

    def leaderless():
        view = cluster.cluster_view(lay) or {}
        return bool(view.get("members")) and not any(m.get("role") == "leader" for m in view["members"])

    wait_until(leaderless, configs.TTL + 15, "the leader key to go")
    ctx.details.update(stopped=old.name, config=str(reps[0].config) if reps else None)
    time.sleep(configs.LOOP_WAIT + 1)  # let the replicas run a loop without a leader


@healer("no-failover-candidate", "no-leader.nofailover")
def _h_nofail(ctx: Ctx) -> str:
    lay = ctx.lay
    restore_configs(lay)

    def untagged():
        members = (cluster.cluster_view(lay) or {}).get("members", [])
        return bool(members) and not any((m.get("tags") or {}).get("nofailover") for m in members)

    with contextlib.suppress(LabError):
        wait_until(untagged, 30, "the nofailover tags to disappear from /cluster")
    return "removed the nofailover tags and reloaded"
