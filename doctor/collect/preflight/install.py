"""Preflight, install: the PostgreSQL and Patroni installations and the services that start them.

The server binaries and ``postgres --version``, the distribution's ``postgresql`` service
and the clusters it would start, Patroni's executable, version, interpreter and etcd3
support, and the ``patroni.service`` unit file. Facts only; ``checks/preflight.py`` judges.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path
from typing import Any

from doctor.collect.command import run_command
from doctor.collect.config import PATRONI_GLOBS, patroni_candidates
from doctor.collect.deadline import Deadline
from doctor.collect.preflight.access import path_access
from doctor.collect.system import PG_BIN_GLOBS, find_pg_bin_dir
from doctor.errors import error_data
from doctor.model.node import NodeView

PG_TOOLS = ("postgres", "pg_ctl", "initdb", "pg_basebackup", "pg_rewind", "pg_controldata")
UNIT_PATHS = ("/etc/systemd/system/patroni.service", "/lib/systemd/system/patroni.service",
              "/usr/lib/systemd/system/patroni.service")


def pg_binaries(node: NodeView, deadline: Deadline) -> dict[str, Any]:
    """Where the server binaries are, which are missing, and ``postgres --version``."""
    bin_dir = find_pg_bin_dir(node)
    out: dict[str, Any] = {"bin_dir": bin_dir, "source": "postgresql.bin_dir" if node.bin_dir else "distribution path",
                           "configured_bin_dir": node.bin_dir}
    if not bin_dir:
        out["found"] = False
        out["searched"] = list(PG_BIN_GLOBS)
        return out
    out["found"] = os.path.isdir(bin_dir)
    out["missing"] = [t for t in PG_TOOLS if not os.access(os.path.join(bin_dir, t), os.X_OK)]
    postgres = os.path.join(bin_dir, "postgres")
    if os.access(postgres, os.X_OK):
        res = run_command([postgres, "--version"], deadline)
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
            data_directory = _conf_value(text, "data_directory")
            entry.update(port=int(port) if port and port.isdigit() else 5432, data_directory=data_directory,
                         listen_addresses=_conf_value(text, "listen_addresses") or "localhost")
            if data_directory:
                # resolved here, on the node: checks compare it with postmasters' (resolved) data dirs
                entry["data_directory_realpath"] = os.path.realpath(data_directory)
        except OSError as exc:
            entry["error"] = error_data(exc)
        try:
            entry["start"] = next((l.strip() for l in (d / "start.conf").read_text().splitlines()
                                   if l.strip() and not l.startswith("#")), "auto")
        except OSError:
            entry["start"] = "auto"
        out.append(entry)
    return out


def service_state(name: str, deadline: Deadline) -> dict[str, Any]:
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
        act = run_command(["systemctl", "is-active", name], deadline)
        out["active"] = (act.get("stdout") or "").strip() == "active" if not act.get("error") else None
        out["active_text"] = (act.get("stdout") or "").strip() or None
        out["active_source"] = "systemctl is-active"
    if out["systemctl"] and out["installed"]:
        en = run_command(["systemctl", "is-enabled", name], deadline)
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
    rl = run_command(["runlevel"], deadline) if shutil.which("runlevel") else {}
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


def patroni_install(deadline: Deadline, pg_user: str) -> dict[str, Any]:
    """Patroni's executable, version, the interpreter it runs on and whether its etcd3 DCS imports."""
    cands = patroni_candidates()
    out: dict[str, Any] = {"candidates": cands, "found": bool(cands)}
    if not cands:
        out["searched"] = ["$PATH", *list(PATRONI_GLOBS)]
        return out
    exe = cands[0]
    out["executable"] = exe
    res = run_command([exe, "--version"], deadline, "slow-command")
    text = ((res.get("stdout") or "") + (res.get("stderr") or "")).strip()
    m = re.search(r"patroni\s+(\d+(?:\.\d+)+)", text, re.IGNORECASE)
    out["version"] = m.group(1) if m else None
    out["version_text"] = text.splitlines()[0][:200] if text else None
    if res.get("error"):
        out["version_error"] = res["error"]
    python = _interpreter(exe)
    out["python"] = python
    if python and os.access(python, os.X_OK):
        imp = run_command([python, "-c", ETCD3_PROBE], deadline, "slow-command")
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
