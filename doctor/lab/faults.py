"""Breaking the lab for real, and healing it.

Each fault is produced the way it happens on real clusters (see the lab notes), waits (bounded)
until its real symptom shows up in the logs, and records itself in ``<base>/fault.json`` so that
:func:`heal` knows what to undo.  Only one fault is active at a time.

    from doctor.lab import faults
    info = faults.break_fault("dcs-unreachable")
    info["details"]["symptom"]     # the log line that shows it
    faults.heal()
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from . import cluster, configs, procs
from .layout import LabError, Layout, Node

SYMPTOM_TIMEOUT = 45.0


# ------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------
@dataclass
class Fault:
    id: str
    summary: str
    target: str  # "replica", "leader", "node1", "cluster": which node --node defaults to
    breaker: Callable
    healer: Callable | None = None
    variants: tuple[str, ...] = ()


FAULTS: dict[str, Fault] = {}


def fault(fid: str, summary: str, target: str = "replica", variants: tuple[str, ...] = ()):
    def deco(fn):
        FAULTS[fid] = Fault(fid, summary, target, fn, variants=variants)
        return fn
    return deco


def healer(fid: str):
    def deco(fn):
        FAULTS[fid].healer = fn
        return fn
    return deco


@dataclass
class Ctx:
    lay: Layout
    node: Node | None
    state: dict
    wait: bool = True
    variant: str | None = None
    details: dict = field(default_factory=dict)

    def save(self) -> None:
        _write_state(self.lay, self.state)

    def add_extra_pid(self, pid: int, match: str) -> None:
        self.state.setdefault("extra_pids", []).append({"pid": pid, "match": match})
        self.save()


# ------------------------------------------------------------------------------------------
# state file
# ------------------------------------------------------------------------------------------
def _write_state(lay: Layout, state: dict) -> None:
    tmp = lay.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, lay.state_file)


def read_state(lay: Layout | None = None) -> dict | None:
    lay = lay or Layout.from_env()
    try:
        return json.loads(lay.state_file.read_text())
    except (FileNotFoundError, ValueError):
        return None


def active_fault(lay: Layout | None = None) -> str | None:
    st = read_state(lay)
    return st.get("fault") if st else None


# ------------------------------------------------------------------------------------------
# logs
# ------------------------------------------------------------------------------------------
def log_files(lay: Layout) -> list[Path]:
    files = []
    for n in lay.nodes:
        files += [n.patroni_log, n.patroni_stdout, n.etcd_log, n.dir / "pg_ctl.log"]
        try:
            files += sorted(n.postgres_log_dir.iterdir())
        except OSError:
            pass
    return files


def log_marks(lay: Layout) -> dict[str, int]:
    marks = {}
    for f in log_files(lay):
        try:
            marks[str(f)] = f.stat().st_size
        except OSError:
            marks[str(f)] = 0
    return marks


def logs_since(lay: Layout, marks: dict[str, int] | None = None) -> dict[str, str]:
    """New text in each lab log file since ``marks`` (default: since the active fault began).

    A file that shrank or was recreated (e.g. a re-cloned data dir) is read from its start."""
    if marks is None:
        marks = (read_state(lay) or {}).get("log_marks", {})
    out = {}
    for f in log_files(lay):
        try:
            size = f.stat().st_size
            start = marks.get(str(f), 0)
            if start > size:
                start = 0
            if size > start:
                with open(f, "rb") as fh:
                    fh.seek(start)
                    out[str(f)] = fh.read().decode(errors="replace")
        except OSError:
            continue
    return out


def wait_log(lay: Layout, pattern: str, paths: list[Path], marks: dict[str, int],
             timeout: float = SYMPTOM_TIMEOUT) -> str | None:
    """Wait until a line matching ``pattern`` appears in one of ``paths`` after ``marks``;
    returns that line (or None after ``timeout``)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    wanted = {str(p) for p in paths}
    while True:
        for path, text in logs_since(lay, marks).items():
            if path in wanted or any(path.startswith(w.rstrip("/") + "/") for w in wanted):
                for line in text.splitlines():
                    if rx.search(line):
                        return line
        if time.monotonic() > deadline:
            return None
        time.sleep(0.3)


def _symptom(ctx: Ctx, pattern: str, paths: list[Path], timeout: float = SYMPTOM_TIMEOUT) -> None:
    if not ctx.wait:
        return
    line = wait_log(ctx.lay, pattern, paths, ctx.state["log_marks"], timeout)
    ctx.details["symptom"] = line
    ctx.details["symptom_pattern"] = pattern
    if line is None:
        ctx.details["warning"] = f"no log line matching {pattern!r} within {timeout:.0f}s"


def _plogs(n: Node) -> list[Path]:
    return [n.patroni_log, n.patroni_stdout]


def _pglogs(n: Node) -> list[Path]:
    return [n.postgres_log_dir]


# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------
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


def _rm_data_dir(n: Node) -> None:
    if n.data_dir.exists():
        shutil.rmtree(n.data_dir)


def _restore_configs(lay: Layout, reload: bool = True) -> None:
    """Write every node's healthy config back; reload Patronis that run."""
    for n in lay.nodes:
        configs.write(lay, n)
        if reload and cluster.patroni_pid(n):
            cluster.reload_patroni(n)


def _start_foreign_listener(ctx: Ctx, n: Node, port: int) -> int:
    log = ctx.lay.base_dir / f"foreign-listener-{n.name}-{port}.log"
    argv = ["/usr/bin/python3", "-m", "http.server", "--bind", n.address, str(port),
            "--directory", str(ctx.lay.base_dir / n.name / "log")]
    pid = procs.spawn(argv, log, None, as_postgres=False, cwd=ctx.lay.base_dir)
    ctx.add_extra_pid(pid, "http.server")
    wait_until(lambda: procs.port_accepts(n.address, port), 10, f"the listener on {n.address}:{port}")
    return pid


# ------------------------------------------------------------------------------------------
# break / heal
# ------------------------------------------------------------------------------------------
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
    """Produce ``fault_id`` for real on the running lab; returns what was done."""
    lay = lay or Layout.from_env()
    f = FAULTS.get(fault_id)
    if f is None:
        raise LabError(f"unknown fault {fault_id!r}; known: {', '.join(FAULTS)}")
    if variant and variant not in f.variants:
        raise LabError(f"fault {fault_id} has no variant {variant!r}"
                       + (f" (variants: {', '.join(f.variants)})" if f.variants else ""))
    current = active_fault(lay)
    if current:
        raise LabError(f"fault {current} is still active; run `pgdoctor lab heal` first")
    ok, why = cluster.health(lay)
    if not ok:
        raise LabError(f"the lab is not healthy ({why}); run `pgdoctor lab up` or `heal` first")
    target = _resolve_node(lay, f, node)
    state = {
        "fault": fault_id,
        "variant": variant,
        "node": target.name if target else None,
        "started_at": time.time(),
        "log_marks": log_marks(lay),
        "extra_pids": [],
        "details": {},
    }
    _write_state(lay, state)
    ctx = Ctx(lay, target, state, wait=wait, variant=variant)
    f.breaker(ctx)
    state["details"] = ctx.details
    _write_state(lay, state)
    return {
        "fault": fault_id,
        "variant": variant,
        "node": target.name if target else None,
        "config": str(target.config) if target else None,
        "data_dir": str(target.data_dir) if target else None,
        "patroni_log": str(target.patroni_log) if target else None,
        "postgres_log_dir": str(target.postgres_log_dir) if target else None,
        "details": ctx.details,
        "log_marks": state["log_marks"],
    }


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
        ctx = Ctx(lay, node, state, variant=state.get("variant"))
        f = FAULTS.get(fid)
        if f and f.healer:
            action = f.healer(ctx) or action
        for pid, match in cluster.extra_pids(lay):
            procs.stop_pid(pid, match, grace=5)
    try:
        lay.state_file.unlink()
    except FileNotFoundError:
        pass
    try:
        cluster.up(lay, wait=True, timeout=max(10.0, timeout - (time.monotonic() - t0)))
    except LabError as exc:
        action += f"; not healthy ({exc}), recreated the cluster from scratch"
        cluster.recreate(lay)
    return {"fault": fid, "action": action, "seconds": round(time.monotonic() - t0, 1)}


# ------------------------------------------------------------------------------------------
# the faults
# ------------------------------------------------------------------------------------------
@fault("config-invalid-yaml", "a tab in a node's patroni.yml; its Patroni is restarted and exits "
       "with a yaml ScannerError")
def _b_yaml(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    text = configs.render(ctx.lay, n)
    broken = text.replace(f"\n  listen: {n.address}:{n.rest_port}\n",
                          f"\n\tlisten: {n.address}:{n.rest_port}\n", 1)
    assert broken != text
    configs.write(ctx.lay, n, text=broken)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(config=str(n.config), change="restapi.listen indented with a tab")
    _symptom(ctx, r"^yaml\.scanner\.ScannerError|^found character", _plogs(n), 20)


@healer("config-invalid-yaml")
def _h_yaml(ctx: Ctx):
    cluster.stop_member(ctx.node)
    configs.write(ctx.lay, ctx.node)
    return f"rewrote {ctx.node.config} and restarted Patroni"


@fault("dcs-unreachable", "all three etcd members stopped while the cluster runs; the leader "
       "demotes itself", target="cluster")
def _b_dcs_unreachable(ctx: Ctx):
    ld = leader(ctx.lay)
    for n in ctx.lay.nodes:
        cluster.stop_etcd(n)
    ctx.details.update(stopped=[n.etcd_name for n in ctx.lay.nodes], leader_before=ld.name)
    _symptom(ctx, r"demoting self because DCS is not accessible|Demoting self", _plogs(ld))


@healer("dcs-unreachable")
def _h_dcs(ctx: Ctx):
    return "started the stopped etcd members"


@fault("dcs-quorum-lost", "two of three etcd members stopped (the one on --node stays); no quorum, "
       "the leader demotes itself", target="node1")
def _b_quorum(ctx: Ctx):
    ld = leader(ctx.lay)
    stopped = []
    for n in ctx.lay.nodes:
        if n.name != ctx.node.name:
            cluster.stop_etcd(n)
            stopped.append(n.etcd_name)
    ctx.details.update(stopped=stopped, still_running=ctx.node.etcd_name, leader_before=ld.name)
    _symptom(ctx, r"demoting self because DCS is not accessible|Demoting self", _plogs(ld))


FAULTS["dcs-quorum-lost"].healer = _h_dcs


@fault("dcs-down-at-start", "etcd down, then a member's Patroni is started: it waits on etcd "
       "forever and its REST port stays closed")
def _b_dcs_down_start(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    for m in ctx.lay.nodes:
        cluster.stop_etcd(m)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(stopped=[m.etcd_name for m in ctx.lay.nodes], started=f"patroni@{n.name}")
    _symptom(ctx, r"waiting on etcd", _plogs(n))
    ctx.details["rest_port_open"] = procs.port_accepts(n.address, n.rest_port)


FAULTS["dcs-down-at-start"].healer = _h_dcs


@fault("datadir-permissions", "a stopped replica's data dir set to 0755 (variant owner-root: "
       "owned by root), then its Patroni started", variants=("owner-root",))
def _b_perms(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    if ctx.variant == "owner-root":
        os.chown(n.data_dir, 0, 0)
        os.chmod(n.data_dir, 0o700)
        ctx.details["change"] = f"chown root:root {n.data_dir}"
        pattern = r"PermissionError|Permission denied"
    else:
        os.chmod(n.data_dir, 0o755)
        ctx.details["change"] = f"chmod 0755 {n.data_dir}"
        pattern = r"has invalid permissions"
    cluster.start_patroni(ctx.lay, n)
    _symptom(ctx, pattern, _plogs(n))


@healer("datadir-permissions")
def _h_perms(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    uid, gid = cluster._postgres_ids()
    if n.data_dir.exists():
        os.chown(n.data_dir, uid, gid)
        os.chmod(n.data_dir, 0o700)
    return f"chown postgres, chmod 0700 {n.data_dir}, restarted Patroni"


@fault("port-in-use-pg", "a foreign listener (python3 -m http.server) on a member's PostgreSQL "
       "address:port while its Patroni is stopped, then Patroni started")
def _b_port_pg(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    pid = _start_foreign_listener(ctx, n, n.pg_port)
    cluster.start_patroni(ctx.lay, n, check_ports=False)
    ctx.details.update(listener_pid=pid, port=f"{n.address}:{n.pg_port}")
    _symptom(ctx, r"could not bind|Address already in use", _plogs(n) + _pglogs(n))


@fault("port-in-use-rest", "a foreign listener (python3 -m http.server) on a member's REST "
       "address:port while its Patroni is stopped, then Patroni started")
def _b_port_rest(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    pid = _start_foreign_listener(ctx, n, n.rest_port)
    cluster.start_patroni(ctx.lay, n, check_ports=False)
    ctx.details.update(listener_pid=pid, port=f"{n.address}:{n.rest_port}")
    _symptom(ctx, r"there is already a node named|Address already in use", _plogs(n))


def _h_port(ctx: Ctx):
    cluster.stop_member(ctx.node)
    for pid, match in cluster.extra_pids(ctx.lay):
        procs.stop_pid(pid, match, grace=5)
    return f"stopped the foreign listener, restarted Patroni on {ctx.node.name}"


FAULTS["port-in-use-pg"].healer = _h_port
FAULTS["port-in-use-rest"].healer = _h_port


@fault("datadir-not-empty", "a replica's data dir replaced by one with stray files and no "
       "PG_VERSION, then its Patroni started (clone blocked)")
def _b_notempty(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    _rm_data_dir(n)
    n.data_dir.mkdir(mode=0o700)
    (n.data_dir / "lost+found").mkdir(mode=0o700)
    (n.data_dir / "restore-notes.txt").write_text("restored from backup host, see ticket\n")
    uid, gid = cluster._postgres_ids()
    for p in (n.data_dir, n.data_dir / "lost+found", n.data_dir / "restore-notes.txt"):
        os.chown(p, uid, gid)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(contents=["lost+found/", "restore-notes.txt"])
    _symptom(ctx, r"data dir for the cluster is not empty", _plogs(n))


@healer("datadir-not-empty")
def _h_notempty(ctx: Ctx):
    cluster.stop_member(ctx.node)
    _rm_data_dir(ctx.node)
    return f"emptied {ctx.node.data_dir}; Patroni re-cloned the replica"


@fault("initialize-key-stuck", "fresh cluster: the bootstrapping Patroni and its initdb are "
       "SIGKILLed while initdb runs, so /initialize stays and no leader exists", target="node1")
def _b_initkey(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    for m in lay.nodes:
        cluster.stop_member(m)
    cluster.etcdctl(lay, "del", "--prefix", lay.dcs_prefix)
    for m in lay.nodes:
        _rm_data_dir(m)
    ctx.state["log_marks"] = log_marks(lay)
    ctx.save()
    pid = cluster.start_patroni(lay, n)
    killed = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        import psutil
        try:
            kids = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            kids = []
        initdb = [k for k in kids if "initdb" in procs.cmdline(k.pid)]
        if initdb:
            victims = [pid] + [k.pid for k in kids]
            for v in victims:
                procs.signal_pid(v, signal.SIGKILL)
            killed = victims
            break
        time.sleep(0.01)
    if not killed:
        raise LabError("initdb was not seen running within 30s; cannot produce the fault")
    time.sleep(0.5)
    key = cluster.etcdctl(lay, "get", lay.dcs_prefix + "initialize", check=False).stdout.strip()
    for m in lay.nodes:
        if m.name != n.name:
            cluster.start_patroni(lay, m)
    ctx.details.update(killed_pids=killed, initialize_key=key.splitlines(),
                       started=[m.name for m in lay.nodes if m.name != n.name],
                       stopped=n.name)
    other = [m for m in lay.nodes if m.name != n.name][0]
    _symptom(ctx, r"waiting for leader to bootstrap", _plogs(other))


@healer("initialize-key-stuck")
def _h_initkey(ctx: Ctx):
    lay = ctx.lay
    for m in lay.nodes:
        cluster.stop_member(m)
    _rm_data_dir(ctx.node)
    cluster.etcdctl(lay, "del", lay.dcs_prefix + "initialize")
    return (f"stopped all members, emptied {ctx.node.data_dir}, deleted "
            f"{lay.dcs_prefix}initialize, started all")


@fault("replication-auth-failed", "wrong replication password in a replica's config, its data dir "
       "removed and Patroni restarted: pg_basebackup fails in a loop")
def _b_replauth(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    configs.write(ctx.lay, n, configs.NodeOptions(replication_password="not-the-password"))
    _rm_data_dir(n)
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(change="postgresql.authentication.replication.password is wrong",
                       removed=str(n.data_dir))
    _symptom(ctx, r'password authentication failed for user "replicator"', _plogs(n))


@healer("replication-auth-failed")
def _h_replauth(ctx: Ctx):
    cluster.stop_member(ctx.node)
    configs.write(ctx.lay, ctx.node)
    _rm_data_dir(ctx.node)
    return f"restored the replication password in {ctx.node.config}; re-cloned {ctx.node.name}"


@fault("pg-hba-replication-missing", "the replication line removed from the leader's pg_hba "
       "(its patroni.yml, reloaded), then a replica (--node) re-clones and is refused")
def _b_hba(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    hba = [line for line in configs.default_pg_hba(lay) if " replication " not in line]
    configs.write(lay, ld, configs.NodeOptions(pg_hba=hba))
    cluster.reload_patroni(ld)
    hba_file = ld.data_dir / "pg_hba.conf"
    wait_until(lambda: "replication" not in
               "".join(x for x in hba_file.read_text().splitlines(True) if not x.startswith("#")),
               20, f"Patroni to rewrite {hba_file}")
    time.sleep(1.0)  # let PostgreSQL reload it
    cluster.stop_member(n)
    _rm_data_dir(n)
    cluster.start_patroni(lay, n)
    ctx.details.update(leader=ld.name, leader_config=str(ld.config), pg_hba=hba,
                       recloning=n.name)
    ctx.state["leader"] = ld.name
    ctx.save()
    _symptom(ctx, r"no pg_hba.conf entry for replication connection", _plogs(n) + _pglogs(ld))


@healer("pg-hba-replication-missing")
def _h_hba(ctx: Ctx):
    _restore_configs(ctx.lay)
    return "restored pg_hba in the leader's config and reloaded; the replica re-cloned"


@fault("timeline-diverged", "pg_rewind off; the leader's walsenders SIGSTOPped, writes on it, it "
       "is SIGKILLed; another member promotes; the old leader comes back on a forked timeline",
       target="leader")
def _b_timeline(ctx: Ctx):
    lay, old = ctx.lay, ctx.node
    if roles(lay).get(old.name) not in ("primary", "master"):
        raise LabError(f"{old.name} is not the leader; timeline-diverged needs --node to be the leader")
    patch_config(lay, {"postgresql": {"use_pg_rewind": False,
                                      "remove_data_directory_on_rewind_failure": False,
                                      "remove_data_directory_on_diverged_timelines": False}})
    for n in lay.nodes:
        configs.write(lay, n, configs.NodeOptions(use_pg_rewind=False))
        cluster.reload_patroni(n)
    time.sleep(2 * configs.LOOP_WAIT + 1)
    pm = cluster.postgres_pid(old)
    senders = [p for p in procs.descendants(pm) if "walsender" in procs.cmdline(p)]
    if not senders:
        raise LabError(f"no walsender found under {old.name}'s postmaster")
    for p in senders:
        procs.signal_pid(p, signal.SIGSTOP)
    sql(old, "CREATE TABLE IF NOT EXISTS lab_diverged (id int, note text)")
    sql(old, "INSERT INTO lab_diverged SELECT g, 'only on the old leader' FROM generate_series(1, 1000) g")
    ppid = cluster.patroni_pid(old)
    kids = procs.descendants(pm)
    procs.signal_pid(ppid, signal.SIGKILL)
    procs.signal_pid(pm, signal.SIGKILL)
    for k in kids:
        procs.signal_pid(k, signal.SIGKILL)
    procs.wait_gone(pm, str(old.data_dir), 10)
    others = [n for n in lay.nodes if n.name != old.name]

    def promoted():
        r = roles(lay)
        return any(r.get(n.name) in ("primary", "master") for n in others)

    wait_until(promoted, configs.TTL + 30, "another member to take over")
    new = leader(lay)
    wait_until(lambda: (cluster.member_status(new) or {}).get("timeline", 1) >= 2, 30,
               f"{new.name} to reach a new timeline")
    sql(new, "CREATE TABLE IF NOT EXISTS lab_diverged (id int, note text)")
    sql(new, "INSERT INTO lab_diverged SELECT g, 'written on the new leader' FROM generate_series(1, 1000) g")
    sql(new, "CHECKPOINT")
    cluster.start_patroni(lay, old)
    ctx.details.update(old_leader=old.name, new_leader=new.name, stopped_walsenders=senders,
                       killed=[ppid, pm])
    _symptom(ctx, r"forked off current database system timeline", _pglogs(old), 60)


@healer("timeline-diverged")
def _h_timeline(ctx: Ctx):
    lay = ctx.lay
    cluster.stop_member(ctx.node)
    _rm_data_dir(ctx.node)
    _restore_configs(lay)
    try:
        patch_config(lay, {"postgresql": configs.baseline_dynamic_config()["postgresql"]})
    except LabError:
        pass
    try:
        sql(leader(lay), "DROP TABLE IF EXISTS lab_diverged")
    except LabError:
        pass
    return f"re-cloned {ctx.node.name} from the new leader, use_pg_rewind back on"


@fault("postgres-outside-patroni", "a member's Patroni stopped and its PostgreSQL started "
       "directly with pg_ctl as postgres")
def _b_outside(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    cluster.stop_member(n)
    pg_ctl = os.path.join(lay.bins.pg_bin, "pg_ctl")
    opts = f"-c listen_addresses={n.address} -c port={n.pg_port}"
    procs.run([pg_ctl, "-D", str(n.data_dir), "-l", str(n.dir / "pg_ctl.log"), "-o", opts,
               "-w", "-t", "30", "start"], as_postgres=True, timeout=40)
    ctx.details.update(command=f"pg_ctl -D {n.data_dir} -o '{opts}' start",
                       postgres_pid=cluster.postgres_pid(n), patroni_running=False)
    _symptom(ctx, r"database system is ready to accept", _pglogs(n), 20)


@healer("postgres-outside-patroni")
def _h_outside(ctx: Ctx):
    n = ctx.node
    pg_ctl = os.path.join(ctx.lay.bins.pg_bin, "pg_ctl")
    if cluster.postgres_pid(n):
        procs.run([pg_ctl, "-D", str(n.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                  as_postgres=True, timeout=40, check=False)
    cluster.stop_postgres(n)
    return f"stopped the pg_ctl-started PostgreSQL on {n.name}, started Patroni"


@fault("postmaster-pid-stale", "a member stopped with a postmaster.pid left behind naming a dead "
       "pid (variant live-pid: the pid of a live postgres-owned process, then Patroni started; "
       "Patroni logs 'Process N is not postmaster' and starts PostgreSQL anyway)",
       variants=("live-pid",))
def _b_stale(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    pidfile = n.data_dir / "postmaster.pid"
    content = pidfile.read_text().splitlines()
    cluster.stop_member(n)
    if ctx.variant == "live-pid":
        pid = procs.spawn(["/bin/sleep", "infinity"], lay.base_dir / "sleep.log", None,
                          as_postgres=True, cwd=n.dir)
        ctx.add_extra_pid(pid, "sleep infinity")
    else:
        p = subprocess.Popen(["/bin/true"])
        p.wait()
        pid = p.pid
    content[0] = str(pid)
    pidfile.write_text("\n".join(content) + "\n")
    os.chmod(pidfile, 0o600)
    uid, gid = cluster._postgres_ids()
    os.chown(pidfile, uid, gid)
    ctx.details.update(postmaster_pid=str(pidfile), pid_in_file=pid,
                       pid_alive=procs.alive(pid))
    if ctx.variant == "live-pid":
        cluster.start_patroni(lay, n)
        _symptom(ctx, r"is not postmaster|lock file \"postmaster.pid\" already exists",
                 _plogs(n) + _pglogs(n))


@healer("postmaster-pid-stale")
def _h_stale(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    for pid, match in cluster.extra_pids(ctx.lay):
        procs.stop_pid(pid, match, grace=5)
    pidfile = n.data_dir / "postmaster.pid"
    if pidfile.exists() and not cluster.postgres_pid(n):
        pidfile.unlink()
    return f"removed the stale {pidfile}, started Patroni"


@fault("cluster-paused", "maintenance mode on (patronictl pause)", target="cluster")
def _b_pause(ctx: Ctx):
    out = patronictl(ctx.lay, "pause", "--wait")
    ctx.details.update(patronictl=out.strip())
    _symptom(ctx, r"PAUSE: no action", _plogs(ctx.lay.nodes[0]), 15)


def _resume(lay: Layout) -> None:
    view = cluster.cluster_view(lay)
    if view and view.get("pause"):
        patronictl(lay, "resume", "--wait")


@healer("cluster-paused")
def _h_pause(ctx: Ctx):
    _resume(ctx.lay)
    return "patronictl resume"


@fault("dcs-api-mismatch", "a member's config switched from etcd3: (v3 API) to etcd: (v2 API, "
       "off in etcd 3.4) and its Patroni restarted")
def _b_dcsapi(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    configs.write(ctx.lay, n, configs.NodeOptions(dcs_section="etcd"))
    cluster.start_patroni(ctx.lay, n)
    ctx.details.update(change="etcd3: replaced by etcd: in " + str(n.config))
    _symptom(ctx, r"404|waiting on etcd", _plogs(n))


@healer("dcs-api-mismatch")
def _h_dcsapi(ctx: Ctx):
    cluster.stop_member(ctx.node)
    configs.write(ctx.lay, ctx.node)
    return f"restored etcd3: in {ctx.node.config}, restarted Patroni"


def probe_write(n: Node, wait: float = 3.0) -> dict:
    """INSERT one row on ``n`` and see whether the commit waits (on SyncRep); a waiting backend
    is cancelled with pg_cancel_backend() (statement_timeout does not end a SyncRep wait)."""
    import threading

    import psycopg

    result: dict = {}

    def writer():
        try:
            with psycopg.connect(n.dsn(), autocommit=True) as conn:
                conn.execute("SET application_name = 'pgdoctor-lab-probe'")
                conn.execute("INSERT INTO lab_sync_probe VALUES (now())")
            result["returned"] = True
        except psycopg.Error as exc:
            result["returned"] = False
            result["error"] = str(exc).strip().splitlines()[0]

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    t.join(wait)
    if t.is_alive():
        rows = sql(n, "SELECT pid, wait_event_type, wait_event FROM pg_stat_activity "
                      "WHERE application_name = 'pgdoctor-lab-probe'", fetch=True)
        result["blocked"] = True
        result["wait_event"] = rows[0][2] if rows else None
        sql(n, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
               "WHERE application_name = 'pgdoctor-lab-probe'")
        result["cancelled"] = True  # the row stays committed locally (PostgreSQL warns so)
        t.join(10)
    else:
        result["blocked"] = False
    return result


def _b_sync(ctx: Ctx, strict: bool):
    lay = ctx.lay
    ld = leader(lay)
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_sync_probe (at timestamptz)")
    patronictl(lay, "edit-config", "--force", "-s", "synchronous_mode=true",
               "-s", f"synchronous_mode_strict={'true' if strict else 'false'}",
               "-s", "synchronous_node_count=2")
    wait_until(lambda: any(m.get("role") == "sync_standby"
                           for m in (cluster.cluster_view(lay) or {}).get("members", [])),
               30, "a synchronous standby")
    reps = [n for n in lay.nodes if n.name != ld.name]
    for n in reps:
        cluster.stop_member(n)
    ctx.details.update(leader=ld.name, stopped=[n.name for n in reps], synchronous_node_count=2,
                       synchronous_mode_strict=strict)
    ctx.state["leader"] = ld.name
    ctx.save()
    if strict:
        _symptom(ctx, r"No standbys available", _plogs(ld))
    else:
        _symptom(ctx, r"Assigning synchronous standby status to \[\]", _plogs(ld), 20)
    if ctx.wait:
        ctx.details["write_probe"] = probe_write(ld)
    try:
        ctx.details["synchronous_standby_names"] = sql(ld, "SHOW synchronous_standby_names",
                                                       fetch=True)[0][0]
    except LabError as exc:
        ctx.details["synchronous_standby_names"] = str(exc)


@fault("sync-strict-unavailable", "synchronous_mode strict with synchronous_node_count 2, both "
       "replicas stopped: writes on the leader block", target="cluster")
def _b_sync_strict(ctx: Ctx):
    _b_sync(ctx, strict=True)


@fault("sync-unavailable", "synchronous_mode (not strict) with synchronous_node_count 2, both "
       "replicas stopped: the leader runs standalone", target="cluster")
def _b_sync_nonstrict(ctx: Ctx):
    _b_sync(ctx, strict=False)


def _h_sync(ctx: Ctx):
    lay = ctx.lay
    ld = lay.node(ctx.state["leader"]) if ctx.state.get("leader") else None
    if ld is not None:
        try:  # a write blocked on SyncRep would hold the leader; cancel such backends
            sql(ld, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        except LabError:
            pass
    cluster.up(lay, wait=False)
    wait_until(lambda: cluster.cluster_view(lay) is not None, 30, "a REST API")
    patronictl(lay, "edit-config", "--force", "-s", "synchronous_mode=false",
               "-s", "synchronous_mode_strict=false", "-s", "synchronous_node_count=1")
    try:
        sql(leader(lay), "DROP TABLE IF EXISTS lab_sync_probe")
    except LabError:
        pass
    return "synchronous mode off again, replicas started"


FAULTS["sync-strict-unavailable"].healer = _h_sync
FAULTS["sync-unavailable"].healer = _h_sync


@fault("replication-lag", "cluster paused, WAL replay paused on a replica, ~200k rows inserted "
       "on the leader")
def _b_lag(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    patronictl(lay, "pause", "--wait")
    sql(n, "SELECT pg_wal_replay_pause()")
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_lag (id bigint, pad text)")
    sql(ld, "INSERT INTO lab_lag SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g",
        timeout=60)
    lsn = sql(ld, "SELECT pg_current_wal_lsn()::text", fetch=True)[0][0]
    replay = sql(n, "SELECT pg_last_wal_replay_lsn()::text", fetch=True)[0][0]
    lag = sql(ld, "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)::bigint", (lsn, replay),
              fetch=True)[0][0]
    ctx.details.update(leader=ld.name, lagging=n.name, leader_lsn=lsn, replay_lsn=replay,
                       lag_bytes=int(lag))
    if ctx.wait:
        time.sleep(configs.LOOP_WAIT + 1)  # let the members publish their LSNs
        ctx.details["patronictl_list"] = patronictl(lay, "list").rstrip().splitlines()
    ctx.state["leader"] = ld.name
    ctx.save()


@healer("replication-lag")
def _h_lag(ctx: Ctx):
    lay = ctx.lay
    try:
        sql(ctx.node, "SELECT pg_wal_replay_resume()")
    except LabError:
        pass
    _resume(lay)
    try:
        sql(leader(lay), "DROP TABLE IF EXISTS lab_lag")
    except LabError:
        pass
    return f"WAL replay resumed on {ctx.node.name}, patronictl resume, lab_lag dropped"


@fault("no-failover-candidate", "both replicas tagged nofailover: true in their patroni.yml and "
       "reloaded", target="cluster")
def _b_nofail(ctx: Ctx):
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


@healer("no-failover-candidate")
def _h_nofail(ctx: Ctx):
    lay = ctx.lay
    _restore_configs(lay)

    def untagged():
        members = (cluster.cluster_view(lay) or {}).get("members", [])
        return bool(members) and not any((m.get("tags") or {}).get("nofailover") for m in members)

    try:
        wait_until(untagged, 30, "the nofailover tags to disappear from /cluster")
    except LabError:
        pass
    return "removed the nofailover tags and reloaded"


# ------------------------------------------------------------------------------------------
# more problem ids that one machine can produce
# ------------------------------------------------------------------------------------------
@fault("patroni-not-running", "a replica's Patroni SIGKILLed: its PostgreSQL keeps running "
       "without Patroni and the member key expires")
def _b_patroni_dead(ctx: Ctx):
    n = ctx.node
    pid = cluster.patroni_pid(n)
    procs.signal_pid(pid, signal.SIGKILL)
    procs.wait_gone(pid, str(n.config), 10)
    ctx.details.update(killed_patroni=pid, postgres_pid=cluster.postgres_pid(n))
    if ctx.wait:
        lay = ctx.lay
        wait_until(lambda: n.name not in [m["name"] for m in
                                          (cluster.cluster_view(lay) or {}).get("members", [])],
                   configs.TTL + 15, f"{n.name}'s member key to expire")
        ctx.details["member_key_expired"] = True


@fault("rest-api-unreachable", "a replica's Patroni SIGSTOPped: its REST API accepts connections "
       "but never answers; PostgreSQL keeps streaming")
def _b_rest_stopped(ctx: Ctx):
    n = ctx.node
    pid = cluster.patroni_pid(n)
    procs.signal_pid(pid, signal.SIGSTOP)
    ctx.details.update(stopped_patroni=pid)
    try:
        requests.get(f"{n.rest_url}/patroni", timeout=2)
        ctx.details["rest_probe"] = "answered"
    except requests.RequestException as exc:
        ctx.details["rest_probe"] = type(exc).__name__


def _sigcont_patroni(n: Node) -> None:
    pid = procs.read_pidfile(n.patroni_pidfile)
    if procs.alive(pid, str(n.config)):
        procs.signal_pid(pid, signal.SIGCONT)


@healer("rest-api-unreachable")
def _h_rest_stopped(ctx: Ctx):
    _sigcont_patroni(ctx.node)
    return f"SIGCONT to {ctx.node.name}'s Patroni"


@fault("system-id-mismatch", "a replica's data dir replaced by a separately initdb'ed cluster, "
       "then its Patroni started")
def _b_sysid(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    cluster.stop_member(n)
    _rm_data_dir(n)
    procs.run([os.path.join(lay.bins.pg_bin, "initdb"), "-D", str(n.data_dir), "-A", "trust",
               "-U", "postgres", "--locale", "C.UTF-8"], as_postgres=True, timeout=120)
    cluster.start_patroni(lay, n)
    ctx.details.update(change=f"initdb -D {n.data_dir} (a different cluster)")
    _symptom(ctx, r"system ID mismatch", _plogs(n))


@healer("system-id-mismatch")
def _h_sysid(ctx: Ctx):
    cluster.stop_member(ctx.node)
    _rm_data_dir(ctx.node)
    return f"removed the foreign {ctx.node.data_dir}; Patroni re-cloned the replica"


@fault("leader-lock-lost", "the leader's Patroni SIGSTOPped longer than ttl (as a hung process "
       "or a long GC/VM pause), then resumed: another member holds the lock", target="leader")
def _b_lock_lost(ctx: Ctx):
    lay, old = ctx.lay, ctx.node
    pid = cluster.patroni_pid(old)
    procs.signal_pid(pid, signal.SIGSTOP)
    others = [n for n in lay.nodes if n.name != old.name]
    try:
        wait_until(lambda: any((cluster.member_status(n) or {}).get("role") in ("primary", "master")
                               for n in others), configs.TTL + 30, "another member to take over")
    finally:
        procs.signal_pid(pid, signal.SIGCONT)
    new = leader_among(lay, others)
    ctx.details.update(old_leader=old.name, new_leader=new, paused_patroni=pid)
    _symptom(ctx, r"[Dd]emot|failed to update leader lock", _plogs(old), 30)


def leader_among(lay: Layout, nodes: list[Node]) -> str | None:
    for n in nodes:
        if (cluster.member_status(n) or {}).get("role") in ("primary", "master"):
            return n.name
    return None


@healer("leader-lock-lost")
def _h_lock_lost(ctx: Ctx):
    _sigcont_patroni(ctx.node)
    return f"nothing to undo; waited for {ctx.node.name} to rejoin (pg_rewind)"


@fault("wal-segment-removed", "slots off and wal_keep_size 16MB, a replica stopped while the leader "
       "writes and checkpoints, then restarted: the WAL it needs is gone")
def _b_walgone(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    patch_config(lay, {"postgresql": {"use_slots": False, "parameters": {"wal_keep_size": "16MB"}}})
    wait_until(lambda: sql(ld, "SHOW wal_keep_size", fetch=True)[0][0] == "16MB", 30,
               "wal_keep_size = 16MB on the leader")
    cluster.stop_member(n)
    wait_until(lambda: not sql(ld, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                               (n.name,), fetch=True), 30, f"slot {n.name} to be dropped")
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_wal (id bigint, pad text)")
    for _ in range(6):
        sql(ld, "INSERT INTO lab_wal SELECT g, repeat('w', 200) FROM generate_series(1, 50000) g",
            timeout=60)
        sql(ld, "SELECT pg_switch_wal()")
    sql(ld, "CHECKPOINT")
    sql(ld, "SELECT pg_switch_wal()")
    sql(ld, "CHECKPOINT")
    cluster.start_patroni(lay, n)
    ctx.details.update(leader=ld.name, replica=n.name, use_slots=False, wal_keep_size="16MB")
    ctx.state["leader"] = ld.name
    ctx.save()
    _symptom(ctx, r"has already been removed", _pglogs(n) + _plogs(n), 40)


@healer("wal-segment-removed")
def _h_walgone(ctx: Ctx):
    lay = ctx.lay
    cluster.stop_member(ctx.node)
    _rm_data_dir(ctx.node)
    try:
        patch_config(lay, {"postgresql": {"use_slots": True,
                                          "parameters": {"wal_keep_size": "128MB"}}})
    except LabError:
        pass
    try:
        sql(leader(lay), "DROP TABLE IF EXISTS lab_wal")
    except LabError:
        pass
    return f"slots and wal_keep_size back, re-cloned {ctx.node.name}"


@fault("disk-full", "a 128 MB tmpfs as a replica's data dir; it re-clones, becomes leader by "
       "switchover and rows are inserted until PostgreSQL runs out of space")
def _b_diskfull(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    old = leader(lay)
    cluster.stop_member(n)
    _rm_data_dir(n)
    n.data_dir.mkdir(mode=0o700)
    procs.run(["mount", "-t", "tmpfs", "-o", "size=128m,mode=0700", "tmpfs", str(n.data_dir)])
    uid, gid = cluster._postgres_ids()
    os.chown(n.data_dir, uid, gid)
    cluster.start_patroni(lay, n)
    wait_until(lambda: (cluster.member_status(n) or {}).get("replication_state") == "streaming",
               60, f"{n.name} to clone into the tmpfs")
    time.sleep(configs.LOOP_WAIT + 1)
    patronictl(lay, "switchover", "--leader", old.name, "--candidate", n.name, "--force")
    wait_until(lambda: (cluster.member_status(n) or {}).get("role") in ("primary", "master")
               and not (cluster.member_status(n) or {}).get("pending_restart", False), 60,
               f"{n.name} to become leader")
    wait_until(lambda: sql(n, "SELECT NOT pg_is_in_recovery()", fetch=True)[0][0], 30,
               f"{n.name} to leave recovery")
    sql(n, "CREATE TABLE IF NOT EXISTS lab_fill (id bigint, pad text)")
    error = None
    for _ in range(200):
        try:
            sql(n, "INSERT INTO lab_fill SELECT g, repeat('f', 1000) FROM generate_series(1, 20000) g",
                timeout=30)
        except LabError as exc:
            error = str(exc)
            break
    try:
        sql(n, "CHECKPOINT", timeout=30)
    except LabError as exc:
        error = error or str(exc)
    ctx.details.update(mount=f"tmpfs size=128m on {n.data_dir}", switched_over_from=old.name,
                       insert_error=error)
    _symptom(ctx, r"No space left on device|could not extend file", _pglogs(n) + _plogs(n), 30)


@healer("disk-full")
def _h_diskfull(ctx: Ctx):
    n = ctx.node
    cluster.stop_member(n)
    for mnt in reversed(cluster.mounts_under(n.data_dir)):
        procs.run(["umount", mnt], check=False)
    _rm_data_dir(n)
    lay = ctx.lay
    others = [m for m in lay.nodes if m.name != n.name]
    action = f"unmounted the tmpfs on {n.data_dir} and re-cloned {n.name}"
    # The crashed leader wrote WAL the others never received, so they stay replicas ("My wal
    # position exceeds maximum replication lag"); a manual failover is the operator's way out.
    deadline = time.monotonic() + configs.TTL + 10
    while time.monotonic() < deadline and not leader_among(lay, others):
        view = cluster.cluster_view(lay) or {}
        if view.get("members") and not any(m.get("role") == "leader" for m in view["members"]):
            try:
                patronictl(lay, "failover", "--candidate", others[0].name, "--force")
            except LabError as exc:
                # a member took the lock on its own between the look and the command: nothing to do
                if "already the leader" not in str(exc):
                    raise
                break
            wait_until(lambda: leader_among(lay, others) is not None, 30, "the failover")
            action += f"; failover to {others[0].name} (the others lagged too far to promote)"
            break
        time.sleep(1)
    return action


# ------------------------------------------------------------------------------------------
# replication faults the replication checks need
# ------------------------------------------------------------------------------------------
SLOT_WAL_BYTES = 200 * 1024 * 1024


@fault("replication-slot-problem", "a replica's Patroni and PostgreSQL stopped, then ~200 MB of WAL "
       "written on the leader: once its member key expires, its slot (kept by Patroni for "
       "member_slots_ttl) is inactive and retains all of it, past wal_keep_size")
def _b_slot(ctx: Ctx):
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    cluster.stop_member(n)

    def slot_row():
        rows = sql(ld, "SELECT active, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                       "FROM pg_replication_slots WHERE slot_name = %s", (n.name,), fetch=True)
        return rows[0] if rows else None

    wait_until(lambda: (slot_row() or (True,))[0] is False, 30, f"slot {n.name} on {ld.name} to go inactive")
    sql(ld, "CREATE TABLE IF NOT EXISTS lab_slot (id bigint, pad text)")
    while (slot_row() or (None, None, 0))[2] < SLOT_WAL_BYTES:
        sql(ld, "INSERT INTO lab_slot SELECT g, repeat('s', 200) FROM generate_series(1, 50000) g", timeout=60)
    sql(ld, "SELECT pg_switch_wal()")
    sql(ld, "CHECKPOINT", timeout=60)
    active, wal_status, retained = slot_row()
    pg_wal = sql(ld, "SELECT sum(size)::bigint FROM pg_ls_waldir()", fetch=True)[0][0]
    keep = sql(ld, "SHOW wal_keep_size", fetch=True)[0][0]
    ctx.details.update(leader=ld.name, stopped=n.name, slot=n.name, slot_active=active, wal_status=wal_status,
                       retained_bytes=int(retained), pg_wal_bytes=int(pg_wal), wal_keep_size=keep)
    if active is not False or retained < SLOT_WAL_BYTES:
        ctx.details["warning"] = f"slot {n.name} is not an inactive slot retaining {SLOT_WAL_BYTES} bytes"
    ctx.state["leader"] = ld.name
    ctx.save()
    if ctx.wait:  # a replica down for a while: its member key has expired, its slot stays
        wait_until(lambda: n.name not in [m["name"] for m in (cluster.cluster_view(lay) or {}).get("members", [])],
                   configs.TTL + 15, f"{n.name}'s member key to expire")
        ctx.details["member_key_expired"] = True


@healer("replication-slot-problem")
def _h_slot(ctx: Ctx):
    lay = ctx.lay
    try:
        sql(leader(lay), "DROP TABLE IF EXISTS lab_slot")
    except LabError:
        pass
    return f"lab_slot dropped, {ctx.node.name} started: it replays the WAL its slot kept"


WALSENDER_HOLD = "pgdoctor-lab-walsender-hold"
_HOLD_WALSENDERS = r'''
import sys, time, psycopg
held = []
while True:  # take every WAL sender slot that frees up on the leader, and keep it
    try:
        held.append(psycopg.connect(sys.argv[1], replication="true", autocommit=True))
    except psycopg.Error:
        time.sleep(0.005)
'''


@fault("replica-not-streaming", "every WAL sender on the leader taken by idle replication connections "
       "(as backup tools or stale pg_receivewal do), then a replica's walsender terminated: it is "
       "refused on reconnect ('exceeds max_wal_senders') while Patroni calls it running")
def _b_not_streaming(ctx: Ctx):
    import sys

    from .layout import REPLICATION_PASSWORD, REPLICATION_USER
    lay, n = ctx.lay, ctx.node
    ld = leader(lay)
    senders = int(sql(ld, "SHOW max_wal_senders", fetch=True)[0][0])
    dsn = (f"host={ld.address} port={ld.pg_port} user={REPLICATION_USER} dbname=postgres "
           f"application_name={WALSENDER_HOLD}")
    pid = procs.spawn([sys.executable, "-c", _HOLD_WALSENDERS, dsn, WALSENDER_HOLD],
                      lay.base_dir / "walsender-hold.log", None, as_postgres=False, cwd=lay.base_dir,
                      env={**os.environ, "PGPASSWORD": REPLICATION_PASSWORD})
    ctx.add_extra_pid(pid, WALSENDER_HOLD)

    def walsenders() -> list[tuple]:
        return sql(ld, "SELECT pid, application_name FROM pg_stat_replication", fetch=True)

    wait_until(lambda: len(walsenders()) >= senders, 20, f"all {senders} WAL senders on {ld.name} to be taken")
    terminated = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the holder and the replica race for the freed slot
        mine = [p for p, app in walsenders() if app == n.name]
        if not mine:
            time.sleep(1.0)
            if not [p for p, app in walsenders() if app == n.name]:
                break
            continue
        sql(ld, "SELECT pg_terminate_backend(%s)", (mine[0],))
        terminated += 1
        time.sleep(0.3)
    wait_until(lambda: not sql(n, "SELECT 1 FROM pg_stat_wal_receiver", fetch=True)
               and (cluster.member_status(n) or {}).get("replication_state") != "streaming",
               20, f"{n.name} to stop streaming")
    held = sum(1 for _, app in walsenders() if app == WALSENDER_HOLD)
    ctx.details.update(leader=ld.name, replica=n.name, max_wal_senders=senders, holder_pid=pid,
                       held_walsenders=held, terminated_walsenders=terminated,
                       patroni_state=(cluster.member_status(n) or {}).get("state"))
    ctx.state["leader"] = ld.name
    ctx.save()
    _symptom(ctx, r"exceeds max_wal_senders", _pglogs(n), 20)


@healer("replica-not-streaming")
def _h_not_streaming(ctx: Ctx):
    return (f"stopped the process holding the leader's WAL senders; {ctx.node.name} reconnects within "
            "wal_retrieve_retry_interval")
