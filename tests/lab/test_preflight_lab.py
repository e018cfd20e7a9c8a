"""`pgdoctor preflight` on this machine, against the real lab.

A prepared node — a fresh config pointing at the lab's etcd, an empty 0700 data dir owned by
postgres, free addresses, nothing running for it — passes. Then each item is broken for real
(PostgreSQL started outside Patroni, data dir 0755, stray files, etcd stopped, a peer's port
closed, a local port taken, an unreadable config) and preflight must name the item and its fix.
Finally, preflight on a live lab member must not fail on that member's own ports.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doctor.lab import cluster, procs

pytestmark = pytest.mark.lab

CLI = [sys.executable, "-c", "from doctor.cli import main; main()"]


def preflight(config: Path, *args: str, fmt: str = "json") -> tuple[int, dict | str]:
    cp = subprocess.run([*CLI, "preflight", "-c", str(config), "--timeout", "2", "--format", fmt, *args],
                        capture_output=True, text=True, timeout=120, cwd=str(Path(__file__).parents[2]))
    assert "Traceback" not in cp.stderr, cp.stderr
    assert cp.returncode in (0, 1, 2), (cp.returncode, cp.stderr)
    return cp.returncode, (json.loads(cp.stdout) if fmt == "json" else cp.stdout)


def items(doc: dict, check: str) -> list[dict]:
    return [i for i in doc["preflight"]["items"] if i["check"] == check]


def failing(doc: dict) -> list[tuple[str, str]]:
    return [(i["check"], i["summary"]) for i in doc["preflight"]["items"] if i["status"] in ("fail", "error")]


class Prepared:
    """A node that has never run: its own loopback address, config and empty data dir."""

    def __init__(self, lab, scope: str):
        lay = lab.layout
        last = lay.addrs[0].rsplit(".", 1)
        self.address = f"{last[0]}.{int(last[1]) + 10}"
        self.base = Path(f"{lay.base_dir}-preflight")
        self.dir = self.base / "node4"
        self.config = self.dir / "patroni.yml"
        self.data_dir = self.dir / "data"
        self.etcd_hosts = lay.etcd_hosts[:2]  # the third etcd member is found through the member list
        self.lab = lab
        self.scope = scope
        self.pids: list[tuple[int, str]] = []

    def create(self) -> Prepared:
        shutil.rmtree(self.base, ignore_errors=True)
        self.dir.mkdir(parents=True)
        os.chmod(self.base, 0o755)
        os.chmod(self.dir, 0o755)
        pw = pwd.getpwnam("postgres")
        self.data_dir.mkdir(mode=0o700)
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.data_dir, 0o700)
        hosts = "\n".join(f"    - {h}" for h in self.etcd_hosts)
        self.config.write_text(f"""\
scope: {self.scope}
namespace: /service
name: node4
restapi:
  listen: {self.address}:8008
  connect_address: {self.address}:8008
etcd3:
  hosts:
{hosts}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
postgresql:
  listen: {self.address}:5432
  connect_address: {self.address}:5432
  data_dir: {self.data_dir}
  bin_dir: {self.lab.layout.bins.pg_bin}
  authentication:
    superuser:
      username: postgres
      password: preflight-super-5e1
    replication:
      username: replicator
      password: preflight-repl-8c0
""")
        os.chown(self.config, pw.pw_uid, pw.pw_gid)
        os.chmod(self.config, 0o600)
        for port in (5432, 8008):
            assert procs.port_free(self.address, port), f"{self.address}:{port} is taken; pick other lab addresses"
        return self

    def spawn(self, argv: list[str], match: str, as_postgres: bool = False) -> int:
        pid = procs.spawn(argv, self.base / f"{match}.log", None, as_postgres=as_postgres, cwd=self.base)
        self.pids.append((pid, match))
        return pid

    def cleanup(self) -> None:
        for pid, match in self.pids:
            procs.stop_pid(pid, match, grace=10)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def new_cluster_node(healthy_lab):
    """A prepared node of a cluster not yet bootstrapped (scope unknown to the DCS)."""
    node = Prepared(healthy_lab, scope="preflight-new").create()
    yield node
    node.cleanup()


@pytest.fixture
def joining_node(healthy_lab):
    """A prepared node joining the lab's running cluster (scope postgres is initialised)."""
    node = Prepared(healthy_lab, scope=healthy_lab.layout.scope).create()
    yield node
    node.cleanup()


def test_prepared_node_passes(new_cluster_node):
    lay = new_cluster_node.lab.layout
    rc, doc = preflight(new_cluster_node.config, "--peer", lay.addrs[1], "--peer", lay.addrs[2])
    assert failing(doc) == [], failing(doc)
    assert rc in (0, 1) and doc["exit_code"] == rc
    assert {i["status"] for i in items(doc, "datadir.permissions")} == {"ok"}
    assert {i["status"] for i in items(doc, "datadir.empty")} == {"ok"}
    assert "may bootstrap" in items(doc, "preflight.datadir-plan")[0]["summary"]
    assert {i["status"] for i in items(doc, "dcs.reachable")} == {"ok"}
    ports = items(doc, "ports.in-use")
    assert any(f"{new_cluster_node.address}:5432: free" in i["summary"] for i in ports)
    assert any(f"{new_cluster_node.address}:8008: free" in i["summary"] for i in ports)
    peers = {i["subject"]: i for i in items(doc, "preflight.peers")}
    for addr in lay.addrs:  # two from --peer, the third from the etcd member list
        assert peers[addr]["status"] == "ok" and "2379 connected" in peers[addr]["summary"], peers
    third = items(doc, "preflight.etcd-cluster")
    assert any(lay.nodes[2].etcd_client_url in i["summary"] and i["status"] == "ok" for i in third), third
    assert items(doc, "preflight.pg-binaries")[0]["status"] == "ok"
    assert doc["preflight"]["live_node"] is None


def test_done_checklist_text(new_cluster_node):
    rc, out = preflight(new_cluster_node.config, "--peer", "127.0.0.2", "--peer", "127.0.0.3", fmt="text")
    for needle in ("pgdoctor preflight — node node4, cluster preflight-new", "[preflight] Peers given: 127.0.0.2, 127.0.0.3",
                   "\netcd\n", "\nPostgreSQL\n", "\nPatroni\n", "\nData dir\n", "\nPeers\n", "✓ peer 127.0.0.2: 5432 refused",
                   f"Verdict: {'ok' if rc == 0 else 'warn'}"):
        assert needle in out, (needle, out)
    assert "✗" not in out


def test_postgres_started_outside_patroni(new_cluster_node):
    n = new_cluster_node
    other = n.base / "other-pg"
    other.mkdir()
    run_dir = n.base / "run"
    run_dir.mkdir()
    pw = pwd.getpwnam("postgres")
    for d in (other, run_dir):
        os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(other, 0o700)
    pg_bin = n.lab.layout.bins.pg_bin
    procs.run([f"{pg_bin}/initdb", "-D", str(other), "-A", "trust", "-U", "postgres"], as_postgres=True, timeout=120)
    pid = n.spawn([f"{pg_bin}/postgres", "-D", str(other), "-c", f"listen_addresses={n.address}", "-p", "5432",
                   "-c", f"unix_socket_directories={run_dir}"], str(other), as_postgres=True)
    deadline = time.monotonic() + 20
    while not procs.port_accepts(n.address, 5432) and time.monotonic() < deadline:
        time.sleep(0.2)
    rc, doc = preflight(n.config)
    assert rc == 2
    bad = [i for i in items(doc, "ports.postgres-outside-patroni") if i["status"] == "fail"]
    assert bad and f"PostgreSQL pid {pid}" in bad[0]["summary"] and "not started by Patroni" in bad[0]["summary"]
    assert any(f"pg_ctl -D {other} stop -m fast" in block for block in bad[0]["fix"]), bad[0]["fix"]
    assert "postgres-outside-patroni" in [d["id"] for d in doc["diagnoses"]]


def test_datadir_0755(new_cluster_node):
    os.chmod(new_cluster_node.data_dir, 0o755)
    rc, doc = preflight(new_cluster_node.config)
    assert rc == 2
    item = items(doc, "datadir.permissions")[0]
    assert item["status"] == "fail" and "0755" in item["summary"] and str(new_cluster_node.data_dir) in item["summary"]
    assert f"sudo chmod 700 -- {new_cluster_node.data_dir}" in item["fix"][0]


def test_datadir_not_empty_when_joining(joining_node):
    stray = joining_node.data_dir / "restore-notes.txt"
    stray.write_text("copied by hand\n")
    rc, doc = preflight(joining_node.config)
    assert rc == 2
    plan = items(doc, "preflight.datadir-plan")[0]
    assert "already initialised" in plan["summary"] and "will clone" in plan["summary"]
    item = items(doc, "datadir.empty")[0]
    assert item["status"] == "fail" and "restore-notes.txt" in item["summary"]
    assert f"sudo mv -- {joining_node.data_dir} {joining_node.data_dir}.stray" in item["fix"][0]


def test_local_port_taken(new_cluster_node):
    n = new_cluster_node
    pid = n.spawn(["/usr/bin/python3", "-m", "http.server", "--bind", n.address, "8008", "--directory", str(n.base)],
                  "http.server")
    deadline = time.monotonic() + 10
    while not procs.port_accepts(n.address, 8008) and time.monotonic() < deadline:
        time.sleep(0.1)
    rc, doc = preflight(n.config)
    assert rc == 2
    bad = [i for i in items(doc, "ports.in-use") if i["status"] == "fail"]
    assert bad and f"{n.address}:8008" in bad[0]["summary"] and f"pid {pid}" in bad[0]["summary"]
    assert any(f"sudo kill {pid}" in block for block in bad[0]["fix"])


def test_config_unreadable_by_postgres(new_cluster_node):
    os.chmod(new_cluster_node.dir, 0o700)
    rc, doc = preflight(new_cluster_node.config)
    assert rc == 2
    item = items(doc, "preflight.config-readable")[0]
    assert item["status"] == "fail" and str(new_cluster_node.dir) in item["summary"]
    assert f"sudo chmod o+x -- {new_cluster_node.dir}" in item["fix"][0]
    rc, doc = preflight(new_cluster_node.config, "--ignore", "preflight-config-unreadable")
    item = items(doc, "preflight.config-readable")[0]
    assert item["status"] == "warn" and item["ignored"], item
    assert failing(doc) == [] and rc == 1
    assert doc["preflight"]["ignored"] == ["preflight-config-unreadable"]


def test_peer_etcd_port_closed(new_cluster_node):
    lay = new_cluster_node.lab.layout
    third = lay.nodes[2]
    assert cluster.stop_etcd(third)
    try:
        rc, doc = preflight(new_cluster_node.config, "--peer", third.address)
        assert rc == 2
        peer = next(i for i in items(doc, "preflight.peers") if i["subject"] == third.address)
        assert peer["status"] == "fail" and "2379 (etcd) refused" in peer["summary"]
        assert any(f"nc -vz -w 2 {third.address} 2379" in block for block in peer["fix"])
        member = [i for i in items(doc, "preflight.etcd-cluster") if third.etcd_client_url in i["summary"]]
        assert member and member[0]["status"] == "warn"
        assert {i["status"] for i in items(doc, "dcs.reachable")} == {"ok"}  # the config's two endpoints keep quorum
    finally:
        cluster.start_etcd(lay, third)
        cluster.wait_etcd(lay)


def test_etcd_stopped(new_cluster_node):
    lay = new_cluster_node.lab.layout
    for n in lay.nodes:
        cluster.stop_etcd(n)
    try:
        rc, doc = preflight(new_cluster_node.config)
        assert rc == 2
        reach = items(doc, "dcs.reachable")[0]
        assert reach["status"] == "fail" and lay.nodes[0].etcd_client_url in reach["summary"]
        assert reach["fix"], "the dcs-unreachable fix must be rendered"
        assert items(doc, "preflight.datadir-plan")[0]["status"] == "skip"
    finally:
        for n in lay.nodes:
            cluster.start_etcd(lay, n)
        cluster.wait_etcd(lay)
        cluster.wait_healthy(lay)


def test_live_node_does_not_fail_on_its_own_ports(healthy_lab):
    node1 = healthy_lab.layout.nodes[0]
    rc, doc = preflight(node1.config)
    live = doc["preflight"]["live_node"]
    assert live and live["patroni_pids"] == [cluster.patroni_pid(node1)]
    for check in ("ports.in-use", "ports.postgres-outside-patroni", "datadir.empty", "preflight.datadir-plan"):
        assert {i["status"] for i in items(doc, check)} == {"ok"}, items(doc, check)
    own = [i["summary"] for i in items(doc, "ports.in-use")]
    assert any(f"{node1.address}:8008: served by this node's own process" in s for s in own), own
    assert failing(doc) == [], failing(doc)
