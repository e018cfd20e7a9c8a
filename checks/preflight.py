"""The pre-bootstrap checklist (profile ``preflight``): what must hold before Patroni first starts.

Pure functions of the facts that ``doctor/collect/preflight.py`` and the shared ``dcs`` and
``system`` collectors gather. The data dir, ports, disk and config items are the
foundation's checks (they carry profile ``preflight`` too); this module adds the items
only a node about to bootstrap needs.
"""

from __future__ import annotations

import os
from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn
from doctor.model.node import WILDCARDS, is_loopback
from doctor.model.processes import node_patroni
from doctor.model.resolved import as_resolved, node_data_dir

PATRONI_MIN = (3, 0)
ETCD_WARN_BELOW = (3, 4)


def _version_tuple(text: Any) -> tuple[int, ...]:
    parts = []
    for p in str(text or "").split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)




def _hosts_overlap(a: list[str], b: list[str]) -> bool:
    """Would listeners on address lists ``a`` and ``b`` collide on the same port?"""
    norm = lambda hs: {"127.0.0.1" if h == "localhost" else h for h in hs}  # noqa: E731
    a, b = norm(a or ["*"]), norm(b or ["*"])
    return bool(a & set(WILDCARDS) or b & set(WILDCARDS) or a & b)


def _pf(ctx: CheckContext, key: str) -> Any:
    return ctx.facts.get(f"preflight.{key}") or {}


# --------------------------------------------------------------------------- PostgreSQL


@check("preflight.pg-binaries", "PostgreSQL server binaries and their version", playbook="preflight-pg-binaries",
       profiles=("preflight",), needs=("preflight.pg_binaries",))
def pg_binaries(ctx: CheckContext) -> Verdict:
    b = _pf(ctx, "pg_binaries")
    bin_dir = b.get("bin_dir")
    values = {"bin_dir": bin_dir or "", "configured_bin_dir": b.get("configured_bin_dir") or ""}
    if not bin_dir:
        return fail("no PostgreSQL server binaries found: postgresql.bin_dir is not set and none of "
                    f"{', '.join(b.get('searched') or [])} holds a postgres executable",
                    values={**values, "not_found": True})
    if not b.get("found"):
        return fail(f"postgresql.bin_dir {bin_dir} does not exist", values={**values, "not_found": True})
    if b.get("missing"):
        return fail(f"{bin_dir} lacks {', '.join(b['missing'])}; Patroni needs them to bootstrap, clone and rewind",
                    values={**values, "missing": b["missing"]}, evidence=[f"looked in {bin_dir} ({b.get('source')})"])
    major = b.get("major")
    if not major:
        return fail(f"{bin_dir}/postgres --version did not say which PostgreSQL it is: "
                    f"{b.get('version_text') or (b.get('version_error') or {}).get('message')}", values=values)
    data_major = ctx.facts.get("system.datadir.pg_version")
    evidence = [f"{bin_dir}/postgres --version: {b.get('version_text')}"]
    if data_major and str(data_major).split(".")[0] != str(major):
        return fail(f"{bin_dir} is PostgreSQL {major}, but {ctx.node.data_dir} holds a PostgreSQL {data_major} "
                    "cluster (PG_VERSION); these binaries cannot start it",
                    evidence=evidence, values={**values, "major": major, "data_major": data_major})
    return ok(f"PostgreSQL {b.get('version')} server binaries in {bin_dir} ({b.get('source')})", evidence=evidence)


def _cluster_conflicts(ctx: CheckContext, clusters: list[dict[str, Any]]) -> list[str]:
    node = ctx.node
    data_dir = node_data_dir(ctx.facts, node)
    out = []
    for c in clusters:
        if c.get("start", "auto") != "auto":
            continue
        hosts = [h.strip() for h in str(c.get("listen_addresses") or "localhost").split(",")]
        if data_dir and as_resolved(c.get("data_directory"), c.get("data_directory_realpath")) == data_dir:
            out.append(f"cluster {c['version']}/{c['name']} uses this node's data dir {data_dir}")
        elif c.get("port") == node.pg_port and _hosts_overlap(hosts, node.pg_hosts):
            out.append(f"cluster {c['version']}/{c['name']} listens on {','.join(hosts)}:{c.get('port')}, "
                       f"which collides with this node's {','.join(node.pg_hosts) or '*'}:{node.pg_port}")
    return out


@check("preflight.pg-service", "the distribution's postgresql service neither runs nor starts at boot",
       playbook="preflight-pg-service", profiles=("preflight",), needs=("preflight.pg_service",))
def pg_service(ctx: CheckContext) -> Verdict:
    s = _pf(ctx, "pg_service")
    name = s.get("name") or "postgresql"
    clusters = s.get("clusters") or []
    auto = [c for c in clusters if c.get("start", "auto") == "auto"]
    values = {"service": name, "systemd": bool(s.get("systemd_booted")),
              "start_confs": [f"/etc/postgresql/{c['version']}/{c['name']}/start.conf" for c in auto],
              "clusters": [f"{c['version']}/{c['name']}" for c in auto]}
    if not s.get("installed"):
        return ok(f"the distribution's {name} service is not installed")
    postmasters = ctx.facts.get("system.processes.postmasters") or []
    cluster_dirs = {as_resolved(c["data_directory"], c.get("data_directory_realpath")): c
                    for c in clusters if c.get("data_directory")}
    running = [(pm, cluster_dirs[pm["data_dir"]]) for pm in postmasters if pm.get("data_dir") in cluster_dirs]
    evidence = []
    if s.get("enabled_source"):
        evidence.append(f"{s['enabled_source']}: {s.get('enabled_text') or ('enabled' if s.get('enabled') else 'disabled')}")
    if s.get("rc_start_links"):
        evidence.append("start links: " + " ".join(s["rc_start_links"]))
    for c in clusters:
        evidence.append(f"cluster {c['version']}/{c['name']}: start.conf {c.get('start')}, port {c.get('port')}, "
                        f"listen_addresses {c.get('listen_addresses')}, data {c.get('data_directory')}")
    if s.get("active") or running:
        what = (f"is active ({s.get('active_source')})" if s.get("active") else
                "runs: " + ", ".join(f"cluster {c['version']}/{c['name']} pid {pm['pid']}" for pm, c in running))
        return fail(f"the distribution's {name} service {what}; it starts PostgreSQL outside Patroni",
                    evidence=evidence, values={**values, "running": True})
    activity = "" if s.get("systemd_booted") else \
        " (no systemd here, so whether it is active cannot be told from systemctl; no postmaster of its clusters runs)"
    if s.get("enabled") is None:
        return warn(f"cannot tell whether the {name} service starts at boot{activity}", evidence=evidence, values=values)
    if not s.get("enabled"):
        return ok(f"the {name} service is installed but disabled{activity}", evidence=evidence)
    if not auto:
        return ok(f"the {name} service is enabled but starts no cluster (every start.conf is manual or disabled)",
                  evidence=evidence)
    conflicts = _cluster_conflicts(ctx, clusters)
    names = ", ".join(values["clusters"])
    if conflicts:
        return fail(f"the {name} service is enabled and at boot would start {names} behind Patroni's back: "
                    + "; ".join(conflicts), evidence=evidence, values=values)
    return warn(f"the {name} service is enabled: at boot it starts {names}, a PostgreSQL outside Patroni "
                f"(no collision with this node's port {ctx.node.pg_port} or data dir){activity}",
                evidence=evidence, values=values)


# --------------------------------------------------------------------------- Patroni


@check("preflight.patroni-installed", "Patroni installed, version 3.0 or later, runnable by the postgres user",
       playbook="preflight-patroni-missing", profiles=("preflight",), needs=("preflight.patroni",))
def patroni_installed(ctx: CheckContext) -> Verdict:
    p = _pf(ctx, "patroni")
    pg_user = _pf(ctx, "pg_user") or ctx.node.pg_user
    if not p.get("found"):
        return fail("Patroni is not installed: no patroni executable in " + ", ".join(p.get("searched") or ["$PATH"]),
                    values={"not_found": True})
    exe, version = p.get("executable"), p.get("version")
    values = {"patroni": exe, "patroni_version": version, "python": p.get("python") or "",
              "venv": os.path.dirname(os.path.dirname(exe)) if exe else ""}
    evidence = [f"{exe} --version: {p.get('version_text')}"] + [f"also found: {c}" for c in (p.get("candidates") or [])[1:]]
    if not version:
        return fail(f"{exe} --version gave no version: {p.get('version_text') or (p.get('version_error') or {}).get('message')}",
                    evidence=evidence, values=values)
    usable = p.get("python_usable_by_pg_user") or {}
    if usable and usable.get("ok") is False:
        return fail(f"Patroni's interpreter {p.get('python')} cannot be run by {pg_user}: "
                    f"{usable.get('blocked_at') or (usable.get('error') or {}).get('message')} blocks it "
                    "(a venv built from an interpreter under a private home dir)", evidence=evidence,
                    values={**values, "blocked_at": usable.get("blocked_at"), "unusable": True})
    if _version_tuple(version) < PATRONI_MIN:
        return warn(f"Patroni {version} at {exe} is older than 3.0 (no etcd3 lease fixes, no replication_state)",
                    evidence=evidence, values={**values, "old": True})
    return ok(f"Patroni {version} at {exe}", evidence=evidence)


@check("preflight.patroni-etcd3", "Patroni's etcd3 support importable", playbook="preflight-patroni-etcd3",
       profiles=("preflight",), needs=("preflight.patroni",))
def patroni_etcd3(ctx: CheckContext) -> Verdict:
    p = _pf(ctx, "patroni")
    if not p.get("found"):
        return skip("Patroni is not installed")
    e = p.get("etcd3") or {}
    exe = p.get("executable") or "patroni"
    values = {"patroni": exe, "python": p.get("python") or "",
              "venv": os.path.dirname(os.path.dirname(exe)), "import_error": e.get("detail")}
    if e.get("ok"):
        return ok(f"{p.get('python')} imports patroni.dcs.etcd3 ({e.get('detail')})")
    return fail(f"{p.get('python')} cannot import Patroni's etcd3 DCS: {e.get('detail')}; "
                "Patroni would stop with \"Can not find suitable configuration of distributed configuration store\"",
                values=values)


@check("preflight.patroni-unit", "the patroni systemd unit is installed", playbook="preflight-patroni-unit",
       profiles=("preflight",), needs=("preflight.patroni",))
def patroni_unit(ctx: CheckContext) -> Verdict:
    p = _pf(ctx, "patroni")
    u = p.get("unit") or {}
    pg_user = _pf(ctx, "pg_user") or ctx.node.pg_user
    values = {"patroni": p.get("executable") or "/usr/local/bin/patroni", "unit_path": "/etc/systemd/system/patroni.service"}
    if not u:
        return skip("Patroni is not installed, so its unit was not looked for")
    if u.get("paths"):
        path = u["paths"][0]
        problems = []
        cfg = ctx.node.config_path
        if u.get("exec_start") and cfg and cfg not in u["exec_start"]:
            problems.append(f"ExecStart ({u['exec_start']}) does not name {cfg}")
        if u.get("user") and u["user"] != pg_user:
            problems.append(f"User={u['user']}, not {pg_user}")
        if problems:
            return warn(f"{path}: " + "; ".join(problems), values={**values, "unit_path": path, "unit_wrong": True})
        return ok(f"{path} (User={u.get('user') or 'root!'}, ExecStart={u.get('exec_start')})")
    where = ", ".join(u.get("searched") or [])
    if not u.get("systemd_booted"):
        return warn(f"no patroni.service in {where}, and this machine does not run systemd (PID 1 is another "
                    "init): cannot tell how Patroni will be started here", values={**values, "no_systemd": True})
    return fail(f"no patroni.service in {where}: `systemctl start patroni` will fail", values=values)


# --------------------------------------------------------------------------- config


@check("preflight.config-readable", "the postgres user can read the config", playbook="preflight-config-unreadable",
       profiles=("preflight",), needs=("preflight.config_access",))
def config_readable(ctx: CheckContext) -> Verdict:
    a = _pf(ctx, "config_access")
    path, user = a.get("path"), a.get("user") or ctx.node.pg_user
    if a.get("error"):
        return fail(f"cannot tell whether {user} can read {path}: {a['error'].get('message')}",
                    values={"pg_user": user, "config_path": path, "no_user": True})
    blocked = next((c for c in a.get("chain") or [] if c.get("error") or not c.get("allowed")), None)
    values = {"pg_user": user, "config_path": path, "config_dir": os.path.dirname(path or "/")}
    if blocked:
        what = "read" if blocked["path"] == path else "enter"
        return fail(f"{user} cannot {what} {blocked['path']} (mode {blocked.get('mode')}, owner {blocked.get('owner')}), "
                    f"so Patroni running as {user} cannot read {path}",
                    evidence=[f"{c['path']}: {c.get('mode')} {c.get('owner')} needs {c.get('needs')} -> "
                              f"{'ok' if c.get('allowed') else 'DENIED'}" for c in a.get("chain") or []],
                    values={**values, "blocked_at": blocked["path"], "blocked_is_file": blocked["path"] == path})
    mode = a.get("mode") or ""
    if mode and int(mode, 8) & 0o004:
        return warn(f"{path} is mode {mode}: every local user can read the passwords in it",
                    values={**values, "world_readable": True})
    return ok(f"{user} can read {path} (mode {mode})")


@check("preflight.connect-addresses", "connect addresses reachable from the peers", playbook="config-invalid",
       profiles=("preflight",), needs=("preflight.peers", "config.data"))
def connect_addresses(ctx: CheckContext) -> Verdict:
    from doctor.model.node import split_host_port
    remote = [p["host"] for p in _pf(ctx, "peers") or [] if p.get("host") and not p.get("self")
              and not is_loopback(p["host"])]
    if not remote:
        return ok("every peer is on this host's loopback; loopback connect addresses can work"
                  if _pf(ctx, "peers") else "no peers given (--peer); not judged")
    bad = []
    for key in ("restapi", "postgresql"):
        hosts, _ = split_host_port(ctx.node.get(key, "connect_address"))
        bad += [f"{key}.connect_address {h}" for h in hosts if is_loopback(h) or h in WILDCARDS]
    if bad:
        return fail(f"{ctx.node.config_path}: {', '.join(bad)} cannot be reached from the peers "
                    f"({', '.join(remote[:3])}); use this host's own address",
                    values={"problems": [*bad, f"peers {', '.join(remote[:3])} are on other hosts"]})
    return ok(f"connect addresses are not loopback; peers {', '.join(remote[:3])} can reach them")


# --------------------------------------------------------------------------- data dir plan


@check("preflight.datadir-plan", "what Patroni will do with the data dir (bootstrap, clone, adopt)",
       playbook="datadir-not-empty", profiles=("preflight",), needs=("system.datadir",))
def datadir_plan(ctx: CheckContext) -> Verdict:
    d = ctx.facts.get("system.datadir") or {}
    path = d.get("path")
    if not path:
        return skip("postgresql.data_dir is not set")
    scope = ctx.node.scope
    dcs = ctx.facts.get("dcs") or {}
    if not dcs.get("keys_read"):
        return skip(f"the DCS could not be read, so whether cluster {scope} is initialised is unknown")
    init = dcs.get("initialize")
    initialised = init is not None
    has_data = bool(d.get("has_pg_version"))
    count = d.get("entry_count") or 0
    live = node_patroni(ctx.facts, ctx.node)
    if not initialised:
        if not d.get("exists") or count == 0:
            return ok(f"cluster {scope} is not initialised in the DCS: this node may bootstrap it (initdb into {path})")
        if has_data:
            return warn(f"cluster {scope} is not initialised in the DCS, but {path} already holds a PostgreSQL "
                        f"{d.get('pg_version')} cluster: Patroni will adopt it instead of running initdb",
                        evidence=[f"ls {path}: {' '.join(d.get('entries') or [])}"],
                        values={"data_dir": path, "entries": d.get("entries") or [], "adopt": True})
        return ok(f"cluster {scope} is not initialised in the DCS: this node will bootstrap once {path} is emptied "
                  "(see datadir.empty)")
    sysid = init or "(empty: a bootstrap is under way or died)"
    if not d.get("exists") or count == 0:
        return ok(f"cluster {scope} is already initialised (system id {sysid}): this node will clone into {path} "
                  f"from the leader {dcs.get('leader') or '(none yet)'}")
    if has_data:
        if live:
            return ok(f"{path} holds this live member's data (PostgreSQL {d.get('pg_version')}); cluster {scope} "
                      f"system id {sysid}")
        return warn(f"cluster {scope} is already initialised (system id {sysid}) and {path} holds a PostgreSQL "
                    f"{d.get('pg_version')} cluster: Patroni will start it as a member; if it is not a copy of this "
                    "cluster it will fail with a system id mismatch — empty it to clone instead",
                    evidence=[f"ls {path}: {' '.join((d.get('entries') or [])[:20])}"],
                    values={"data_dir": path, "entries": d.get("entries") or [], "stale_data": True})
    return ok(f"cluster {scope} is already initialised (system id {sysid}): this node will clone into {path}, "
              "once its stray files are gone (see datadir.empty)")


# --------------------------------------------------------------------------- etcd


def _etcd_line(e: dict[str, Any]) -> str:
    if e.get("error"):
        return f"{e['url']}: {e['error'].get('kind')}: {e['error'].get('message')} ({e.get('latency_ms')} ms)"
    return (f"{e['url']}: healthy={e.get('health')}, etcd {e.get('version')}, "
            f"{'leader' if e.get('is_leader') else 'follower'}, raft term {e.get('raft_term')}, {e.get('latency_ms')} ms")


def _member_verdict(e: dict[str, Any], names: dict[str, str]) -> Verdict:
    url = e.get("url")
    if e.get("ok"):
        return ok(f"etcd member {names.get(str(e.get('member_id')), '?')} at {url} (not in the config) healthy: "
                  f"etcd {e.get('version')}, {e.get('latency_ms')} ms", subject=url)
    err = e.get("error") or {"kind": "unhealthy", "message": e.get("health_reason") or "not healthy"}
    # Whether the rest still has a quorum is the dcs.reachable item; one member down is a warning.
    return warn(f"etcd member at {url} (not in the config) is not healthy: {err.get('kind')}: {err.get('message')}",
                evidence=[_etcd_line(e)], values={"endpoint": url, "down_endpoints": url}, subject=url)


def _member_names(ctx: CheckContext) -> dict[str, str]:
    return {str(m.get("id")): m.get("name") or str(m.get("id")) for m in ctx.facts.get("dcs.members_etcd") or []}


@check("preflight.etcd-cluster", "every etcd cluster member is healthy (endpoint health --cluster)",
       playbook="dcs-unreachable", profiles=("preflight",), needs=("dcs", "preflight"), errors_ok=True)
def etcd_cluster(ctx: CheckContext) -> list[Verdict] | Verdict:
    dcs = ctx.facts.get("dcs") or {}
    members = dcs.get("members_etcd")
    if not members:
        return skip("the etcd member list could not be read (no endpoint answered)")
    extra = _pf(ctx, "etcd_extra_members") or []
    names = _member_names(ctx)
    configured = {u.rstrip("/") for u in dcs.get("endpoint_urls") or []}
    out = [_member_verdict(e, names) for e in extra]
    unlisted = [m for m in members if not {u.rstrip("/") for u in m.get("client_urls") or []} & configured]
    if not out:
        out.append(ok(f"the config lists every member of the etcd cluster "
                      f"({', '.join(m.get('name') or '?' for m in members)}); their health is the endpoints' item"))
    elif unlisted:
        out.append(ok(f"etcd members not in the config: {', '.join(m.get('name') or '?' for m in unlisted)} "
                      "(Patroni finds them through the member list)"))
    return out


@check("preflight.etcd-version", "etcd version suits Patroni's etcd3 DCS", playbook="preflight-etcd-version",
       profiles=("preflight",), needs=("dcs",), errors_ok=True)
def etcd_version(ctx: CheckContext) -> Verdict:
    dcs = ctx.facts.get("dcs") or {}
    probes = list(dcs.get("endpoints") or []) + list(_pf(ctx, "etcd_extra_members") or [])
    versions = {e["url"]: e["version"] for e in probes if e.get("version")}
    if not versions:
        return skip("no etcd endpoint answered, so its version is unknown")
    distinct = sorted(set(versions.values()), key=_version_tuple)
    values = {"etcd_versions": distinct, "lowest": distinct[0]}
    if _version_tuple(distinct[0]) < (3, 0):
        return fail(f"etcd {distinct[0]} has no v3 API; Patroni's etcd3 DCS needs etcd 3.x", values=values)
    if len(distinct) > 1:
        return warn(f"etcd members run different versions ({', '.join(distinct)}): an upgrade in progress?",
                    evidence=[f"{u}: {v}" for u, v in versions.items()], values=values)
    if _version_tuple(distinct[0]) < ETCD_WARN_BELOW:
        return warn(f"etcd {distinct[0]} is older than 3.4 (Patroni: watches need 3.1, authentication 3.3)",
                    values=values)
    return ok(f"etcd {distinct[0]} on every member that answered ({len(versions)})")


# --------------------------------------------------------------------------- peers


@check("preflight.peers", "peers reachable on PostgreSQL, REST API and etcd ports",
       playbook="preflight-peer-unreachable",
       profiles=("preflight",), needs=("preflight.peers",))
def peers(ctx: CheckContext) -> list[Verdict] | Verdict:
    specs = _pf(ctx, "peers")
    if not isinstance(specs, list) or not specs:
        return skip("no peers known: give them with --peer HOST (or a peer's patroni.yml)")
    out: list[Verdict] = []
    for p in specs:
        if p.get("error"):
            out.append(fail(f"peer {', '.join(p.get('sources') or [])} cannot be read: {p['error'].get('message')}",
                            values={"peer": "?", "bad_spec": True}))
            continue
        if p.get("self"):
            continue
        host = p["host"]
        label = host + (f" ({', '.join(p['names'])})" if p.get("names") else "")
        parts, bad, dropped, notes = [], [], [], []
        for r in p.get("probes") or []:
            port, res = r["port"], r["result"]
            parts.append(f"{port} {res} {r.get('ms')} ms")
            if res == "connected":
                continue
            if res == "refused":
                if (r["role"] == "etcd" and p.get("etcd_expected")) or (r["role"] != "etcd" and p.get("running_member")):
                    bad.append(r)
                else:
                    notes.append(f"{port} ({r['role']}) refused: reachable, nothing listens yet"
                                 + (" (not an etcd member)" if r["role"] == "etcd" else
                                    " — expected before its Patroni starts"))
            else:
                bad.append(r)
                if res == "timeout":
                    dropped.append(r)
        summary = f"peer {label}: " + ", ".join(parts)
        evidence = [f"from: {', '.join(p.get('sources') or [])}", *notes]
        if bad:
            why = []
            for r in bad:
                if r["result"] == "timeout":
                    why.append(f"{r['port']} ({r['role']}) timed out: packets dropped (firewall) or host down")
                elif r["result"] == "refused":
                    why.append(f"{r['port']} ({r['role']}) refused: its "
                               + ("etcd member" if r["role"] == "etcd" else "Patroni member in the DCS")
                               + " should be listening")
                else:
                    why.append(f"{r['port']} ({r['role']}) {r['result']}: {r.get('message')}")
            kinds = {(r["result"], r.get("message")) for r in bad}
            if len(bad) > 1 and len(kinds) == 1 and bad[0]["result"] not in ("timeout", "refused"):
                why = [f"{bad[0]['result']}: {bad[0].get('message')}"]  # one cause (DNS, no route) for every port
            out.append(fail(summary + " — " + "; ".join(why), evidence=evidence, subject=host,
                            values={"peer": host, "peer_ports": [r["port"] for r in bad],
                                    "peer_port": bad[0]["port"], "peer_role": bad[0]["role"],
                                    "dropped": bool(dropped), "refused": any(r["result"] == "refused" for r in bad)}))
        else:
            out.append(ok(summary, evidence=evidence, subject=host))
    return out or skip("the only peer given is this node itself")


# --------------------------------------------------------------------------- firewall and time


def _local_ports(ctx: CheckContext) -> list[int]:
    ports = [ctx.node.pg_port, ctx.node.rest_port]
    if _pf(ctx, "etcd_here") is True:
        ports += [2379, 2380]
    return ports


def _ufw_allows(rules: list[dict[str, Any]], port: int) -> bool:
    for r in rules:
        if r.get("action") not in ("ALLOW", "LIMIT"):
            continue
        to = str(r.get("to") or "").split()[0]
        if to in ("Anywhere",):
            return True
        spec, _, proto = to.partition("/")
        if proto and proto != "tcp":
            continue
        for item in spec.split(","):
            lo, _, hi = item.partition(":")
            if lo.isdigit() and (int(lo) == port or (hi.isdigit() and int(lo) <= port <= int(hi))):
                return True
    return False


def _nft_allows(rules: list[str], port: int) -> bool:
    import re
    for line in rules:
        if "accept" not in line or "dport" not in line:
            continue
        for m in re.finditer(r"dport\s+(\{[^}]*\}|\S+)", line):
            for item in m.group(1).strip("{} ").split(","):
                lo, _, hi = item.strip().partition("-")
                if lo.isdigit() and (int(lo) == port or (hi.isdigit() and int(lo) <= port <= int(hi))):
                    return True
    return False


@check("preflight.firewall", "the local firewall lets the cluster's ports in", playbook="preflight-firewall",
       profiles=("preflight",), needs=("preflight.firewall",))
def firewall(ctx: CheckContext) -> list[Verdict] | Verdict:
    fw = _pf(ctx, "firewall")
    ports = _local_ports(ctx)
    if not fw:
        return ok("no firewall tool (ufw, nft) on this host; nothing here filters the cluster's ports")
    out: list[Verdict] = []
    ufw = fw.get("ufw")
    if ufw:
        if not ufw.get("readable"):
            out.append(skip(f"cannot read ufw ({(ufw.get('error') or {}).get('message')}); run as root to check it"))
        elif not ufw.get("active"):
            out.append(ok("ufw is installed but inactive"))
        else:
            blocked = [p for p in ports if not _ufw_allows(ufw.get("rules") or [], p)]
            if blocked and (ufw.get("default_incoming") or "deny") in ("deny", "reject"):
                out.append(warn(f"ufw is active (incoming {ufw.get('default_incoming') or 'deny'}) and has no allow rule "
                                f"for {', '.join(f'{p}/tcp' for p in blocked)}: peers cannot reach them",
                                evidence=[f"ufw rule: {r['to']} {r['action']} {r['from']}" for r in ufw.get("rules") or []],
                                values={"blocked_ports": blocked, "tool": "ufw"}))
            else:
                out.append(ok(f"ufw allows {', '.join(f'{p}/tcp' for p in ports)}"))
    nft = fw.get("nft")
    if nft:
        if not nft.get("readable"):
            out.append(skip(f"cannot read the nftables ruleset ({(nft.get('error') or {}).get('message')})"))
        else:
            dropping = [c for c in nft.get("input_chains") or [] if c.get("policy") in ("drop", "reject")]
            if not dropping:
                out.append(ok("nftables: no input chain drops by default"))
            for c in dropping:
                blocked = [p for p in ports if not _nft_allows(c.get("rules") or [], p)]
                if blocked:
                    out.append(warn(f"nftables chain {c['chain']} drops by default and accepts none of "
                                    f"{', '.join(map(str, blocked))}/tcp", values={"blocked_ports": blocked,
                                                                                   "tool": "nft", "chain": c["chain"]}))
                else:
                    out.append(ok(f"nftables chain {c['chain']} accepts {', '.join(map(str, ports))}/tcp"))
    return out


@check("preflight.time-sync", "the clock is synchronised", playbook="preflight-time-sync",
       profiles=("preflight",), needs=("preflight.time",))
def time_sync(ctx: CheckContext) -> Verdict:
    t = _pf(ctx, "time")
    daemons = ", ".join(t.get("daemons") or []) or "none running"
    if t.get("synchronized") is True:
        return ok(f"clock synchronised ({t.get('source')}; time daemons: {daemons})")
    values = {"daemons": t.get("daemons") or [], "systemd": bool(t.get("systemd_booted"))}
    if t.get("synchronized") is False:
        how = "timedatectl says NTPSynchronized=no" if t.get("source") == "timedatectl" else \
            "the kernel marks the clock unsynchronised (adjtimex STA_UNSYNC; timedatectl unavailable)"
        return warn(f"clock not synchronised: {how}; time daemons: {daemons}. Skewed clocks confuse lease "
                    "expiry reading and log correlation across members", values=values)
    return warn(f"cannot tell whether the clock is synchronised (no timedatectl answer, no kernel state); "
                f"time daemons: {daemons}", values=values)
