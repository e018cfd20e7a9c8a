"""System checks against the real file system and real processes of this machine (fast, no cluster).

They run as root (as CI does): real directories with real owners and modes, a real
listener on a loopback port, a real stale postmaster.pid, a real full filesystem.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "examples" / "patroni.yml").read_text()

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown and mount")


def make_config(tmp_path: Path, data_dir: Path, addr: str = "127.0.9.1") -> Path:
    text = EXAMPLE.replace("/var/tmp/pgdoctor-example/data", str(data_dir)).replace("127.0.0.11", addr)
    cfg = tmp_path / "patroni.yml"
    cfg.write_text(text)
    return cfg


def run_json(cfg: Path, *extra: str) -> dict:
    out = run_cli("run", "-c", str(cfg), "--format", "json", "--no-logs", "--timeout", "2", *extra, timeout=120)
    assert "Traceback" not in out.stderr, out.stderr
    return out.json


def diag(report: dict, pid: str) -> dict:
    return next(d for d in report["diagnoses"] if d["id"] == pid)


def test_datadir_wrong_mode_and_owner_then_right(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    os.chown(data, 0, 0)
    report = run_json(make_config(tmp_path, data), "--only", "datadir-permissions")
    d = report["diagnoses"][0]
    assert d["id"] == "datadir-permissions"
    assert f"{data} is 0755 owned by root" in d["summary"]
    assert any(f"chmod 700 -- {data}" in block for block in d["fix"])
    pg = pwd.getpwnam("postgres")
    os.chown(data, pg.pw_uid, pg.pw_gid)
    os.chmod(data, 0o700)
    report = run_json(make_config(tmp_path, data), "--only", "datadir-permissions")
    assert report["diagnoses"] == [] and report["exit_code"] == 0


def test_stray_files_in_uninitialised_datadir(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "old-backup.tar").write_text("x")
    (data / "notes.txt").write_text("x")
    pg = pwd.getpwnam("postgres")
    os.chown(data, pg.pw_uid, pg.pw_gid)
    report = run_json(make_config(tmp_path, data), "--only", "datadir-not-empty")
    d = report["diagnoses"][0]
    assert d["id"] == "datadir-not-empty"
    assert "notes.txt" in d["summary"] and "old-backup.tar" in d["summary"]
    (data / "PG_VERSION").write_text("15\n")
    assert run_json(make_config(tmp_path, data), "--only", "datadir-not-empty")["diagnoses"] == []


def test_foreign_listener_on_the_rest_port_is_named(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "8008", "--bind", "127.0.9.2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.9.2", 8008), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        report = run_json(make_config(tmp_path, data, addr="127.0.9.2"), "--only", "port-in-use")
        d = report["diagnoses"][0]
        assert d["id"] == "port-in-use"
        assert "127.0.9.2:8008" in d["summary"]
        assert f"pid {proc.pid}" in d["summary"] and "http.server" in d["summary"]
        assert any(f"kill {proc.pid}" in block for block in d["fix"])
    finally:
        proc.terminate()
        proc.wait(10)
    report = run_json(make_config(tmp_path, data, addr="127.0.9.2"), "--only", "port-in-use")
    assert report["diagnoses"] == []


def test_a_patroni_listener_records_the_config_it_runs(tmp_path):
    """The listener table names a Patroni's config as the process table does: the port-in-use check knows its
    own node's Patroni by it even when the process table, read at another instant, no longer lists it."""
    from doctor.collect.system import listeners

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    cfg = make_config(tmp_path, data, addr="127.0.9.3")
    fake = tmp_path / "patroni"  # a program called patroni that holds the REST port, as a real one would
    fake.write_text("import http.server, sys\n"
                    "http.server.HTTPServer(('127.0.9.3', 8008), http.server.BaseHTTPRequestHandler).serve_forever()\n")
    proc = subprocess.Popen([sys.executable, str(fake), str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        held: list[dict] = []
        while time.time() < deadline and not held:
            held = [entry for entry in listeners() if (entry["address"], entry["port"]) == ("127.0.9.3", 8008)]
            time.sleep(0.1)
        assert held and held[0]["pid"] == proc.pid, held
        assert held[0]["config"] == os.path.realpath(cfg)
    finally:
        proc.terminate()
        proc.wait(10)


def test_stale_postmaster_pid(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "PG_VERSION").write_text("15\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    (data / "postmaster.pid").write_text(f"{dead.pid}\n{data}\n1700000000\n5432\n/var/run/postgresql\n127.0.9.1\n")
    report = run_json(make_config(tmp_path, data), "--only", "postmaster-pid-stale")
    d = report["diagnoses"][0]
    assert d["id"] == "postmaster-pid-stale" and d["status"] == "warn"
    assert f"pid {dead.pid}, which is not running" in d["summary"]
    # The pid reused by a process that is not PostgreSQL: startup would be refused.
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (data / "postmaster.pid").write_text(f"{sleeper.pid}\n{data}\n1700000000\n5432\n/var/run/postgresql\n127.0.9.1\n")
        d = run_json(make_config(tmp_path, data), "--only", "postmaster-pid-stale")["diagnoses"][0]
        assert d["status"] == "fail" and "'sleep'" in d["summary"]
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_full_filesystem(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with open(data / "filler", "wb") as fh, contextlib.suppress(OSError):
            fh.write(b"\0" * (16 * 1024 * 1024))
        report = run_json(make_config(tmp_path, data), "--only", "disk-full")
        d = report["diagnoses"][0]
        assert d["id"] == "disk-full" and d["status"] == "fail"
        assert str(data) in d["summary"]
    finally:
        subprocess.run(["umount", str(data)], check=False)
