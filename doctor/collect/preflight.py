"""Pre-bootstrap facts: what must be true on a node before its first ``systemctl start patroni``.

Only ``pgdoctor preflight`` runs this collector. It records what it finds — the PostgreSQL
and Patroni installations, the distribution's ``postgresql`` service, who may read the
config, whether the peers answer on their ports, the firewall and the clock — and leaves
every judgement to ``checks/preflight.py``. The etcd facts come from the shared DCS
snapshot (``doctor.collect.dcs``); this module only adds the members the config does not
list, as ``etcdctl endpoint health --cluster`` does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import yaml

from doctor.collect import CollectContext, collector
from doctor.collect._parallel import parallel
from doctor.collect.config import PATRONI_GLOBS, patroni_candidates
from doctor.collect.system import expected_pg_user, find_pg_bin_dir
from doctor.errors import error_data
from doctor.model.node import NodeView, split_host_port

PG_TOOLS = ("postgres", "pg_ctl", "initdb", "pg_basebackup", "pg_rewind", "pg_controldata")
UNIT_PATHS = ("/etc/systemd/system/patroni.service", "/lib/systemd/system/patroni.service",
              "/usr/lib/systemd/system/patroni.service")
TIME_DAEMONS = ("chronyd", "ntpd", "systemd-timesyncd", "openntpd", "timesyncd")
DEFAULT_PEER_PORTS = {"postgresql": 5432, "restapi": 8008, "etcd": 2379}
MAX_TEXT = 20000


def run_cmd(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run a read-only command; its output, exit code or error as data."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              env={**os.environ, "LC_ALL": "C", "SYSTEMD_PAGER": ""})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"argv": argv, "error": error_data(exc)}
    return {"argv": argv, "exit_code": proc.returncode, "stdout": proc.stdout[:MAX_TEXT],
            "stderr": proc.stderr.strip()[:2000]}


# --------------------------------------------------------------------------- PostgreSQL


def pg_binaries(node: NodeView, timeout: float) -> dict[str, Any]:
    """Where the server binaries are, which are missing, and ``postgres --version``."""
    bin_dir = find_pg_bin_dir(node)
    out: dict[str, Any] = {"bin_dir": bin_dir, "source": "postgresql.bin_dir" if node.bin_dir else "distribution path",
                           "configured_bin_dir": node.bin_dir}
    if not bin_dir:
        out["found"] = False
        out["searched"] = ["/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"]
        return out
    out["found"] = os.path.isdir(bin_dir)
    out["missing"] = [t for t in PG_TOOLS if not os.access(os.path.join(bin_dir, t), os.X_OK)]
    postgres = os.path.join(bin_dir, "postgres")
    if os.access(postgres, os.X_OK):
        res = run_cmd([postgres, "--version"], timeout)
        text = (res.get("stdout") or "").strip()
        out["version_text"] = text or None
        if res.get("error"):
            out["version_error"] = res["error"]
        m = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", text)
        if m:
            out["major"] = int(m.group(1))
            out["version"] = m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
    return out


def _conf_value(text: str, key: str) -> str | None:
    m = re.search(rf"^\s*{key}\s*=\s*'?([^'#\n]*?)'?\s*(?:#.*)?$", text, re.MULTILINE)
    return m.group(1).strip() if m else None


def debian_clusters() -> list[dict[str, Any]]:
    """Clusters the distribution's ``postgresql`` service starts (Debian's /etc/postgresql/V/NAME)."""
    out = []
    for conf in sorted(glob.glob("/etc/postgresql/*/*/postgresql.conf")):
        d = Path(conf).parent
        entry: dict[str, Any] = {"version": d.parent.name, "name": d.name, "conf": conf}
        try:
            text = Path(conf).read_text(errors="replace")
            port = _conf_value(text, "port")
            entry.update(port=int(port) if port and port.isdigit() else 5432,
                         data_directory=_conf_value(text, "data_directory"),
                         listen_addresses=_conf_value(text, "listen_addresses") or "localhost")
        except OSError as exc:
            entry["error"] = error_data(exc)
        try:
            entry["start"] = next((l.strip() for l in (d / "start.conf").read_text().splitlines()
                                   if l.strip() and not l.startswith("#")), "auto")
        except OSError:
            entry["start"] = "auto"
        out.append(entry)
    return out


def service_state(name: str, timeout: float) -> dict[str, Any]:
    """Is the distribution's service active, and will it start at boot? ``None`` = cannot tell."""
    booted = os.path.isdir("/run/systemd/system")
    out: dict[str, Any] = {"name": name, "systemd_booted": booted, "systemctl": bool(shutil.which("systemctl")),
                           "active": None, "enabled": None}
    init_script = f"/etc/init.d/{name}"
    out["init_script"] = init_script if os.path.exists(init_script) else None
    unit_files = [p for p in (f"/etc/systemd/system/{name}.service", f"/lib/systemd/system/{name}.service",
                              f"/usr/lib/systemd/system/{name}.service") if os.path.exists(p)]
    out["unit_files"] = unit_files
    out["installed"] = bool(unit_files or out["init_script"])
    if booted and out["systemctl"]:
        act = run_cmd(["systemctl", "is-active", name], timeout)
        out["active"] = (act.get("stdout") or "").strip() == "active" if not act.get("error") else None
        out["active_text"] = (act.get("stdout") or "").strip() or None
        out["active_source"] = "systemctl is-active"
    if out["systemctl"] and out["installed"]:
        en = run_cmd(["systemctl", "is-enabled", name], timeout)
        text = (en.get("stdout") or "").strip()
        if text:
            out["enabled"] = text in ("enabled", "enabled-runtime", "static", "generated", "alias")
            out["enabled_text"] = text
            out["enabled_source"] = "systemctl is-enabled"
    links = sorted(glob.glob(f"/etc/rc[0-6S].d/S*{name}"))
    out["rc_start_links"] = links
    if out["enabled"] is None and out["init_script"]:
        out["enabled"] = bool(links)
        out["enabled_source"] = "start links in /etc/rc?.d"
    rl = run_cmd(["runlevel"], timeout) if shutil.which("runlevel") else {}
    out["runlevel"] = (rl.get("stdout") or "").strip() or None
    out["policy_rc_d_denies"] = _policy_rc_denies()
    return out


def _policy_rc_denies() -> bool:
    """Debian's policy-rc.d exiting 101 stops maintainer scripts from starting services (containers)."""
    path = "/usr/sbin/policy-rc.d"
    try:
        return os.access(path, os.X_OK) and "exit 101" in Path(path).read_text(errors="replace")
    except OSError:
        return False


# --------------------------------------------------------------------------- Patroni


def _interpreter(script: str) -> str | None:
    try:
        with open(script, "rb") as fh:
            first = fh.readline(300).decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        return shutil.which(parts[1])
    return parts[0] if parts else None


ETCD3_PROBE = ("import sys\n"
               "try:\n"
               "    import patroni.dcs.etcd3, urllib3\n"
               "except Exception as e:\n"
               "    print(type(e).__name__ + ': ' + str(e)); sys.exit(1)\n"
               "print('urllib3 ' + urllib3.__version__)\n")


def patroni_install(timeout: float, pg_user: str) -> dict[str, Any]:
    """Patroni's executable, version, the interpreter it runs on and whether its etcd3 DCS imports."""
    cands = patroni_candidates()
    out: dict[str, Any] = {"candidates": cands, "found": bool(cands)}
    if not cands:
        out["searched"] = ["$PATH"] + list(PATRONI_GLOBS)
        return out
    exe = cands[0]
    out["executable"] = exe
    res = run_cmd([exe, "--version"], max(timeout, 10))
    text = ((res.get("stdout") or "") + (res.get("stderr") or "")).strip()
    m = re.search(r"patroni\s+(\d+(?:\.\d+)+)", text, re.IGNORECASE)
    out["version"] = m.group(1) if m else None
    out["version_text"] = text.splitlines()[0][:200] if text else None
    if res.get("error"):
        out["version_error"] = res["error"]
    python = _interpreter(exe)
    out["python"] = python
    if python and os.access(python, os.X_OK):
        imp = run_cmd([python, "-c", ETCD3_PROBE], max(timeout, 10))
        out["etcd3"] = {"ok": imp.get("exit_code") == 0,
                        "detail": ((imp.get("stdout") or "").strip() or imp.get("stderr") or "")[-300:] or None}
        if imp.get("error"):
            out["etcd3"] = {"ok": False, "detail": imp["error"]["message"]}
        usable = path_access(python, pg_user, os.X_OK)
        out["python_usable_by_pg_user"] = {k: usable.get(k) for k in ("user", "ok", "blocked_at", "error")
                                           if usable.get(k) is not None}
    else:
        out["etcd3"] = {"ok": False, "detail": f"interpreter {python or '?'} of {exe} not found"}
    out["unit"] = unit_file()
    return out


def unit_file() -> dict[str, Any]:
    found = [p for p in UNIT_PATHS if os.path.exists(p)]
    out: dict[str, Any] = {"paths": found, "searched": list(UNIT_PATHS), "systemd_booted": os.path.isdir("/run/systemd/system")}
    if found:
        try:
            text = Path(found[0]).read_text(errors="replace")
            out["exec_start"] = _conf_value(text, "ExecStart")
            out["user"] = _conf_value(text, "User")
        except OSError as exc:
            out["error"] = error_data(exc)
    return out


# --------------------------------------------------------------------------- config access


def path_access(path: str, user: str, want: int) -> dict[str, Any]:
    """The stat of ``path`` and every parent, and whether ``user`` gets ``want`` through them.

    Computed from mode bits and group membership (no setuid, no ACLs), as the kernel would.
    """
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return {"user": user, "error": {"kind": "no-user", "message": f"OS user {user} does not exist"}}
    gids = sorted(set(os.getgrouplist(user, pw.pw_gid)))
    chain: list[dict[str, Any]] = []
    p = Path(os.path.abspath(path))
    for part in [*reversed(p.parents), p]:
        entry: dict[str, Any] = {"path": str(part)}
        try:
            st = part.stat()
        except OSError as exc:
            entry["error"] = error_data(exc)
            chain.append(entry)
            break
        entry.update(uid=st.st_uid, gid=st.st_gid, mode=f"0{stat.S_IMODE(st.st_mode):o}",
                     owner=_name(pwd.getpwuid, st.st_uid), is_dir=stat.S_ISDIR(st.st_mode))
        need = os.X_OK if part != p else want
        entry["needs"] = "x" if need == os.X_OK else ("r" if need == os.R_OK else "rwx")
        entry["allowed"] = _allowed(st, pw.pw_uid, gids, need)
        chain.append(entry)
    blocked = next((c for c in chain if c.get("error") or not c.get("allowed")), None)
    return {"user": user, "uid": pw.pw_uid, "gids": gids, "chain": chain, "ok": blocked is None,
            "blocked_at": blocked["path"] if blocked else None}


def _allowed(st: os.stat_result, uid: int, gids: list[int], want: int) -> bool:
    if uid == 0:
        return True if want != os.X_OK or stat.S_ISDIR(st.st_mode) else bool(st.st_mode & 0o111)
    mode = st.st_mode
    shift = 6 if st.st_uid == uid else 3 if st.st_gid in gids else 0
    bits = (mode >> shift) & 0o7
    need = {os.R_OK: 4, os.X_OK: 1, os.W_OK: 2}.get(want, 4)
    return bits & need == need


def _name(fn, ident: int) -> str:
    try:
        return fn(ident).pw_name
    except KeyError:
        return str(ident)


# --------------------------------------------------------------------------- peers


def tcp_probe(host: str, port: int, timeout: float) -> dict[str, Any]:
    """One short TCP connect: connected / refused / timeout / another error kind, with the time taken."""
    t0 = time.monotonic()
    out: dict[str, Any] = {"port": port}
    try:
        with socket.create_connection((host, port), timeout=timeout):
            out["result"] = "connected"
    except (socket.timeout, TimeoutError):
        out["result"] = "timeout"
    except ConnectionRefusedError:
        out["result"] = "refused"
    except OSError as exc:
        err = error_data(exc)
        out["result"] = err["kind"]
        out["message"] = err["message"]
    out["ms"] = round((time.monotonic() - t0) * 1000, 1)
    return out


def _peer_from_config(path: str) -> dict[str, Any]:
    """A peer given as another member's patroni.yml: its addresses and ports."""
    try:
        data = yaml.safe_load(Path(path).read_text(errors="replace"))
    except (OSError, yaml.YAMLError) as exc:
        return {"spec": path, "source": f"config {path}", "error": error_data(exc)}
    view = NodeView(data if isinstance(data, dict) else {}, path)
    hosts, pg_port = split_host_port(view.pg_connect, view.pg_port)
    rhosts, rest_port = split_host_port(view.rest_connect, view.rest_port)
    host = (hosts or rhosts or [None])[0]
    return {"spec": path, "host": host, "name": view.name, "source": f"config {path}",
            "ports": {"postgresql": pg_port or 5432, "restapi": rest_port or 8008}}


def _host_of(url: str) -> str | None:
    try:
        return urlparse(url if "://" in url else f"http://{url}").hostname
    except ValueError:
        return None


def own_hosts(node: NodeView) -> set[str]:
    """Addresses that mean "this node": its connect and listen hosts and its interface addresses."""
    hosts = set()
    for value in (node.pg_connect, node.rest_connect):
        hosts.update(split_host_port(value)[0])
    hosts.update(h for h in node.pg_hosts + node.rest_hosts if h not in ("0.0.0.0", "::", "*", ""))
    try:
        for addrs in psutil.net_if_addrs().values():
            hosts.update(a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)
                         and not a.address.startswith("127.0.0.1") and a.address != "::1")
    except (OSError, psutil.Error):
        pass
    return hosts


def peer_specs(node: NodeView, cli_peers: list[str], dcs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every peer to probe, deduplicated by host, with where it came from and which ports matter."""
    etcd_hosts = {h for h in (_host_of(u) for u in node.etcd_endpoints) if h}
    for m in dcs.get("members_etcd") or []:
        etcd_hosts.update(h for h in (_host_of(u) for u in m.get("client_urls") or []) if h)
    peers: dict[str, dict[str, Any]] = {}

    def add(host: str | None, source: str, ports: dict[str, int] | None = None, name: str | None = None,
            running_member: bool = False) -> None:
        if not host:
            return
        p = peers.setdefault(host, {"host": host, "sources": [], "ports": dict(ports or {}), "names": []})
        if source not in p["sources"]:
            p["sources"].append(source)
        if name and name not in p["names"]:
            p["names"].append(name)
        for k, v in (ports or {}).items():
            p["ports"].setdefault(k, v)
        p["running_member"] = p.get("running_member", False) or running_member

    errors = []
    for spec in cli_peers:
        if os.path.isfile(spec):
            cfg = _peer_from_config(spec)
            if cfg.get("error"):
                errors.append(cfg)
                continue
            add(cfg["host"], cfg["source"], cfg["ports"], cfg.get("name"))
        else:
            add(spec.strip().strip("[]"), "--peer")
    for m in dcs.get("members_etcd") or []:
        for u in (m.get("peer_urls") or []) + (m.get("client_urls") or []):
            add(_host_of(u), f"etcd member {m.get('name') or m.get('id')}")
    for m in dcs.get("members") or []:
        if m.get("name") == node.name:
            continue
        ports: dict[str, int] = {}
        host = None
        if m.get("conn_url"):
            u = urlparse(str(m["conn_url"]))
            host, ports["postgresql"] = u.hostname, u.port or 5432
        if m.get("api_url"):
            u = urlparse(str(m["api_url"]))
            host, ports["restapi"] = host or u.hostname, u.port or 8008
        add(host, f"Patroni member {m.get('name')} in the DCS", ports, m.get("name"), running_member=True)
    mine = own_hosts(node)
    out = []
    for host, p in peers.items():
        p["self"] = host in mine
        p["etcd_expected"] = host in etcd_hosts
        for role, port in DEFAULT_PEER_PORTS.items():
            p["ports"].setdefault(role, node.pg_port if role == "postgresql" else node.rest_port if role == "restapi"
                                  else port)
        out.append(p)
    return out + [{"host": None, "sources": [e["source"]], "error": e["error"]} for e in errors]


def probe_peers(specs: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    calls = {}
    for i, p in enumerate(specs):
        if not p.get("host") or p.get("self"):
            continue
        for role, port in p["ports"].items():
            calls[f"{i}:{role}"] = (lambda h=p["host"], port=port: tcp_probe(h, port, timeout))
    results = parallel(calls, timeout + 1.0, lambda k: {"result": "timeout", "ms": round(timeout * 1000, 1)})
    for i, p in enumerate(specs):
        if not p.get("host") or p.get("self"):
            continue
        p["probes"] = []
        for role, port in p["ports"].items():
            r = results[f"{i}:{role}"]
            if isinstance(r, Exception):
                r = {"port": port, "result": "error", "message": str(r)}
            r.setdefault("port", port)
            p["probes"].append({"role": role, **r})
    return specs


# --------------------------------------------------------------------------- etcd cluster


def extra_etcd_members(ctx: CollectContext, node: NodeView, dcs: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """Probe the etcd members the config does not list (``endpoint health --cluster``)."""
    from doctor.etcd import client_for, probe

    configured = {u.rstrip("/") for u in dcs.get("endpoint_urls") or []}
    extra: list[str] = []
    for m in dcs.get("members_etcd") or []:
        for u in m.get("client_urls") or []:
            if u.rstrip("/") not in configured and u not in extra:
                extra.append(u.rstrip("/"))
    if not extra:
        return []
    section = node.get(node.dcs_section_name) if node.dcs_section_name else None
    probes = parallel({u: (lambda u=u: probe(client_for(u, section, timeout))) for u in extra}, timeout + 1.0,
                      lambda u: {"url": u, "ok": False, "error": {"kind": "timeout", "message": f"no answer within {timeout:.0f}s"}})
    return [p if not isinstance(p, Exception) else {"url": u, "ok": False, "error": error_data(p)}
            for u, p in probes.items()]


def etcd_runs_here(node: NodeView, dcs: dict[str, Any]) -> bool:
    """Will an etcd member run on this node? One of its endpoints is one of this node's addresses."""
    mine = own_hosts(node)
    hosts = {_host_of(u) for u in node.etcd_endpoints}
    for m in dcs.get("members_etcd") or []:
        hosts.update(_host_of(u) for u in m.get("client_urls") or [])
    return bool(mine & {h for h in hosts if h})


# --------------------------------------------------------------------------- firewall and clock


def firewall(timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if shutil.which("ufw"):
        res = run_cmd(["ufw", "status", "verbose"], timeout)
        text = res.get("stdout") or ""
        entry: dict[str, Any] = {"readable": res.get("exit_code") == 0 and "Status:" in text}
        if not entry["readable"]:
            entry["error"] = res.get("error") or {"kind": "permission" if "root" in (res.get("stderr") or "") else "error",
                                                  "message": res.get("stderr") or "no output"}
        else:
            m = re.search(r"Status:\s*(\w+)", text)
            entry["active"] = bool(m and m.group(1) == "active")
            d = re.search(r"Default:\s*(\w+)\s*\(incoming\)", text)
            entry["default_incoming"] = d.group(1) if d else None
            rules = []
            for line in text.splitlines():
                r = re.match(r"^(\S+(?:\s\(v6\))?)\s+(ALLOW|DENY|REJECT|LIMIT)(?:\s+IN)?\s+(.+?)\s*$", line)
                if r:
                    rules.append({"to": r.group(1), "action": r.group(2), "from": r.group(3)})
            entry["rules"] = rules
        out["ufw"] = entry
    if shutil.which("nft"):
        res = run_cmd(["nft", "list", "ruleset"], timeout)
        entry = {"readable": res.get("exit_code") == 0}
        if not entry["readable"]:
            entry["error"] = res.get("error") or {"kind": "error", "message": res.get("stderr") or "no output"}
        else:
            entry["input_chains"] = _nft_input_chains(res.get("stdout") or "")
        out["nft"] = entry
    return out


def _nft_input_chains(text: str) -> list[dict[str, Any]]:
    """Input-hook chains with their policy and the rule lines (enough to see dport accepts)."""
    chains = []
    for m in re.finditer(r"chain\s+(\S+)\s*\{(.*?)\n\s*\}", text, re.DOTALL):
        body = m.group(2)
        if "hook input" not in body:
            continue
        pol = re.search(r"policy\s+(\w+)", body)
        rules = [l.strip() for l in body.splitlines() if l.strip() and "hook input" not in l]
        chains.append({"chain": m.group(1), "policy": pol.group(1) if pol else "accept", "rules": rules[:200]})
    return chains


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("pad", ctypes.c_int * 11)]


STA_UNSYNC = 0x0040


def kernel_clock() -> dict[str, Any]:
    """The kernel's NTP state via adjtimex(2) read-only (modes=0): what timedatectl reports too."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError) as exc:
        return {"error": error_data(exc)}
    if state < 0:
        return {"error": {"kind": "error", "message": os.strerror(ctypes.get_errno())}}
    return {"synchronized": not (tx.status & STA_UNSYNC) and tx.maxerror < 16_000_000,
            "maxerror_us": tx.maxerror, "state": state, "unsync_flag": bool(tx.status & STA_UNSYNC)}


def time_sync(timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"systemd_booted": os.path.isdir("/run/systemd/system"), "daemons": sorted({p.info["name"] for p in psutil.process_iter(["name"])
                                              if p.info.get("name") in TIME_DAEMONS})}
    if shutil.which("timedatectl"):
        res = run_cmd(["timedatectl", "show"], timeout)
        props = dict(l.split("=", 1) for l in (res.get("stdout") or "").splitlines() if "=" in l)
        if res.get("exit_code") == 0 and "NTPSynchronized" in props:
            out.update(source="timedatectl", synchronized=props["NTPSynchronized"] == "yes", ntp=props.get("NTP"))
            return out
        out["timedatectl_error"] = res.get("error") or {"kind": "error", "message": (res.get("stderr") or "no output")[:300]}
    kc = kernel_clock()
    out["kernel"] = kc
    if "synchronized" in kc:
        out.update(source="adjtimex", synchronized=kc["synchronized"])
    else:
        out.update(source=None, synchronized=None)
    return out


# --------------------------------------------------------------------------- the collector


@collector("preflight", profiles=("preflight",))
def collect_preflight(ctx: CollectContext) -> dict[str, Any]:
    node = NodeView(ctx.config or {}, ctx.config_path)
    timeout = max(0.5, float(ctx.options.timeout))
    connect_timeout = min(timeout, 2.0)
    pg_user = expected_pg_user(node, ctx.options.pg_user)["name"]
    facts: dict[str, Any] = {"pg_user": pg_user}
    # Peers named on the command line do not wait for the DCS read.
    cli_specs = peer_specs(node, list(ctx.options.peers), {})
    early = parallel({
        "peers": lambda: probe_peers(cli_specs, connect_timeout),
        "pg_binaries": lambda: pg_binaries(node, timeout),
        "pg_service": lambda: {**service_state("postgresql", timeout), "clusters": debian_clusters()},
        "patroni": lambda: patroni_install(timeout, pg_user),
        "firewall": lambda: firewall(timeout),
        "time": lambda: time_sync(timeout),
    }, timeout * 2 + 1, lambda k: {"error": {"kind": "timeout", "message": f"{k} did not finish in time"}})
    for k, v in early.items():
        facts[k] = v if not isinstance(v, Exception) else {"error": error_data(v)}
    if ctx.config_path:
        facts["config_access"] = {"path": ctx.config_path, **path_access(ctx.config_path, pg_user, os.R_OK)}
        try:
            facts["config_access"]["mode"] = f"0{stat.S_IMODE(os.stat(ctx.config_path).st_mode):o}"
        except OSError:
            pass
    try:
        from doctor.collect.dcs import dcs_snapshot
        dcs = dcs_snapshot(ctx)
    except ImportError:
        dcs = {}
    facts["etcd_here"] = etcd_runs_here(node, dcs)
    facts["etcd_extra_members"] = extra_etcd_members(ctx, node, dcs, min(timeout, 3.0)) if dcs.get("members_etcd") else []
    known = {p["host"] for p in facts["peers"] if isinstance(facts["peers"], list) and p.get("host")} \
        if isinstance(facts["peers"], list) else set()
    more = [p for p in peer_specs(node, [], dcs) if p.get("host") not in known]
    if isinstance(facts["peers"], list):
        # sources the DCS adds to a peer already probed
        by_host = {p["host"]: p for p in peer_specs(node, list(ctx.options.peers), dcs) if p.get("host")}
        for p in facts["peers"]:
            extra = by_host.get(p.get("host"))
            if extra:
                p["sources"] = extra["sources"]
                p["etcd_expected"] = extra["etcd_expected"]
                p["running_member"] = extra.get("running_member", False)
                p["names"] = extra["names"]
        facts["peers"] = facts["peers"] + probe_peers(more, connect_timeout)
    facts["peers_given"] = list(ctx.options.peers)
    return facts
