"""The data directory: owner and mode, stray files, a leftover postmaster.pid."""

from __future__ import annotations

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn

GOOD_MODES = ("0700", "0750")


def _writable_by(parent: dict, user: str) -> bool:
    """Can ``user`` create an entry in this directory, judged from its owner and mode bits?"""
    try:
        mode = int(str(parent.get("mode") or "0"), 8)
    except ValueError:
        return False
    return bool(mode & 0o002) or (parent.get("owner") == user and bool(mode & 0o200))


@check("datadir.permissions", "data dir owner and mode", playbook="datadir-permissions",
       profiles=("run", "preflight"), needs=("system.datadir",))
def datadir_permissions(ctx: CheckContext) -> Verdict:
    d = ctx.facts.get("system.datadir") or {}
    pg_user = ctx.facts.get("system.pg_user.name") or "postgres"
    path = d.get("path")
    values = {"data_dir": path, "pg_user": pg_user, "mode": d.get("mode"), "owner": d.get("owner")}
    if not path:
        return skip("postgresql.data_dir is not set in the config")
    if d.get("error"):
        return fail(f"{path} cannot be examined: {d['error'].get('message')}", values=values)
    if d.get("exists") is False:
        parent = (d.get("parents") or [{}])[0]
        values["parent"] = parent.get("path")
        values["missing"] = True
        where = f"{parent.get('path')} (owner {parent.get('owner')}, mode {parent.get('mode')})"
        if _writable_by(parent, pg_user):
            # a replica between clone attempts, or a node before bootstrap: Patroni creates it itself
            return ok(f"{path} does not exist yet; {pg_user} may write to {where}, so Patroni creates it at "
                      "bootstrap or clone", values=values)
        return fail(f"{path} does not exist and {pg_user} cannot create it: {where} is not writable for {pg_user}",
                    evidence=[f"parent {where}"], values=values)
    if not d.get("is_dir"):
        return fail(f"{path} exists but is not a directory", values=values)
    wrong = []
    if d.get("owner") != pg_user:
        wrong.append(f"owned by {d.get('owner')}")
    if d.get("mode") not in GOOD_MODES:
        wrong.append(f"mode {d.get('mode')}")
    if wrong:
        return fail(f"{path} is {d.get('mode')} owned by {d.get('owner')}:{d.get('group')}; PostgreSQL needs 0700 "
                    f"(or 0750) owned by {pg_user}",
                    evidence=[f"stat {path}: mode {d.get('mode')}, owner {d.get('owner')}, group {d.get('group')}",
                              f"expected owner {pg_user} ({ctx.facts.get('system.pg_user.source')})"],
                    values=values)
    return ok(f"{path} is {d.get('mode')} owned by {pg_user}")


@check("datadir.empty", "no stray files in an uninitialised data dir", playbook="datadir-not-empty",
       profiles=("run", "preflight"), needs=("system.datadir",))
def datadir_not_empty(ctx: CheckContext) -> Verdict:
    d = ctx.facts.dict_at("system.datadir") or {}
    path = d.get("path")
    if not d.get("exists") or not d.get("is_dir"):
        return ok(f"{path or 'data dir'} does not exist yet, nothing stray in it")
    if d.get("list_error"):
        return skip(f"cannot list {path}: {d['list_error'].get('message')}")
    if d.get("has_pg_version"):
        return ok(f"{path} holds an initialised cluster (PG_VERSION {d.get('pg_version')})")
    count = ctx.facts.int_at("system.datadir.entry_count") or 0
    if not count:
        return ok(f"{path} is empty, ready for bootstrap or clone")
    entries = [e for e in ctx.facts.list_at("system.datadir.entries") if isinstance(e, str)]
    shown = ", ".join(entries[:8]) + (f" and {count - 8} more" if count > 8 else "")
    return fail(f"{path} has {count} entr{'y' if count == 1 else 'ies'} but no PG_VERSION: {shown}; "
                "initdb and pg_basebackup refuse a non-empty directory",
                evidence=[f"ls {path}: {' '.join(entries)}"],
                values={"data_dir": path, "entries": entries, "lost_found": "lost+found" in entries})


@check("datadir.postmaster-pid", "no stale postmaster.pid", playbook="postmaster-pid-stale",
       profiles=("run", "preflight"), needs=("system.datadir",))
def postmaster_pid_stale(ctx: CheckContext) -> Verdict:
    d = ctx.facts.get("system.datadir") or {}
    pidinfo = d.get("postmaster_pid")
    path = d.get("path")
    if not pidinfo:
        return ok(f"no postmaster.pid in {path or 'the data dir'}")
    if pidinfo.get("error"):
        return skip(f"cannot read {pidinfo.get('path')}: {pidinfo['error'].get('message')}")
    pid = pidinfo.get("pid")
    values = {"data_dir": path, "pid": pid, "pidfile": pidinfo.get("path")}
    if pid is None:
        return fail(f"{pidinfo.get('path')} is malformed (first line {pidinfo.get('raw_first_line')!r}); "
                    "PostgreSQL cannot start until it is removed", values=values)
    evidence = [f"{pidinfo.get('path')}: pid {pid}, port {pidinfo.get('port')}"]
    if not pidinfo.get("pid_running"):
        running = [p for p in ctx.facts.get("system.processes.postmasters") or [] if p.get("data_dir") == path]
        if running:
            return ok(f"postmaster.pid names pid {pid}, but a postmaster (pid {running[0]['pid']}) runs on {path}")
        return warn(f"{pidinfo.get('path')} names pid {pid}, which is not running: a postmaster on {path} "
                    "ended without a clean shutdown (crash, kill -9, power loss)",
                    evidence=[*evidence, "PostgreSQL normally replaces a lock file whose pid is dead; it refuses " "if the old shared memory is still attached"], values=values)
    if not pidinfo.get("pid_is_postgres"):
        return fail(f"{pidinfo.get('path')} names pid {pid}, which now belongs to {pidinfo.get('pid_name')!r}, "
                    "not PostgreSQL; PostgreSQL will refuse to start (\"lock file already exists\")",
                    evidence=[*evidence, f"pid {pid}: {' '.join(pidinfo.get('pid_cmdline') or [])}"], values=values)
    return ok(f"postmaster.pid names pid {pid}, a running PostgreSQL")
