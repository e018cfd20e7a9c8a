"""pgdoctor is read-only toward the cluster it examines: the proof on the real lab.

Every command that reads a live system runs against the healthy lab (``run``, ``replication``,
``verify``, ``monitor``, ``preflight``, ``logs``, ``bundle``, then ``analyze`` on that bundle), with
HOME and TMPDIR pointed at empty directories. Before and after, the test records:

* etcd: every key of the whole keyspace with its mod_revision (the v3 HTTP gateway's range);
* PostgreSQL: the leader's WAL between the two points, record by record (pg_walinspect), and
  ``pg_settings`` on every member;
* files: under every member's directory (patroni.yml, pgpass files, the data dir) the owner, mode
  and content of each file, and which files exist;
* Patroni: ``/cluster``, ``/config`` and each member's ``/patroni``.

Nothing may change, except what is declared here as not pgdoctor's doing:

* ``verify`` (and ``monitor --round-trip``) write their round-trip record by design: one logical
  message with the ``pgdoctor`` prefix and one xid-only commit each (doctor/collect/roundtrip.py).
  Patroni then republishes the moved WAL position (``/members/*``, ``/status``).
* PostgreSQL's own churn from being read: on-access pruning (Heap2 PRUNE), hint-bit full-page
  images (wal_log_hints is on in the lab), checkpoints and standby snapshots; WAL segments, server
  and Patroni logs, relation file contents (checkpoints), statistics and slot state files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import time
from pathlib import Path

import psycopg
import pytest
import requests
from cli_runner import run_cli

pytestmark = pytest.mark.lab

# --- what may change, and why --------------------------------------------------------------------

# Keys Patroni rewrites when the WAL position moves (every member's xlog_location, the leader's optime).
DCS_CHURN = ("/members/", "/status", "/optime/")
# WAL records PostgreSQL writes by itself while being read: (resource manager, record type).
WAL_CHURN = {("Heap2", "PRUNE"), ("XLOG", "FPI_FOR_HINT"), ("XLOG", "CHECKPOINT_ONLINE"),
             ("XLOG", "CHECKPOINT_SHUTDOWN"), ("Standby", "RUNNING_XACTS")}
# Directories of the data dir whose files PostgreSQL itself rewrites, creates and removes.
PG_CHURN_DIRS = {"pg_wal", "log", "pg_stat_tmp", "pg_stat", "pg_logical", "pg_replslot", "pg_xact",
                 "pg_subtrans", "pg_multixact", "pg_notify", "pg_snapshots", "pgsql_tmp"}
# Directories whose file names must stay the same (a new relation is a new file) while checkpoints
# rewrite the contents; the relcache init file comes and goes with invalidations.
PG_NAME_ONLY_DIRS = {"base", "global"}
PG_VOLATILE_NAMES = {"pg_internal.init"}
# Files of a member's directory that only grow by the programs' own logging.
NODE_LOGS = {"log", "patroni.stdout.log"}
# A member's volatile fields in the DCS and the REST API: positions and times.
VOLATILE_MEMBER_KEYS = {"xlog_location", "replay_lsn", "receive_lsn", "lag", "replay_lag", "receive_lag",
                        "lsn", "xlog", "optime", "replication", "server_version_timestamp", "dcs_last_seen",
                        "latest_end_lsn", "replication_state", "wal"}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def dcs_dump(lab) -> tuple[dict[str, tuple[int, str]], int]:
    """Every key in etcd (key ``\\0`` to range end ``\\0`` is the whole keyspace) with mod_revision and value."""
    node = lab.nodes[0]
    resp = requests.post(f"{node.etcd_client_url}/v3/kv/range", timeout=5,
                         json={"key": _b64(b"\0"), "range_end": _b64(b"\0")})
    resp.raise_for_status()
    body = resp.json()
    keys = {base64.b64decode(kv["key"]).decode(): (int(kv.get("mod_revision", 0)),
                                                   base64.b64decode(kv.get("value", "")).decode("utf-8", "replace"))
            for kv in body.get("kvs", [])}
    assert any(k.endswith("/leader") for k in keys), keys  # the dump saw the cluster, not an empty store
    return keys, int(body["header"]["revision"])


def _sql(node, query: str, params=None) -> list[tuple]:
    with psycopg.connect(node.dsn(), autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def settings(lab) -> dict[str, list[tuple]]:
    return {n.name: _sql(n, "SELECT name, setting, source, sourcefile, pending_restart FROM pg_settings ORDER BY name")
            for n in lab.nodes}


def flush_lsn(leader) -> str:
    return _sql(leader, "SELECT pg_current_wal_flush_lsn()::text")[0][0]


def wal_records(leader, start: str) -> list[tuple]:
    """The leader's WAL records from ``start`` to what is flushed now (the WAL writer ships within a second)."""
    deadline = time.monotonic() + 5
    while True:
        insert, flushed = _sql(leader, "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text")[0]
        if insert == flushed or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if flushed == start:
        return []
    return _sql(leader, "SELECT resource_manager, record_type, xid::text::bigint, description "
                        "FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn)", (start, flushed))


def _member_view(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in VOLATILE_MEMBER_KEYS}


def patroni_state(lab) -> dict:
    """/cluster and /config as any member serves them, and each member's /patroni (without positions and clocks)."""
    base = lab.nodes[0].rest_url
    cluster = requests.get(f"{base}/cluster", timeout=5).json()
    cluster["members"] = sorted((_member_view(m) for m in cluster["members"]), key=lambda m: m["name"])
    out = {"cluster": cluster, "config": requests.get(f"{base}/config", timeout=5).json()}
    for n in lab.nodes:
        me = requests.get(f"{n.rest_url}/patroni", timeout=5).json()
        out[n.name] = {k: me.get(k) for k in ("state", "role", "timeline", "postmaster_start_time", "pending_restart",
                                              "pause", "database_system_identifier", "patroni")}
    return out


def _in(rel: Path, names: set[str]) -> bool:
    return bool(set(rel.parts) & names)


def file_tree(lab) -> dict[str, tuple]:
    """Every file and directory under each member's directory: owner, group and mode; content hash
    where PostgreSQL and the logs do not churn; for base/ and global/ the names only."""
    tree: dict[str, tuple] = {}
    for node in lab.nodes:
        for root, dirs, files in os.walk(node.dir):
            for name in dirs + files:
                path = Path(root) / name
                rel = path.relative_to(node.dir)
                if rel.parts[0] in NODE_LOGS or name in PG_VOLATILE_NAMES:
                    continue
                in_data = rel.parts[0] == "data"
                if in_data and _in(rel, PG_CHURN_DIRS):
                    continue
                st = path.lstat()
                meta: tuple = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode))
                if stat.S_ISREG(st.st_mode) and not (in_data and _in(rel, PG_NAME_ONLY_DIRS)) \
                        and name != "postmaster.pid":  # its last line is the postmaster's status, rewritten by it
                    meta += (hashlib.sha256(path.read_bytes()).hexdigest(),)
                tree[f"{node.name}/{rel}"] = meta
    assert any(k.endswith("/patroni.yml") for k in tree) and any(k.endswith("/pg_hba.conf") for k in tree), tree
    return tree


def snapshot(lab) -> dict:
    keys, revision = dcs_dump(lab)
    return {"dcs": keys, "revision": revision, "settings": settings(lab), "patroni": patroni_state(lab),
            "files": file_tree(lab)}


def commands(lab, out: Path) -> list[list[str]]:
    """Every command that reads a live system, on the leader's config and on a replica's."""
    leader = lab.node(lab.leader())
    replica = next(n for n in lab.nodes if n.name != leader.name)
    lc, rc = str(leader.config), str(replica.config)
    bundle = str(out / "lab.tar.gz")
    return [
        ["run", "-c", lc, "--format", "json"],
        ["run", "-c", rc, "--format", "json", "--expect-members", "3"],
        ["replication", "-c", rc, "--format", "json"],
        ["verify", "-c", rc, "--format", "json"],
        ["monitor", "-c", lc, "--format", "prometheus"],
        ["monitor", "cluster_has_replica", "-c", rc],
        ["monitor", "pgdoctor", "-c", lc, "--round-trip"],
        ["preflight", "-c", rc, "--format", "json"],
        ["logs", "-c", lc, "--format", "json", str(leader.patroni_log), str(leader.postgres_log_dir / "postgresql.log")],
        ["bundle", "-c", rc, "-o", bundle],
        ["analyze", bundle, "--format", "json"],
    ]


def test_no_command_changes_the_cluster(healthy_lab, tmp_path):
    lab = healthy_lab
    leader = lab.node(lab.leader())
    _sql(leader, "CREATE EXTENSION IF NOT EXISTS pg_walinspect")  # the test's own reader, before the baseline
    home, tmp, out = tmp_path / "home", tmp_path / "tmp", tmp_path / "out"
    for d in (home, tmp, out):
        d.mkdir()
    time.sleep(1)  # let Patroni publish the extension's WAL position before the baseline
    before = snapshot(lab)
    start = flush_lsn(leader)

    round_trips = 0
    for argv in commands(lab, out):
        res = run_cli(*argv, env={"HOME": str(home), "TMPDIR": str(tmp)}, timeout=120)
        assert res.returncode in (0, 1, 2), (argv, res.returncode, res.stderr[-1500:])
        assert "Traceback" not in res.stderr, (argv, res.stderr)
        round_trips += argv[0] == "verify" or "--round-trip" in argv

    records = wal_records(leader, start)
    after = snapshot(lab)
    assert lab.leader() == leader.name

    # PostgreSQL: nothing but the declared round-trip records and PostgreSQL's own churn.
    messages = [r for r in records if (r[0], r[1]) == ("LogicalMessage", "MESSAGE")]
    assert len(messages) == round_trips and all('prefix "pgdoctor"' in r[3] for r in messages), messages
    commits = {r[2] for r in records if (r[0], r[1]) == ("Transaction", "COMMIT")}
    assert len(commits) == round_trips, records
    assert not [r for r in records if r[2] in commits and r[0] != "Transaction"], "a round-trip xid touched data"
    others = [r for r in records if r[0] not in ("LogicalMessage", "Transaction") and (r[0], r[1]) not in WAL_CHURN]
    assert not others, others
    assert after["settings"] == before["settings"]

    # etcd: the same keys; only Patroni's position keys rewritten.
    assert after["dcs"].keys() == before["dcs"].keys()
    changed = [k for k in before["dcs"] if before["dcs"][k] != after["dcs"][k]]
    assert all(any(c in k for c in DCS_CHURN) for k in changed), changed
    for k in changed:
        if "/members/" in k:
            assert _member_view(json.loads(after["dcs"][k][1])) == _member_view(json.loads(before["dcs"][k][1])), k

    # Patroni: same members, roles, states, timelines, config; nobody restarted.
    assert after["patroni"] == before["patroni"]

    # Files: owners, modes, contents and names as they were; nothing left in HOME or TMPDIR.
    gone = before["files"].keys() - after["files"].keys()
    new = after["files"].keys() - before["files"].keys()
    assert not gone and not new, (sorted(gone), sorted(new))
    assert {k: v for k, v in after["files"].items() if before["files"][k] != v} == {}
    assert not list(home.rglob("*")) and not list(tmp.rglob("*")), (list(home.rglob("*")), list(tmp.rglob("*")))
    assert [p.name for p in out.iterdir()] == ["lab.tar.gz"]
