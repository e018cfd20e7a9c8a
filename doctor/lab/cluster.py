"""Lifecycle of the lab cluster: up, down, status, wait until healthy, recreate."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import time
from pathlib import Path

import requests

from . import configs, procs
from . import versions as V
from .layout import OS_USER, UP_TIMEOUT, LabError, Layout, Node

MARKER = ".pgdoctor-lab"
HTTP_TIMEOUT = 1.5


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _postgres_ids() -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(OS_USER)
    except KeyError:
        raise LabError("OS user 'postgres' does not exist; run scripts/install-lab.sh") from None
    return pw.pw_uid, pw.pw_gid


def _mkdir(path: Path, mode: int, postgres: bool) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if postgres and os.geteuid() == 0:
        uid, gid = _postgres_ids()
        os.chown(path, uid, gid)


def check_environment(lay: Layout) -> None:
    missing = lay.bins.missing()
    if missing:
        how = "scripts/install-lab.sh" if lay.versions.is_default() else "scripts/install-lab.sh --matrix"
        raise LabError(f"missing {', '.join(missing)} for Patroni {lay.versions.patroni_release} with "
                       f"PostgreSQL {lay.versions.postgres}; run {how} as root")
    if os.geteuid() != 0:
        raise LabError("the lab must be run as root (it runs Patroni as the postgres OS user)")
    _postgres_ids()
    venv_python = Path(lay.bins.patroni).parent / "python"
    real = os.path.realpath(venv_python)
    if real.startswith("/root/"):
        raise LabError(f"Patroni's venv uses {real}, which the postgres user cannot execute; "
                       "rebuild it from /usr/bin/python3 (scripts/install-lab.sh)")


def check_versions(lay: Layout) -> None:
    """Refuse to switch a lab to other versions under running processes or over data of another
    PostgreSQL major: the data dirs would not start, and the running Patroni would stay the old one."""
    have = V.stored(lay.base_dir) or V.Versions()
    want = lay.versions
    if have == want or not lay.base_dir.exists():
        return
    running = lay_procs_running(lay)
    if running:
        raise LabError(f"the lab runs Patroni {have.patroni_release} with PostgreSQL {have.postgres} "
                       f"({', '.join(running)}); run `pgdoctor lab down` before switching to Patroni "
                       f"{want.patroni_release} with PostgreSQL {want.postgres}")
    if have.postgres != want.postgres and any((n.data_dir / "PG_VERSION").exists() for n in lay.nodes):
        raise LabError(f"the lab's data dirs hold PostgreSQL {have.postgres}; add --fresh to bootstrap a "
                       f"new cluster on PostgreSQL {want.postgres}")


def prepare(lay: Layout) -> None:
    """Create the directory tree, configs and pgpass files (existing configs are kept unless the versions
    changed: then they are rewritten for the new binaries)."""
    base = lay.base_dir
    if base.exists() and any(base.iterdir()) and not (base / MARKER).exists():
        raise LabError(f"{base} exists and is not a pgdoctor lab directory; choose another "
                       "PGDOCTOR_LAB_DIR")
    _mkdir(base, 0o755, postgres=False)
    (base / MARKER).write_text(json.dumps({"addrs": list(lay.addrs)}) + "\n")
    changed = (V.stored(base) or V.Versions()) != lay.versions
    V.store(base, lay.versions)
    for n in lay.nodes:
        _mkdir(n.dir, 0o750, postgres=True)
        _mkdir(n.patroni_log_dir, 0o750, postgres=True)
        _mkdir(n.socket_dir, 0o750, postgres=True)
        _mkdir(n.etcd_dir, 0o700, postgres=False)
        if changed or not n.config.exists():
            configs.write(lay, n)
        if not n.pgpass.exists():
            configs.write_pgpass(lay, n)


def _get_json(url: str, timeout: float = HTTP_TIMEOUT):
    try:
        r = requests.get(url, timeout=timeout)
    except requests.RequestException:
        return None
    try:
        return r.json()
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------
# pids
# ------------------------------------------------------------------------------------------
def patroni_pid(n: Node) -> int | None:
    return procs.pid_from_file(n.patroni_pidfile, str(n.config))


def etcd_pid(n: Node) -> int | None:
    return procs.pid_from_file(n.etcd_pidfile, str(n.etcd_data_dir))


def postgres_pid(n: Node) -> int | None:
    return procs.postmaster_pid(n.data_dir)


# ------------------------------------------------------------------------------------------
# etcd
# ------------------------------------------------------------------------------------------
def etcd_argv(lay: Layout, n: Node, state: str = "new") -> list[str]:
    return [
        lay.bins.etcd,
        "--name", n.etcd_name,
        "--data-dir", str(n.etcd_data_dir),
        "--listen-client-urls", n.etcd_client_url,
        "--advertise-client-urls", n.etcd_client_url,
        "--listen-peer-urls", n.etcd_peer_url,
        "--initial-advertise-peer-urls", n.etcd_peer_url,
        "--initial-cluster", lay.initial_cluster,
        "--initial-cluster-token", lay.cluster_token,
        "--initial-cluster-state", state,
    ]


def _check_port(n: Node, port: int, what: str) -> None:
    if not procs.port_free(n.address, port):
        raise LabError(f"{n.address}:{port} ({what} of {n.name}) is already taken by "
                       f"{procs.port_holder(n.address, port)}, which the lab did not start; "
                       "stop it or set PGDOCTOR_LAB_ADDRS to other loopback addresses")


def start_etcd(lay: Layout, n: Node) -> int:
    pid = etcd_pid(n)
    if pid:
        return pid
    _check_port(n, n.etcd_client_port, "etcd client port")
    _check_port(n, n.etcd_peer_port, "etcd peer port")
    n.etcd_dir.mkdir(parents=True, exist_ok=True)
    return procs.spawn(etcd_argv(lay, n), n.etcd_log, n.etcd_pidfile, as_postgres=False,
                       cwd=n.etcd_dir)


def stop_etcd(n: Node, sig: int = signal.SIGTERM) -> bool:
    return procs.stop_pid(procs.read_pidfile(n.etcd_pidfile), str(n.etcd_data_dir), sig=sig,
                          grace=10)


def etcd_healthy(n: Node) -> bool:
    doc = _get_json(f"{n.etcd_client_url}/health", timeout=1.0)
    return bool(doc) and str(doc.get("health")) == "true"


def wait_etcd(lay: Layout, timeout: float = 30.0, nodes: list[Node] | None = None) -> None:
    nodes = nodes or lay.nodes
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(etcd_healthy(n) for n in nodes):
            return
        time.sleep(0.2)
    bad = [n.etcd_name for n in nodes if not etcd_healthy(n)]
    raise LabError(f"etcd not healthy after {timeout:.0f}s: {', '.join(bad)} (see "
                   f"{lay.base_dir}/etcdN/etcd.log)")


def etcdctl(lay: Layout, *args: str, check: bool = True, timeout: float = 15):
    env = {**os.environ, "ETCDCTL_API": "3"}
    return procs.run([lay.bins.etcdctl, "--endpoints", ",".join(lay.etcd_endpoints),
                      "--dial-timeout", "2s", "--command-timeout", "5s", *args],
                     check=check, timeout=timeout, env=env)


# ------------------------------------------------------------------------------------------
# Patroni
# ------------------------------------------------------------------------------------------
def start_patroni(lay: Layout, n: Node, check_ports: bool = True) -> int:
    pid = patroni_pid(n)
    if pid:
        return pid
    if check_ports:
        _check_port(n, n.rest_port, "Patroni REST port")
        if not postgres_pid(n):
            _check_port(n, n.pg_port, "PostgreSQL port")
    return procs.spawn([lay.bins.patroni, str(n.config)], n.patroni_stdout, n.patroni_pidfile,
                       as_postgres=True, cwd=n.dir)


def stop_patroni(n: Node, sig: int = signal.SIGTERM, grace: float = 30.0) -> bool:
    return procs.stop_pid(procs.read_pidfile(n.patroni_pidfile), str(n.config), sig=sig,
                          grace=grace)


def stop_postgres(n: Node, grace: float = 15.0) -> bool:
    """Fast shutdown (SIGINT) of a postmaster running on the node's data dir, then SIGKILL of it
    and whatever it left behind."""
    pid = postgres_pid(n)
    if not pid:
        return False
    kids = procs.descendants(pid)
    line = procs.cmdline(pid)
    for k in kids:  # a SIGSTOPped child would never notice the shutdown
        procs.signal_pid(k, signal.SIGCONT)
    procs.signal_pid(pid, signal.SIGINT)
    if not procs.wait_gone(pid, line, grace):
        procs.signal_pid(pid, signal.SIGKILL)
        procs.wait_gone(pid, line, 5)
    for k in kids:
        kl = procs.cmdline(k)
        if kl and "postgres" in kl:
            procs.signal_pid(k, signal.SIGKILL)
    return True


def stop_member(n: Node, grace: float = 30.0) -> None:
    """Stop a member's Patroni (which stops its PostgreSQL) and any postmaster left behind."""
    stop_patroni(n, grace=grace)
    stop_postgres(n)


def reload_patroni(n: Node) -> None:
    pid = patroni_pid(n)
    if not pid:
        raise LabError(f"Patroni of {n.name} is not running; cannot reload it")
    procs.signal_pid(pid, signal.SIGHUP)


def member_status(n: Node) -> dict | None:
    return _get_json(f"{n.rest_url}/patroni")


def cluster_view(lay: Layout) -> dict | None:
    for n in lay.nodes:
        doc = _get_json(f"{n.rest_url}/cluster")
        if doc and doc.get("members"):
            return doc
    return None


def _streaming_to_leader(statuses: dict[str, dict | None]) -> set[str]:
    """Members the leader's ``GET /patroni`` ``replication`` list shows streaming: what tells a streaming
    replica from a merely running one on Patroni < 3.0.4, which publishes no ``replication_state``."""
    out: set[str] = set()
    for st in statuses.values():
        if st and st.get("role") in ("primary", "master"):
            for r in st.get("replication") or []:
                if isinstance(r, dict) and r.get("state") == "streaming":
                    out.add(str(r.get("application_name")))
    return out


def health(lay: Layout) -> tuple[bool, str]:
    """(healthy?, why not) — one leader and two streaming replicas on the leader's timeline, none waiting
    for a restart, seen on every REST API. Right after a failover a replica streams before it reports the new timeline: that
    cluster is not healthy yet (``verify`` would rightly flag it)."""
    leaders, streaming, problems = [], [], []
    timelines: dict[str, object] = {}
    statuses = {n.name: member_status(n) for n in lay.nodes}
    to_leader = _streaming_to_leader(statuses)
    for n in lay.nodes:
        st = statuses[n.name]
        if st is None:
            problems.append(f"{n.name}: REST API not answering")
            continue
        timelines[n.name] = st.get("timeline")
        role, state = st.get("role"), st.get("state")
        rstate = st.get("replication_state")
        if role in ("primary", "master") and state == "running":
            leaders.append(n.name)
        elif role == "replica" and (rstate == "streaming"
                                    or (rstate is None and state == "running" and n.name in to_leader)):
            streaming.append(n.name)
        else:
            problems.append(f"{n.name}: role={role} state={state} "
                            f"replication_state={rstate}")
    view = cluster_view(lay)
    if view is not None:
        roles = [m.get("role") for m in view["members"]]
        if roles.count("leader") != 1:
            problems.append(f"/cluster lists {roles.count('leader')} leaders")
        states = [m.get("state") for m in view["members"] if m.get("role") != "leader"]
        ok_states = [m for m in view["members"] if m.get("role") != "leader" and (
            m.get("state") == "streaming" or (m.get("state") == "running" and m.get("name") in to_leader))]
        if len(ok_states) != 2:
            problems.append(f"/cluster shows replica states {states}")
        if view.get("pause"):
            problems.append("cluster is paused")
        # the members' DCS keys (what /cluster shows) lag their /patroni by a loop after a failover
        listed = {m.get("name"): m.get("timeline") for m in view["members"] if m.get("timeline") is not None}
        if len(set(listed.values())) > 1:
            problems.append("/cluster shows members on different timelines: "
                            + ", ".join(f"{name} {tl}" for name, tl in listed.items()))
    elif not problems:
        problems.append("no /cluster answer")
    pending = [name for name, st in statuses.items() if st and st.get("pending_restart")]
    if pending:
        problems.append("waiting for a restart to apply a parameter: " + ", ".join(pending))
    if len(set(timelines.values())) > 1:
        problems.append("members on different timelines: "
                        + ", ".join(f"{name} {tl}" for name, tl in timelines.items()))
    ok = len(leaders) == 1 and len(streaming) == 2 and not problems
    return ok, "; ".join(problems) or "ok"


def wait_healthy(lay: Layout, timeout: float = UP_TIMEOUT) -> float:
    t0 = time.monotonic()
    why = ""
    while time.monotonic() - t0 < timeout:
        ok, why = health(lay)
        if ok:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise LabError(f"cluster not healthy after {timeout:.0f}s: {why}")


# ------------------------------------------------------------------------------------------
# up / down / purge
# ------------------------------------------------------------------------------------------
def up(lay: Layout, wait: bool = True, timeout: float = UP_TIMEOUT) -> dict:
    """Start whatever is not running and (by default) wait for a healthy cluster."""
    t0 = time.monotonic()
    check_environment(lay)
    check_versions(lay)
    prepare(lay)
    started = []
    # check every needed port of every piece that is not ours before starting anything
    for n in lay.nodes:
        if not etcd_pid(n):
            _check_port(n, n.etcd_client_port, "etcd client port")
            _check_port(n, n.etcd_peer_port, "etcd peer port")
        if not patroni_pid(n):
            _check_port(n, n.rest_port, "Patroni REST port")
            if not postgres_pid(n):
                _check_port(n, n.pg_port, "PostgreSQL port")
    for n in lay.nodes:
        if not etcd_pid(n):
            start_etcd(lay, n)
            started.append(n.etcd_name)
    wait_etcd(lay, timeout=30)
    for n in lay.nodes:
        if not patroni_pid(n):
            start_patroni(lay, n)
            started.append(f"patroni@{n.name}")
    if wait:
        try:
            wait_healthy(lay, timeout=max(5.0, timeout - (time.monotonic() - t0)))
        except LabError as exc:
            fault = _active_fault(lay)
            if fault:
                raise LabError(f"{exc} (fault {fault} is active: run `pgdoctor lab heal`)") from None
            raise
    return {"started": started, "seconds": round(time.monotonic() - t0, 1)}


def _active_fault(lay: Layout) -> str | None:
    try:
        return json.loads(lay.state_file.read_text()).get("fault")
    except (FileNotFoundError, ValueError):
        return None


def extra_pids(lay: Layout) -> list[tuple[int, str]]:
    """Helper processes a fault started (e.g. a foreign listener), from the fault state file."""
    try:
        st = json.loads(lay.state_file.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [(int(p["pid"]), p["match"]) for p in st.get("extra_pids", [])]


def down(lay: Layout, purge: bool = False) -> dict:
    """Stop exactly what the lab started (by pid files), then optionally remove the base dir."""
    stopped = []
    if lay.base_dir.exists():
        nodes = lay.nodes
        pids = {n.name: procs.read_pidfile(n.patroni_pidfile) for n in nodes}
        for n in nodes:  # SIGCONT first: a paused process cannot act on SIGTERM
            pm = postgres_pid(n)
            if pm:
                for k in [pm, *procs.descendants(pm)]:
                    procs.signal_pid(k, signal.SIGCONT)
            if procs.alive(pids[n.name], str(n.config)):
                procs.signal_pid(pids[n.name], signal.SIGCONT)
                procs.signal_pid(pids[n.name], signal.SIGTERM)
                stopped.append(f"patroni@{n.name}")
        for n in nodes:
            stop_patroni(n, grace=25)
        for n in nodes:
            if stop_postgres(n):
                stopped.append(f"postgres@{n.name}")
        for pid, match in extra_pids(lay):
            if procs.stop_pid(pid, match, grace=5):
                stopped.append(f"pid {pid}")
        for n in nodes:
            if stop_etcd(n):
                stopped.append(n.etcd_name)
        for mnt in reversed(mounts_under(lay.base_dir)):  # e.g. the disk-full tmpfs
            if procs.run(["umount", mnt], check=False).returncode == 0:
                stopped.append(f"mount {mnt}")
    if purge:
        destroy(lay)
    return {"stopped": stopped, "purged": purge}


def mounts_under(path: Path) -> list[str]:
    out = []
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            mnt = line.split()[1].replace("\\040", " ")
            if mnt == str(path) or mnt.startswith(str(path).rstrip("/") + "/"):
                out.append(mnt)
    except OSError:
        pass
    return out


def lab_processes(lay: Layout) -> list[tuple[int, str]]:
    """Every live process whose command line names the lab's base dir (for checks and tests)."""
    out = []
    base = str(lay.base_dir) + "/"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            line = procs.cmdline(int(entry))
            if base in line + "/":
                out.append((int(entry), line))
    return out


def destroy(lay: Layout) -> None:
    base = lay.base_dir
    if not base.exists():
        return
    if not (base / MARKER).exists():
        raise LabError(f"refusing to remove {base}: it has no {MARKER} marker")
    leftovers = list(lay_procs_running(lay))
    if leftovers:
        raise LabError(f"refusing to remove {base}: lab processes still run ({leftovers})")
    shutil.rmtree(base)


def lay_procs_running(lay: Layout) -> list[str]:
    out = []
    for n in lay.nodes:
        if patroni_pid(n):
            out.append(f"patroni@{n.name}")
        if postgres_pid(n):
            out.append(f"postgres@{n.name}")
        if etcd_pid(n):
            out.append(n.etcd_name)
    return out


def wipe_cluster_data(lay: Layout) -> None:
    """With everything stopped: remove data dirs, etcd data and configs (a fresh cluster next)."""
    running = lay_procs_running(lay)
    if running:
        raise LabError(f"cannot wipe the lab while {', '.join(running)} run")
    for n in lay.nodes:
        for p in (n.data_dir, n.etcd_data_dir):
            if p.exists():
                shutil.rmtree(p)
        configs.write(lay, n)
        configs.write_pgpass(lay, n)
    with contextlib.suppress(FileNotFoundError):
        lay.state_file.unlink()


def recreate(lay: Layout, timeout: float = UP_TIMEOUT) -> dict:
    down(lay)
    if lay.base_dir.exists():
        wipe_cluster_data(lay)
    return up(lay, timeout=timeout)


# ------------------------------------------------------------------------------------------
# status
# ------------------------------------------------------------------------------------------
def patronictl_command(lay: Layout, n: Node | None = None) -> str:
    return " ".join(lay.patronictl_argv(n))


def status(lay: Layout, rest: bool = True) -> dict:
    nodes = []
    for n in lay.nodes:
        p_pid, pg_pid, e_pid = patroni_pid(n), postgres_pid(n), etcd_pid(n)
        entry = {
            "name": n.name,
            "address": n.address,
            "pg_port": n.pg_port,
            "rest_port": n.rest_port,
            "rest_url": n.rest_url,
            "etcd_name": n.etcd_name,
            "etcd_client_port": n.etcd_client_port,
            "etcd_peer_port": n.etcd_peer_port,
            "config": str(n.config),
            "data_dir": str(n.data_dir),
            "patroni_log": str(n.patroni_log),
            "patroni_stdout": str(n.patroni_stdout),
            "postgres_log_dir": str(n.postgres_log_dir),
            "postgres_log": str(n.postgres_log_dir / "postgresql.log"),
            "etcd_log": str(n.etcd_log),
            "etcd_data_dir": str(n.etcd_data_dir),
            "pgpass": str(n.pgpass),
            "socket_dir": str(n.socket_dir),
            "pids": {"patroni": p_pid, "postgres": pg_pid, "etcd": e_pid},
            "running": {"patroni": bool(p_pid), "postgres": bool(pg_pid), "etcd": bool(e_pid)},
            "role": None,
            "state": None,
            "replication_state": None,
            "timeline": None,
        }
        if rest and p_pid:
            st = member_status(n)
            if st:
                entry.update(role=st.get("role"), state=st.get("state"),
                             replication_state=st.get("replication_state"),
                             timeline=st.get("timeline"))
        nodes.append(entry)
    fault = None
    with contextlib.suppress(FileNotFoundError, ValueError):
        fault = json.loads(lay.state_file.read_text())
    return {
        "base_dir": str(lay.base_dir),
        "versions": {"patroni": lay.versions.patroni_release, "postgres": lay.versions.postgres},
        "scope": lay.scope,
        "namespace": lay.namespace,
        "etcd_endpoints": lay.etcd_endpoints,
        "etcd_hosts": lay.etcd_hosts,
        "patronictl": patronictl_command(lay),
        "active_fault": fault.get("fault") if fault else None,
        "nodes": nodes,
    }
