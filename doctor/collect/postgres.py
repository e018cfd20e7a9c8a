"""PostgreSQL facts: this node's server (as the superuser from the config) and a real
replication-protocol login as the replication user against the leader.

Never prompts for a password: credentials come only from the config, ``passfile`` is
a password file that cannot exist, and every connection has a ``connect_timeout``. The replication login is the
one a replica's pg_basebackup makes (``replication=true`` + IDENTIFY_SYSTEM), so the
server's exact refusal (password, pg_hba, missing REPLICATION) is recorded verbatim.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

# psycopg (~130 ms to import) is imported where a connection is made: the collectors that use it run in
# a worker process of their own (doctor/collect/_worker.py), and the rest of a run never pays for it.
if TYPE_CHECKING:
    import psycopg

from doctor.collect import CollectContext, collector
from doctor.collect._parallel import parallel
from doctor.collect.command import failure_message, run_command
from doctor.collect.deadline import GRACE, Deadline
from doctor.collect.system import find_pg_bin_dir
from doctor.errors import error_data
from doctor.model.node import WILDCARDS, NodeView

SETTINGS = ("wal_level", "wal_log_hints", "data_checksums", "max_wal_senders", "max_replication_slots",
            "synchronous_standby_names", "synchronous_commit", "hot_standby", "max_slot_wal_keep_size",
            "wal_keep_size", "listen_addresses", "port", "hba_file", "data_directory", "server_version_num",
            "cluster_name", "primary_conninfo", "primary_slot_name", "max_connections", "archive_mode")
CONTROLDATA_KEYS = {
    "Database system identifier": "system_identifier",
    "Database cluster state": "state",
    "Latest checkpoint's TimeLineID": "timeline",
    "Latest checkpoint location": "checkpoint_lsn",
    "Minimum recovery ending loc's timeline": "min_recovery_end_timeline",
    "Data page checksum version": "data_checksum_version",
    "wal_log_hints setting": "wal_log_hints",
    "pg_control version number": "pg_control_version",
}


def server_error(exc: BaseException) -> dict[str, Any]:
    """The server's own words from a libpq failure, e.g. 'password authentication failed for user "x"'."""
    text = str(exc).strip()
    data = error_data(exc)
    m = re.search(r"(?:FATAL|ERROR):\s+(.*)", text)
    if m:
        data["server_message"] = m.group(1).strip().splitlines()[0]
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        data["sqlstate"] = sqlstate
    low = text.lower()
    if "no pg_hba.conf entry" in low or "pg_hba.conf rejects" in low:
        data["kind"] = "hba"
    elif "password authentication failed" in low or "no password supplied" in low:
        data["kind"] = "auth"
    elif "must be superuser or replication role" in low or "permission denied to start wal sender" in low:
        data["kind"] = "no-replication-privilege"
    elif re.search(r'role ".*" does not exist', low):
        data["kind"] = "no-role"
    elif "connection refused" in low:
        data["kind"] = "refused"
    elif "timeout expired" in low:
        data["kind"] = "timeout"
    elif "the database system is starting up" in low or "shutting down" in low or "not yet accepting" in low:
        data["kind"] = "starting"
    return data


# A password file that cannot exist (nothing can be created under /proc): libpq skips a missing
# passfile silently, while /dev/null makes it warn "is not a plain file" on stderr.
NO_PASSFILE = "/proc/pgdoctor-no-passfile"


def conninfo(host: str, port: int, user: str, password: str | None, timeout: float, dbname: str = "postgres",
             **extra: Any) -> str:
    """A libpq conninfo that can never prompt or read a stray password file."""
    from psycopg.conninfo import make_conninfo
    kw: dict[str, Any] = {"host": host, "port": port, "user": user, "dbname": dbname,
                          "connect_timeout": max(2, int(timeout)), "passfile": NO_PASSFILE,
                          "application_name": "pgdoctor", **extra}
    if password is not None:
        kw["password"] = password
    return make_conninfo(**kw)


def credentials(node: NodeView, role: str) -> tuple[str, str | None]:
    sec = node.get("postgresql", "authentication", role) or {}
    sec = sec if isinstance(sec, dict) else {}
    default = node.superuser if role == "superuser" else node.replication_user
    user = str(sec.get("username") or default)
    password = sec.get("password")
    return user, None if password is None else str(password)


def local_targets(node: NodeView) -> list[tuple[str, str]]:
    """Where this node's PostgreSQL can be reached: (how, host), TCP first, then the unix socket."""
    out: list[tuple[str, str]] = []
    for h in node.pg_hosts:
        if h not in WILDCARDS:
            out.append(("tcp", h))
            break
    else:
        connect = (node.pg_connect or "").rpartition(":")[0]
        out.append(("tcp", connect or "127.0.0.1"))
    params = node.get("postgresql", "parameters") or {}
    sockets = str(params.get("unix_socket_directories") or "") if isinstance(params, dict) else ""
    for d in [s.strip() for s in sockets.split(",") if s.strip()] + ["/var/run/postgresql", "/tmp"]:
        if os.path.exists(os.path.join(d, f".s.PGSQL.{node.pg_port}")):
            out.append(("socket", d))
            break
    return out


def query_rows(conn: psycopg.Connection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    cols = [c.name for c in cur.description or []]
    return [{k: (str(v) if v is not None and not isinstance(v, (int, float, bool, str, list)) else v)
             for k, v in zip(cols, row, strict=False)} for row in cur.fetchall()]


QUERIES: dict[str, str] = {
    "system": "SELECT system_identifier::text AS system_identifier FROM pg_control_system()",
    "checkpoint": "SELECT timeline_id, redo_lsn::text AS redo_lsn FROM pg_control_checkpoint()",
    "replication": ("SELECT pid, usename, application_name, client_addr::text AS client_addr, state, sync_state, "
                    "sync_priority, sent_lsn::text AS sent_lsn, write_lsn::text AS write_lsn, "
                    "flush_lsn::text AS flush_lsn, replay_lsn::text AS replay_lsn, "
                    "pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
                    "ELSE pg_current_wal_lsn() END, replay_lsn)::bigint AS replay_lag_bytes "
                    "FROM pg_stat_replication ORDER BY application_name"),
    "wal_receiver": ("SELECT pid, status, receive_start_tli, received_tli, written_lsn::text AS written_lsn, "
                     "flushed_lsn::text AS flushed_lsn, latest_end_lsn::text AS latest_end_lsn, slot_name, "
                     "sender_host, sender_port FROM pg_stat_wal_receiver"),
    "slots": ("SELECT slot_name, slot_type, active, active_pid, restart_lsn::text AS restart_lsn, wal_status, "
              "pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
              "ELSE pg_current_wal_lsn() END, restart_lsn)::bigint AS retained_bytes "
              "FROM pg_replication_slots ORDER BY slot_name"),
    "hba_rules": ("SELECT line_number, type, database, user_name, address, netmask, auth_method, error "
                  "FROM pg_hba_file_rules ORDER BY line_number"),
}


def _server_facts(conn: psycopg.Connection) -> dict[str, Any]:
    import psycopg
    out: dict[str, Any] = {}
    row = query_rows(conn, "SELECT pg_is_in_recovery() AS in_recovery, version() AS version")[0]
    out.update(row)
    recovery = bool(row["in_recovery"])
    settings = query_rows(conn, "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),))
    out["settings"] = {s["name"]: s["setting"] + (f" {s['unit']}" if s.get("unit") and s["name"].endswith("size") else "")
                       for s in settings}
    if recovery:
        lsn = query_rows(conn, "SELECT pg_last_wal_receive_lsn()::text AS receive_lsn, pg_last_wal_replay_lsn()::text "
                          "AS replay_lsn, pg_is_wal_replay_paused() AS replay_paused, "
                          "pg_last_xact_replay_timestamp()::text AS replay_timestamp")[0]
    else:
        lsn = query_rows(conn, "SELECT pg_current_wal_lsn()::text AS current_lsn, "
                          "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS wal_timeline")[0]
    out.update(lsn)
    for name, sql in QUERIES.items():
        try:
            rows = query_rows(conn, sql)
        except psycopg.Error as exc:
            out[name] = {"error": server_error(exc)}
            continue
        single = name in ("system", "checkpoint", "wal_receiver")
        out[name] = (rows[0] if rows else None) if single else rows
    out["system_identifier"] = (out.get("system") or {}).get("system_identifier") \
        if isinstance(out.get("system"), dict) else None
    wr = out.get("wal_receiver") if isinstance(out.get("wal_receiver"), dict) else None
    ckpt = out.get("checkpoint") if isinstance(out.get("checkpoint"), dict) else {}
    if not recovery and out.get("wal_timeline"):
        out["timeline"], out["timeline_source"] = out["wal_timeline"], "current WAL file"
    elif wr and wr.get("received_tli"):
        out["timeline"], out["timeline_source"] = wr["received_tli"], "pg_stat_wal_receiver.received_tli"
    else:
        out["timeline"], out["timeline_source"] = ckpt.get("timeline_id"), "pg_control_checkpoint()"
    return out


def connect(targets: list[tuple[str, str]], port: int, user: str, password: str | None, timeout: float,
            **extra: Any) -> tuple[psycopg.Connection | None, dict[str, Any]]:
    """Try each target in turn; return the first connection and what each attempt said."""
    import psycopg
    attempts = []
    for how, host in targets:
        t0 = time.monotonic()
        try:
            conn = psycopg.connect(conninfo(host, port, user, password, timeout, **extra), autocommit=True)
        except psycopg.Error as exc:
            attempts.append({"via": how, "host": host, "port": port, "user": user, "error": server_error(exc),
                             "ms": round((time.monotonic() - t0) * 1000, 1)})
            continue
        attempts.append({"via": how, "host": host, "port": port, "user": user, "ok": True,
                         "ms": round((time.monotonic() - t0) * 1000, 1)})
        return conn, {"attempts": attempts, "via": how, "host": host, "port": port, "user": user}
    return None, {"attempts": attempts, "error": attempts[-1]["error"] if attempts else
                  {"kind": "not-configured", "message": "no address to reach PostgreSQL"}}


def controldata(node: NodeView, deadline: Deadline) -> dict[str, Any]:
    """``pg_controldata`` of the data dir: works while PostgreSQL is down."""
    if not node.data_dir:
        return {"error": {"kind": "not-configured", "message": "postgresql.data_dir is not set"}}
    if not os.path.exists(os.path.join(node.data_dir, "global", "pg_control")):
        return {"missing": True, "path": os.path.join(node.data_dir, "global", "pg_control")}
    bin_dir = find_pg_bin_dir(node)
    exe = os.path.join(bin_dir, "pg_controldata") if bin_dir else "pg_controldata"
    cp = run_command([exe, "-D", node.data_dir], deadline, env={"PATH": "/usr/bin:/bin"})
    if cp.get("error"):
        return {"error": cp["error"]}
    if cp["exit_code"] != 0:
        return {"error": {"kind": "error", "message": failure_message(cp)}}
    out: dict[str, Any] = {}
    for line in cp["stdout"].splitlines():
        key, _, value = line.partition(":")
        if key.strip() in CONTROLDATA_KEYS:
            out[CONTROLDATA_KEYS[key.strip()]] = value.strip()
    for k in ("timeline", "min_recovery_end_timeline", "data_checksum_version"):
        if str(out.get(k, "")).isdigit():
            out[k] = int(out[k])
    return out


def leader_target(node: NodeView, dcs: dict[str, Any]) -> dict[str, Any]:
    """Where a replica of this cluster would clone from: the leader's conn_url, else this node."""
    leader = dcs.get("leader") if isinstance(dcs, dict) else None
    for m in (dcs.get("members") or []) if isinstance(dcs, dict) else []:
        if leader and m.get("name") == leader and m.get("conn_url"):
            u = urlparse(str(m["conn_url"]))
            return {"member": leader, "host": u.hostname, "port": u.port or 5432, "source": "DCS leader member key"}
    hosts = [h for h in node.pg_hosts if h not in WILDCARDS] or [(node.pg_connect or "127.0.0.1").rpartition(":")[0]]
    return {"member": node.name, "host": hosts[0], "port": node.pg_port,
            "source": "this node (the DCS names no leader)" if isinstance(dcs, dict) and dcs.get("keys_read")
            else "this node (the DCS could not be read)"}


def replication_login(node: NodeView, target: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Log in like pg_basebackup: replication=true as the replication user, then IDENTIFY_SYSTEM."""
    import psycopg
    user, password = credentials(node, "replication")
    out: dict[str, Any] = {**target, "user": user, "password_set": password is not None}
    t0 = time.monotonic()
    try:
        conn = psycopg.connect(conninfo(target["host"], target["port"], user, password, timeout,
                                        replication="true"), autocommit=True)
    except psycopg.Error as exc:
        out.update(ok=False, error=server_error(exc), ms=round((time.monotonic() - t0) * 1000, 1))
        return out
    try:
        res = conn.pgconn.exec_(b"IDENTIFY_SYSTEM")
        if res.ntuples == 1:
            vals = [res.get_value(0, i) for i in range(res.nfields)]
            out["identify_system"] = {"system_identifier": vals[0].decode() if vals[0] else None,
                                      "timeline": int(vals[1]) if vals[1] else None,
                                      "xlogpos": vals[2].decode() if vals[2] else None}
            out["ok"] = True
        else:
            msg = (res.error_message or b"").decode(errors="replace").strip()
            out.update(ok=False, error={"kind": "error", "message": msg, "server_message": msg.partition(":  ")[2] or msg})
            for kind, pat in (("no-replication-privilege", "replication role"), ("no-replication-privilege", "WAL sender")):
                if pat in msg:
                    out["error"]["kind"] = kind
    finally:
        conn.close()
    out["ms"] = round((time.monotonic() - t0) * 1000, 1)
    return out


def role_on_leader(node: NodeView, target: dict[str, Any], timeout: float, want_hba: bool) -> dict[str, Any]:
    """As the superuser on the leader: does the replication role exist, may it log in and replicate."""
    import psycopg
    su, su_password = credentials(node, "superuser")
    user, _ = credentials(node, "replication")
    conn, info = connect([("tcp", target["host"])], target["port"], su, su_password, timeout)
    if conn is None:
        return {"error": info.get("error"), "as": su}
    try:
        rows = query_rows(conn, "SELECT rolname, rolcanlogin, rolreplication, rolsuper, rolpassword IS NOT NULL AS has_password, "
                           "rolvaliduntil::text AS valid_until FROM pg_authid WHERE rolname = %s", (user,))
        out: dict[str, Any] = {"as": su, "user": user, "exists": bool(rows)}
        if rows:
            out.update({k: v for k, v in rows[0].items() if k != "rolname"})
        if want_hba:
            out["hba_rules"] = query_rows(conn, QUERIES["hba_rules"])
            out["hba_file"] = query_rows(conn, "SELECT setting FROM pg_settings WHERE name = 'hba_file'")[0]["setting"]
        return out
    except psycopg.Error as exc:
        return {"error": server_error(exc), "as": su}
    finally:
        conn.close()


def _local(node: NodeView, timeout: float) -> dict[str, Any]:
    import psycopg
    user, password = credentials(node, "superuser")
    conn, info = connect(local_targets(node), node.pg_port, user, password, timeout,
                         options=f"-c statement_timeout={int(timeout * 1000)}")
    out: dict[str, Any] = {"connection": info}
    if conn is None:
        out["running"] = False if (info.get("error") or {}).get("kind") in ("refused", "not-found") else None
        out["error"] = info.get("error")
        return out
    try:
        out["running"] = True
        out.update(_server_facts(conn))
    except psycopg.Error as exc:
        out["query_error"] = server_error(exc)
    finally:
        conn.close()
    return out


# libpq waits at least 2 s for a connection, whatever connect_timeout says.
LIBPQ_MIN_SECONDS = 2.0


def _login_steps(node: NodeView, target: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
    """The replication login, then (when it fails) the role as the leader's superuser sees it."""
    if deadline.remaining() < LIBPQ_MIN_SECONDS:
        return {**target, "ok": False, "error": deadline.timeout_error("the replication login")}
    login = replication_login(node, target, deadline.share("call"))
    want_hba = (login.get("error") or {}).get("kind") == "hba"
    if not login.get("ok"):
        login["role"] = (role_on_leader(node, target, deadline.share("call"), want_hba)
                         if deadline.remaining() >= LIBPQ_MIN_SECONDS
                         else {"error": deadline.timeout_error("reading the replication role")})
    return login


@collector("postgres", after=("dcs",), isolate=True)
def collect_postgres(ctx: CollectContext) -> dict[str, Any]:
    node = NodeView(ctx.config or {}, ctx.config_path)
    deadline = ctx.deadline
    call = deadline.share("call")
    got = parallel({"local": lambda: _local(node, call),
                    "controldata": lambda: controldata(node, deadline)}, call + GRACE,
                   lambda name: {"error": {"kind": "timeout", "message": f"no answer within {call:.0f}s"}})
    out: dict[str, Any] = {}
    for name in ("local", "controldata"):
        v = got[name]
        got[name] = v if isinstance(v, dict) else {"error": error_data(v)}
    out.update(got["local"])
    out["controldata"] = got["controldata"]
    dcs = ctx.upstream.result("dcs")  # read concurrently with the calls above; bounded by its own share
    out["replication_login"] = _login_steps(node, leader_target(node, dcs), deadline)
    return out
