"""Faults of etcd and of how Patroni talks to it."""

from __future__ import annotations

from .. import cluster, configs, procs
from .helpers import leader
from .logs import patroni_logs, symptom
from .registry import Ctx, fault, healer

DEMOTED = r"demoting self because DCS is not accessible|Demoting self"


@fault("dcs-unreachable", "all three etcd members stopped while the cluster runs; the leader "
       "demotes itself", target="cluster")
def _b_all_down(ctx: Ctx) -> None:
    ld = leader(ctx.lay)
    for n in ctx.lay.nodes:
        cluster.stop_etcd(n)
    ctx.details.update(stopped=[n.etcd_name for n in ctx.lay.nodes], leader_before=ld.name)
    symptom(ctx, DEMOTED, patroni_logs(ld))


@fault("dcs-unreachable", "two of three etcd members stopped (the one on --node stays); no quorum, "
       "the leader demotes itself", variant="quorum-lost", target="node1")
def _b_quorum(ctx: Ctx) -> None:
    ld = leader(ctx.lay)
    stopped = []
    for n in ctx.lay.nodes:
        if n.name != ctx.node.name:
            cluster.stop_etcd(n)
            stopped.append(n.etcd_name)
    ctx.details.update(stopped=stopped, still_running=ctx.node.etcd_name, leader_before=ld.name)
    symptom(ctx, DEMOTED, patroni_logs(ld))


@fault("dcs-unreachable", "etcd down, then a member's Patroni is started: it waits on etcd "
       "forever and its REST port stays closed", variant="at-start")
def _b_down_at_start(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    for m in ctx.lay.nodes:
        cluster.stop_etcd(m)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(stopped=[m.etcd_name for m in ctx.lay.nodes], started=f"patroni@{n.name}")
    symptom(ctx, r"waiting on etcd", patroni_logs(n))
    ctx.details["rest_port_open"] = procs.port_accepts(n.address, n.rest_port)


@healer("dcs-unreachable", "dcs-unreachable.quorum-lost", "dcs-unreachable.at-start")
def _h_etcd(ctx: Ctx) -> str:
    return "started the stopped etcd members"


@fault("dcs-api-mismatch", "a member's config switched from etcd3: (v3 API) to etcd: (v2 API, "
       "off in etcd 3.4) and its Patroni restarted")
def _b_api(ctx: Ctx) -> None:
    n = ctx.node
    cluster.stop_member(n)
    configs.write(ctx.lay, n, configs.NodeOptions(dcs_section="etcd"))
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(change="etcd3: replaced by etcd: in " + str(n.config))
    symptom(ctx, r"404|waiting on etcd", patroni_logs(n))


@healer("dcs-api-mismatch")
def _h_api(ctx: Ctx) -> str:
    cluster.stop_member(ctx.node)
    configs.write(ctx.lay, ctx.node)
    return f"restored etcd3: in {ctx.node.config}, restarted Patroni"
