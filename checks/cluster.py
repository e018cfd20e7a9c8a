"""The cluster's state in the DCS and on the REST APIs: the initialize key, the leader
lock, maintenance mode, system identifiers and REST reachability."""

from __future__ import annotations

from typing import Any

from doctor.checks._gates import dcs_keys
from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn
from doctor.model import model_of
from doctor.model.processes import node_patroni

BOOTSTRAP_STATES = ("initializing new cluster", "running custom bootstrap script", "starting after custom bootstrap",
                    "creating replica")


def _members_line(ctx: CheckContext) -> str:
    rows = model_of(ctx.facts).members
    return ", ".join(f"{m.name} ({m.dcs_role or '?'}, {m.state or '?'})" for m in rows) or "none"


def _prefix(ctx: CheckContext) -> str:
    return ctx.facts.dcs_prefix or ctx.node.dcs_prefix




@check("cluster.initialize-key", "no stuck initialize key", playbook="initialize-key-stuck", profiles=("run",),
       needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def initialize_key(ctx: CheckContext) -> Verdict:
    prefix = _prefix(ctx)
    init = ctx.facts.get("dcs.initialize")
    leader = ctx.facts.dcs_leader
    if init is None:
        return ok(f"{prefix}initialize is absent: the cluster is not initialised yet (nothing stuck)")
    if leader:
        return ok(f"{prefix}initialize is {init or 'empty'} and {leader} holds the leader lock")
    rows = model_of(ctx.facts).members
    # either source may be the fresher one: the member key or the member's own REST answer
    booting = [(m.name, m.state) for m in rows if m.state in BOOTSTRAP_STATES] + [
        (m["name"], m["state"]) for m in ctx.facts.dcs_members if m.get("state") in BOOTSTRAP_STATES]
    if booting:
        return ok(f"{prefix}initialize is set and {booting[0][0]} is {booting[0][1]}: a bootstrap is under way")
    if init != "":
        return ok(f"{prefix}initialize holds system identifier {init}: the cluster was initialised (see no-leader)")
    datadir = ctx.facts.datadir
    local = (f"; here {datadir.get('path')} holds {datadir.get('entry_count', 0)} entries"
             + ("" if datadir.get("has_pg_version") is not False or not datadir.get("entry_count") else
                " but is not a complete cluster") if datadir.get("exists") else "")
    return fail(f"{prefix}initialize exists with an empty value (a bootstrap began and never finished), there is no "
                f"{prefix}leader and no member is bootstrapping: members {_members_line(ctx)}{local}",
                evidence=[f"{prefix}initialize = \"\" (bootstrap started, system identifier never written)",
                          f"{prefix}leader: absent", f"DCS keys: {', '.join(ctx.facts.get('dcs.keys') or [])}"]
                + [f"member {m.name}: role {m.dcs_role}, state {m.state}" for m in rows],
                values={"initialize_key": f"{prefix}initialize", "half_made": bool(datadir.get("entry_count"))})


@check("cluster.leader", "the cluster has a leader", playbook="no-leader", profiles=("run", "replication"),
       needs=("dcs",), errors_ok=True, gates=(dcs_keys,))
def has_leader(ctx: CheckContext) -> Verdict:
    prefix = _prefix(ctx)
    model = model_of(ctx.facts)
    dcs_leader = model.dcs_leader
    pv = model.leaders
    if dcs_leader and pv.no_writable_primary:
        down = model.dcs_down
        says = [f"{n}: {v.evidence}" for n, v in pv.live.items() if v.role]
        return fail(f"no writable primary: writes blocked in cluster {ctx.node.scope}: {prefix}leader still names "
                    f"{dcs_leader}" + (f" (read from {ctx.facts.get('dcs.keys_from')}'s local copy: {down}, so possibly "
                                   "stale)" if pv.stale else "")
                    + f", but every member that answered is a replica ({'; '.join(says)})",
                    evidence=[f"{prefix}leader = {dcs_leader} (keys read {ctx.facts.get('dcs.keys_consistency')} from "
                              f"{ctx.facts.get('dcs.keys_from')})"] + [f"member {x}" for x in says]
                    + ([down] if down else []),
                    values={"members": sorted(pv.live), "dcs_leader": dcs_leader, "no_writable_primary": True})
    writable = pv.writable_leader
    if dcs_leader and not pv.trusted and writable and writable != dcs_leader:
        return warn(f"{prefix}leader names {dcs_leader}, but {writable} is the member that says it is primary "
                    f"({pv.live[writable].evidence}); the DCS view is "
                    + ("stale (etcd has no quorum)" if pv.stale else "behind the members"),
                    values={"members": sorted(pv.live), "dcs_leader": dcs_leader})
    if dcs_leader:
        if pv.stale:
            return ok(f"{dcs_leader} holds {prefix}leader (read from a quorum-less etcd member) and says it is primary "
                      f"({(pv.live[dcs_leader].evidence if dcs_leader in pv.live else '') or 'no answer'})")
        return ok(f"{dcs_leader} holds {prefix}leader")
    init = ctx.facts.get("dcs.initialize")
    if init is None and not ctx.facts.get("dcs.members"):
        return ok(f"cluster {ctx.node.scope} has no keys under {prefix} yet: not bootstrapped")
    if init == "":
        return warn(f"cluster {ctx.node.scope} has no leader while its bootstrap is unfinished "
                    f"({prefix}initialize is empty)")
    rows = model.members
    running = [m.name for m in rows if m.state in ("running", "streaming")]
    return fail(f"cluster {ctx.node.scope} has no leader: {prefix}leader is missing; members: {_members_line(ctx)}",
                evidence=[f"{prefix}initialize = {init}", f"DCS keys: {', '.join(ctx.facts.get('dcs.keys') or [])}"]
                + ([f"running PostgreSQL: {', '.join(running)}"] if running else ["no member reports a running PostgreSQL"]),
                values={"members": [m.name for m in rows]})


@check("cluster.paused", "maintenance mode is off", playbook="cluster-paused", profiles=("run", "replication"),
       needs=("dcs",), errors_ok=True)
def paused(ctx: CheckContext) -> Verdict:
    cfg = ctx.facts.dcs_config
    is_paused = cfg is not None and bool(cfg.get("pause"))
    source = f"{_prefix(ctx)}config has pause: true"
    if cfg is None:
        body = ctx.facts.dict_at("patroni_api.patroni.body")
        if not body:
            return skip("neither the DCS /config key nor this node's REST API could be read")
        is_paused, source = bool(body.get("pause")), f"{ctx.node.rest_url}/patroni says pause: true"
    if not is_paused:
        return ok(f"cluster {ctx.node.scope} is not paused")
    leader = ctx.facts.dcs_leader
    return warn(f"cluster {ctx.node.scope} is in maintenance mode ({source}): Patroni makes no automatic decision, "
                f"no failover happens if the leader{' ' + leader if leader else ''} fails",
                evidence=[source, "heartbeat lines in the Patroni log start with \"PAUSE: \""])


@check("cluster.system-id", "every member belongs to the same database system", playbook="system-id-mismatch",
       profiles=("run",), needs=("dcs",), errors_ok=True)
def system_id(ctx: CheckContext) -> list[Verdict] | Verdict:
    prefix = _prefix(ctx)
    init = ctx.facts.get("dcs.initialize") if ctx.facts.dcs_keys_read else None
    here = ctx.node.name or "this node"
    local = ctx.facts.get("postgres.controldata.system_identifier") or ctx.facts.get("postgres.system_identifier")
    ids: list[tuple[str, str, str]] = []  # (member, id, where)
    if local:
        ids.append((here, str(local), f"pg_controldata {ctx.node.data_dir}"))
    for m in model_of(ctx.facts).members:
        if m.system_identifier and m.name != here:
            ids.append((m.name, str(m.system_identifier), f"{m.name} REST /patroni"))
    login = ctx.facts.get("postgres.replication_login.identify_system.system_identifier")
    lmember = ctx.facts.get("postgres.replication_login.member")
    if login and lmember and lmember != here:
        ids.append((lmember, str(login), f"IDENTIFY_SYSTEM on {lmember}"))
    if not init:
        if not ids:
            return skip("no system identifier known (no initialize key, no local data dir)")
        reference, ref_where = ids[0][1], ids[0][2]
    else:
        reference, ref_where = str(init), f"{prefix}initialize"
    bad = [(n, i, w) for n, i, w in ids if i != reference]
    if not bad:
        return ok(f"system identifier {reference} ({ref_where}) matches " + (", ".join(sorted({n for n, _, _ in ids})) or "-"))
    return [fail(f"{n} has database system identifier {i} ({w}), but the cluster's is {reference} ({ref_where}): "
                 f"{n} belongs to a different database system",
                 evidence=[f"{w}: {i}", f"{ref_where}: {reference}"],
                 values={"member": n, "member_sysid": i, "cluster_sysid": reference, "is_here": n == here},
                 subject=n) for n, i, w in bad]


def _hung_patroni(ctx: CheckContext, here: dict[str, Any]) -> tuple[str | None, list[str]]:
    """When the REST call timed out although this node's Patroni process exists, say what that
    process is doing: a stopped (SIGSTOP, debugger) or hung Patroni holds its socket open but
    never answers, and it renews nothing in the DCS either."""
    if (here.get("error") or {}).get("kind") != "timeout":
        return None, []
    ours = node_patroni(ctx.facts, ctx.node)
    if not ours:
        return None, []
    p = ours[0]
    state = p.get("status")
    evidence = [f"Patroni pid {p['pid']} for {ctx.node.config_path}: process state {state}"]
    if state == "stopped":
        return (f"Patroni pid {p['pid']} exists but is stopped (process state T: SIGSTOP or a debugger), so it "
                "accepts connections and answers nothing"), evidence
    return (f"Patroni pid {p['pid']} runs (process state {state}) but its API does not answer in time: "
            "it is hung or overloaded"), evidence


@check("cluster.rest-api", "every member's REST API answers",
       playbook="rest-api-unreachable", profiles=("run", "replication"),
       needs=("patroni_api",), errors_ok=True)
def rest_api(ctx: CheckContext) -> list[Verdict] | Verdict:
    verdicts: list[Verdict] = []
    here = ctx.facts.dict_at("patroni_api.patroni") or {}
    url = ctx.facts.get("patroni_api.url") or ctx.node.rest_url
    if here.get("error") or here.get("status") != 200 or not isinstance(here.get("body"), dict):
        if here.get("error"):
            what = f"{here['error'].get('kind')}: {here['error'].get('message')}"
        else:
            what = f"HTTP {here.get('status')} and no Patroni status JSON: something else answers on that port"
        hung, evidence = _hung_patroni(ctx, here)
        verdicts.append(fail(f"this node's ({ctx.node.name}) Patroni REST API at {url}/patroni does not answer ({what})"
                             + (f"; {hung}" if hung else ""),
                             evidence=[f"GET {url}/patroni: {what}", *evidence],
                             values={"member": ctx.node.name, "member_api_url": url, "hung": hung,
                                     "patroni_pid": (node_patroni(ctx.facts, ctx.node) or [{}])[0].get("pid")},
                             subject=ctx.node.name))
    for m in model_of(ctx.facts).members:
        if m.name == ctx.node.name or not m.rest_error or not m.in_dcs:
            continue
        e = m.rest_error
        verdicts.append(fail(f"member {m.name} is in the DCS but its REST API {m.api_url} does not answer "
                             f"({e.get('kind')}: {e.get('message')}); the leader race treats it as not reachable",
                             evidence=[f"GET {m.api_url}: {e.get('kind')}: {e.get('message')}"],
                             values={"member": m.name, "member_api_url": m.api_url}, subject=m.name))
    return verdicts or ok("every member's REST API answers")
