"""System facts: listeners, relevant processes, the data dir, disk space.

Everything here comes from psutil and the file system of this node. It records what
it sees (owner, mode, who listens where) and leaves judging to the checks.
"""

from __future__ import annotations

import grp
import os
import platform
import pwd
import socket
import stat
from pathlib import Path
from typing import Any

import psutil

from doctor.collect import CollectContext, collector
from doctor.errors import error_data
from doctor.model.node import NodeView

PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")
MAX_ENTRIES = 40


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _proc_info(p: psutil.Process) -> dict[str, Any]:
    info: dict[str, Any] = {"pid": p.pid}
    try:
        with p.oneshot():
            info.update(
                name=p.name(),
                ppid=p.ppid(),
                user=p.username(),
                cmdline=p.cmdline(),
                create_time=p.create_time(),
                status=p.status(),
            )
    except (psutil.Error, OSError) as exc:
        info["error"] = error_data(exc)
    return info


def find_pg_bin_dir(node: NodeView) -> str | None:
    """The PostgreSQL binaries this node would use: bin_dir, else the newest distribution path."""
    if node.bin_dir:
        return node.bin_dir
    import glob

    for pattern in PG_BIN_GLOBS:
        found = sorted(glob.glob(pattern), key=lambda p: [int(x) if x.isdigit() else x for x in Path(p).parent.name.split(".")])
        found = [f for f in found if os.path.exists(os.path.join(f, "postgres"))]
        if found:
            return found[-1]
    return None


def expected_pg_user(node: NodeView, override: str | None) -> dict[str, Any]:
    """The OS user that must own the data dir: the override, the binaries' owner, or postgres."""
    if override:
        return {"name": override, "source": "--pg-user"}
    bin_dir = find_pg_bin_dir(node)
    if bin_dir:
        try:
            owner = _user_name(os.stat(os.path.join(bin_dir, "postgres")).st_uid)
            if owner != "root":
                return {"name": owner, "source": f"owner of {bin_dir}/postgres"}
        except OSError:
            pass
    return {"name": "postgres", "source": "default"}


def listeners() -> list[dict[str, Any]]:
    """Every listening TCP socket with the process that owns it."""
    out: list[dict[str, Any]] = []
    procs: dict[int, dict[str, Any]] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        entry: dict[str, Any] = {"address": conn.laddr.ip, "port": conn.laddr.port, "pid": conn.pid,
                                 "family": "ipv6" if conn.family == socket.AF_INET6 else "ipv4"}
        if conn.pid:
            if conn.pid not in procs:
                try:
                    procs[conn.pid] = _proc_info(psutil.Process(conn.pid))
                except psutil.Error:
                    procs[conn.pid] = {"pid": conn.pid}
            p = procs[conn.pid]
            entry.update(name=p.get("name"), user=p.get("user"), cmdline=p.get("cmdline"), ppid=p.get("ppid"))
            if is_patroni_cmdline(p.get("cmdline") or []):
                entry["config"] = patroni_config(p.get("cmdline") or [])  # whose Patroni holds this port
        out.append(entry)
    out.sort(key=lambda e: (e["port"], e["address"]))
    return out


def _arg_value(cmdline: list[str], *flags: str) -> str | None:
    for i, arg in enumerate(cmdline):
        for flag in flags:
            if arg == flag and i + 1 < len(cmdline):
                return cmdline[i + 1]
            if flag.startswith("--") and arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
            if not flag.startswith("--") and arg.startswith(flag) and len(arg) > len(flag):
                return arg[len(flag):]
    return None


def is_patroni_cmdline(cmdline: list[str]) -> bool:
    for arg in cmdline[:3]:
        base = os.path.basename(arg)
        if base in ("patroni", "patroni.py") or (base == "-m" and "patroni" in cmdline):
            return True
    return False


def patroni_config(cmdline: list[str]) -> str | None:
    """The config a Patroni command line names, resolved on the node (as ``config.realpath`` is)."""
    cfg = next((a for a in reversed(cmdline[1:]) if a.endswith((".yml", ".yaml")) or os.path.isfile(a)), None)
    return os.path.realpath(cfg) if cfg else None


def relevant_processes() -> dict[str, list[dict[str, Any]]]:
    """Patroni daemons, postmasters (not their children) and etcd servers on this host."""
    patroni, postmasters, etcd = [], [], []
    by_pid: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["pid", "ppid", "name", "cmdline"]):
        by_pid[p.pid] = p
    for p in by_pid.values():
        name = p.info.get("name") or ""
        cmdline = p.info.get("cmdline") or []
        if is_patroni_cmdline(cmdline) and "patronictl" not in " ".join(cmdline[:2]) \
                and not any(a in ("--validate-config", "--version", "--generate-config", "--generate-sample-config")
                            for a in cmdline):
            info = _proc_info(p)
            info["config"] = patroni_config(cmdline)
            patroni.append(info)
        elif name in ("postgres", "postmaster") and cmdline and not cmdline[0].startswith("postgres:"):
            parent = by_pid.get(p.info.get("ppid") or 0)
            if parent is not None and (parent.info.get("name") in ("postgres", "postmaster")):
                continue  # a backend or auxiliary process, not the postmaster
            info = _proc_info(p)
            data_dir = _arg_value(cmdline, "-D", "--pgdata")
            if not data_dir:
                try:
                    data_dir = p.cwd()
                except psutil.Error:
                    data_dir = None
            info["data_dir"] = os.path.realpath(data_dir) if data_dir else None  # as system.datadir.realpath
            port = _arg_value(cmdline, "--port", "-p")
            info["port"] = int(port) if port and port.isdigit() else None
            # Patroni starts postgres with its controlled GUCs on the command line.
            info["patroni_style_args"] = any(a.startswith("--config-file=") for a in cmdline) and any(
                a.startswith("--cluster_name=") or a.startswith("--max_wal_senders=") for a in cmdline)
            if parent is not None:
                info["parent"] = {"pid": parent.pid, "name": parent.info.get("name"),
                                  "cmdline": parent.info.get("cmdline") or []}
            postmasters.append(info)
        elif name == "etcd" or (cmdline and os.path.basename(cmdline[0]) == "etcd"):
            etcd.append(_proc_info(p))
    return {"patroni": patroni, "postmasters": postmasters, "etcd": etcd}


def _mode_str(st_mode: int) -> str:
    return f"0{stat.S_IMODE(st_mode):o}"


def read_postmaster_pid(path: Path) -> dict[str, Any] | None:
    """Parse postmaster.pid (pid, data dir, start time, port, socket dir, listen address)."""
    pidfile = path / "postmaster.pid"
    try:
        lines = pidfile.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"error": error_data(exc)}
    info: dict[str, Any] = {"path": str(pidfile), "raw_first_line": lines[0] if lines else ""}
    if lines and lines[0].strip().lstrip("-").isdigit():
        pid = abs(int(lines[0].strip()))
        info["pid"] = pid
        alive = psutil.pid_exists(pid)
        info["pid_running"] = alive
        if alive:
            try:
                proc = psutil.Process(pid)
                info["pid_name"] = proc.name()
                info["pid_is_postgres"] = info["pid_name"] in ("postgres", "postmaster")
                info["pid_cmdline"] = proc.cmdline()
            except psutil.NoSuchProcess:  # it exited while being read (a postmaster shutting down): not running
                info["pid_running"] = False
                info.pop("pid_name", None)
                info.pop("pid_is_postgres", None)
            except psutil.Error:
                info["pid_is_postgres"] = info.get("pid_is_postgres", False)
    if len(lines) > 1:
        info["data_dir"] = lines[1]
    if len(lines) > 3 and lines[3].strip().isdigit():
        info["port"] = int(lines[3])
    if len(lines) > 5:
        info["listen"] = lines[5].strip()
    return info


def datadir_facts(data_dir: str | None) -> dict[str, Any]:
    """Owner, mode and contents of the data dir, and the path above it."""
    if not data_dir:
        return {"path": None, "configured": False}
    path = Path(data_dir)
    # resolved here, on the node: checks compare it with the postmasters' (resolved) data dirs
    out: dict[str, Any] = {"path": data_dir, "realpath": os.path.realpath(data_dir), "configured": True}
    try:
        st = path.lstat()
    except FileNotFoundError:
        out["exists"] = False
    except OSError as exc:
        out["exists"] = None
        out["error"] = error_data(exc)
        return out
    else:
        out["exists"] = True
        if stat.S_ISLNK(st.st_mode):
            out["symlink_to"] = os.path.realpath(path)
            st = path.stat()
        out.update(
            is_dir=stat.S_ISDIR(st.st_mode), uid=st.st_uid, owner=_user_name(st.st_uid), gid=st.st_gid,
            group=_group_name(st.st_gid), mode=_mode_str(st.st_mode),
        )
        if out["is_dir"]:
            try:
                names = sorted(os.listdir(path))
                out["entry_count"] = len(names)
                out["entries"] = names[:MAX_ENTRIES]
                out["has_pg_version"] = "PG_VERSION" in names
                if out["has_pg_version"]:
                    out["pg_version"] = (path / "PG_VERSION").read_text(errors="replace").strip()
                out["has_pg_wal"] = "pg_wal" in names
                out["postmaster_pid"] = read_postmaster_pid(path)
                for marker in ("standby.signal", "recovery.signal", "backup_label"):
                    out[marker.replace(".", "_")] = marker in names
            except OSError as exc:
                out["list_error"] = error_data(exc)
    parents = []
    for parent in list(path.parents)[:6]:
        try:
            pst = parent.stat()
            parents.append({"path": str(parent), "owner": _user_name(pst.st_uid), "mode": _mode_str(pst.st_mode)})
        except OSError:
            continue
    out["parents"] = parents
    return out


def _existing_ancestor(path: str) -> str:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return str(p)


def disk_facts(paths: dict[str, str]) -> list[dict[str, Any]]:
    """Free space for each role (data, wal, logs) on the filesystem that holds it."""
    parts = sorted(psutil.disk_partitions(all=True), key=lambda d: len(d.mountpoint), reverse=True)
    out = []
    for role, path in paths.items():
        if not path:
            continue
        target = os.path.realpath(_existing_ancestor(path))
        entry: dict[str, Any] = {"role": role, "path": path, "checked": target}
        try:
            usage = psutil.disk_usage(target)
            sv = os.statvfs(target)
            entry.update(total=usage.total, used=usage.used, free=usage.free, percent_used=usage.percent,
                         free_percent=round(100.0 * usage.free / usage.total, 2) if usage.total else 0.0,
                         inodes_free=sv.f_favail, inodes_total=sv.f_files)
        except OSError as exc:
            entry["error"] = error_data(exc)
        mount = next((d for d in parts if target == d.mountpoint or target.startswith(d.mountpoint.rstrip("/") + "/")), None)
        if mount:
            entry.update(mountpoint=mount.mountpoint, fstype=mount.fstype, device=mount.device)
        out.append(entry)
    return out


def log_dirs(node: NodeView) -> dict[str, str]:
    dirs: dict[str, str] = {}
    if node.log_dir:
        dirs["patroni-log"] = node.log_dir
    params = node.get("postgresql", "parameters") or {}
    if isinstance(params, dict) and params.get("log_directory") and node.data_dir:
        log_directory = str(params["log_directory"])
        dirs["postgres-log"] = log_directory if log_directory.startswith("/") else os.path.join(node.data_dir, log_directory)
    return dirs


@collector("system")
def collect_system(ctx: CollectContext) -> dict[str, Any]:
    node = NodeView(ctx.config or {}, ctx.config_path)
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "euid": os.geteuid(),
        "boot_time": psutil.boot_time(),
    }
    facts["pg_user"] = expected_pg_user(node, ctx.options.pg_user)
    facts["pg_bin_dir"] = find_pg_bin_dir(node)
    try:
        facts["listeners"] = listeners()
    except (psutil.Error, OSError) as exc:
        facts["listeners"] = {"error": error_data(exc)}
    facts["processes"] = relevant_processes()
    facts["datadir"] = datadir_facts(node.data_dir)
    paths = {"data": node.data_dir or ""}
    if node.data_dir:
        paths["wal"] = os.path.join(node.data_dir, "pg_wal")
    paths.update(log_dirs(node))
    facts["disk"] = disk_facts(paths)
    return facts
