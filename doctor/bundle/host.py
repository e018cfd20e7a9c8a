"""System facts a support engineer wants beside the snapshot: OS, kernel, mounts, disks,
memory, the environment Patroni runs with.

Each part is gathered on its own, within the bundle command's ``Deadline``; a part that
fails, or that the spent budget leaves out, is recorded with its reason and the others go
on. Environments are redacted here, before they leave this module.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import psutil

from doctor.collect.deadline import Deadline
from doctor.errors import error_data
from doctor.redact import Redactor

# Environment variables that matter for Patroni, PostgreSQL and etcd clients.
ENV_PREFIXES = ("PATRONI", "PG", "ETCD", "PATRONICTL", "LC_", "LANG", "TZ", "PATH", "HOME", "USER")
# Pseudo filesystems whose usage says nothing.
PSEUDO_FS = {"proc", "sysfs", "devpts", "cgroup", "cgroup2", "mqueue", "securityfs", "debugfs", "tracefs",
             "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs", "binfmt_misc", "nsfs", "rpc_pipefs"}


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    with open("/etc/os-release", encoding="utf-8") as fh:
        for line in fh:
            if "=" in line:
                k, _, v = line.strip().partition("=")
                out[k] = v.strip('"')
    return out


def _host() -> dict[str, Any]:
    u = platform.uname()
    info: dict[str, Any] = {"hostname": u.node, "system": u.system, "kernel": u.release, "kernel_version": u.version,
                            "machine": u.machine, "python": platform.python_version(),
                            "boot_time": psutil.boot_time(), "uptime_seconds": round(time.time() - psutil.boot_time()),
                            "cpu_count": psutil.cpu_count(), "load_average": list(os.getloadavg())}
    try:
        info["os_release"] = _os_release()
    except OSError as exc:
        info["os_release"] = {"error": error_data(exc)}
    vm = psutil.virtual_memory()
    sw = psutil.swap_memory()
    info["memory"] = {"total": vm.total, "available": vm.available, "percent_used": vm.percent,
                      "swap_total": sw.total, "swap_used": sw.used}
    return info


def _mounts() -> list[dict[str, Any]]:
    out = []
    for p in psutil.disk_partitions(all=True):
        entry: dict[str, Any] = {"device": p.device, "mountpoint": p.mountpoint, "fstype": p.fstype, "options": p.opts}
        if p.fstype not in PSEUDO_FS:
            try:
                u = psutil.disk_usage(p.mountpoint)
                sv = os.statvfs(p.mountpoint)
                entry.update(total=u.total, used=u.used, free=u.free, percent_used=u.percent,
                             inodes_total=sv.f_files, inodes_free=sv.f_favail)
            except OSError as exc:
                entry["error"] = error_data(exc)
        out.append(entry)
    return out


def _relevant_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES)}


def _process_envs(pids: list[int], redactor: Redactor, deadline: Deadline) -> list[dict[str, Any]]:
    out = []
    for pid in pids:
        entry: dict[str, Any] = {"pid": pid}
        if deadline.expired():
            entry["error"] = deadline.timeout_error(f"reading the environment of pid {pid}")
            out.append(entry)
            continue
        try:
            proc = psutil.Process(pid)
            entry["name"] = proc.name()
            entry["environment"] = redactor.environ(_relevant_env(proc.environ()), "system/environment.json")
        except (psutil.Error, OSError) as exc:
            entry["error"] = error_data(exc)
        out.append(entry)
    return out


def gather(system_facts: dict[str, Any] | None, redactor: Redactor,
           deadline: Deadline) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``{file name: data}`` for the bundle's system/ directory, and what could not be gathered."""
    files: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    parts: dict[str, Callable[[], Any]] = {"system/host.json": _host, "system/mounts.json": _mounts}
    for name, fn in parts.items():
        if deadline.expired():
            problems.append({"what": name, "error": deadline.timeout_error(name)})
            continue
        try:
            files[name] = fn()
        except Exception as exc:  # one part failing must not lose the others
            problems.append({"what": name, "error": error_data(exc)})
    procs = (system_facts or {}).get("processes") if isinstance(system_facts, dict) else None
    pids = []
    if isinstance(procs, dict):
        for group in ("patroni", "postmasters", "etcd"):
            pids.extend(p["pid"] for p in procs.get(group) or [] if isinstance(p, dict) and p.get("pid"))
    env = {"pgdoctor": redactor.environ(_relevant_env(dict(os.environ)), "system/environment.json"),
           "processes": _process_envs(pids[:20], redactor, deadline)}
    files["system/environment.json"] = env
    for p in env["processes"]:
        if p.get("error"):
            problems.append({"what": f"environment of pid {p['pid']} ({p.get('name', '?')})", "error": p["error"]})
    return files, problems
