"""Hostile surroundings: a hung etcd, a refused REST API. Each is a finding, never a hang or a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "examples" / "patroni.yml").read_text()


@pytest.fixture
def hung_etcd():
    """A TCP server on 127.0.9.5:2379 that accepts connections and never answers."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.9.5", 2379))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield "127.0.9.5:2379"
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()


def test_hung_etcd_is_a_timeout_finding_not_a_hang(hung_etcd, tmp_path):
    cfg = tmp_path / "patroni.yml"
    text = EXAMPLE.replace("127.0.0.11", "127.0.9.5")
    text = text.replace("    - 127.0.0.12:2379\n", "").replace("    - 127.0.0.13:2379\n", "")
    cfg.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # The outer timeout only guards the test run itself; pgdoctor is bounded by its own --timeout.
    out = subprocess.run([sys.executable, "-m", "doctor", "run", "-c", str(cfg), "--timeout", "1", "--format", "json",
                          "--no-logs"], capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" not in out.stderr
    report = json.loads(out.stdout)
    first = report["diagnoses"][0]
    assert first["id"] == "dcs-unreachable"
    assert "127.0.9.5:2379" in first["summary"] and "timeout" in first["summary"]
    # Patroni's REST API at the same address refuses: its own finding, after the DCS.
    ids = [d["id"] for d in report["diagnoses"]]
    assert "rest-api-unreachable" in ids and ids.index("rest-api-unreachable") > 0


def test_hung_etcd_keeps_every_collector_inside_the_deadline(hung_etcd, tmp_path):
    """The DCS read hangs; its dependants get its timeout record and the collection ends at 2 x timeout + 2 s."""
    import time

    from doctor.collect import CollectOptions
    from doctor.pipeline import collect

    cfg = tmp_path / "patroni.yml"
    text = EXAMPLE.replace("127.0.0.11", "127.0.9.5")
    cfg.write_text(text.replace("    - 127.0.0.12:2379\n", "").replace("    - 127.0.0.13:2379\n", ""))
    t0 = time.monotonic()
    facts, _ = collect(CollectOptions(config_path=str(cfg), timeout=1.0, read_logs=False), profile="replication")
    took = time.monotonic() - t0
    assert took < 2 * 1.0 + 2 + 1.0, took  # the budget, and a second for loading the config and the redaction
    assert facts.get("dcs.endpoints")[0]["error"]["kind"] == "timeout"
    # dependants waited for the DCS read, not past it: none of them is cut off by the run's deadline
    for domain in ("patroni_api", "postgres", "replication"):
        assert facts.get(f"{domain}.error.kind") != "timeout", (domain, facts.get(domain))
    assert facts.get("patroni_api.reachable") is False
    assert set(facts.get("timings")) >= {"dcs", "patroni_api", "postgres", "replication", "system"}


def test_refused_connections_are_findings_in_every_live_command(tmp_path):
    """Nothing listens at the config's addresses (etcd, REST API, PostgreSQL all refuse): each live
    command reports it as findings or one line, exit 0-3, never a traceback."""
    from cli_runner import run_cli

    cfg = tmp_path / "patroni.yml"
    cfg.write_text(EXAMPLE.replace("127.0.0.1", "127.0.9.6"))  # 127.0.9.61-63: no lab, nothing listening
    for argv in (["run", "--no-logs"], ["replication"], ["verify"], ["preflight"],
                 ["monitor", "cluster_has_leader"], ["bundle", "-o", str(tmp_path / "b.tar.gz")]):
        res = run_cli(*argv, "-c", str(cfg), "--timeout", "1",
                      *(["--format", "json"] if argv[0] in ("run", "replication", "verify", "preflight") else []),
                      timeout=120)
        assert res.returncode in (0, 1, 2, 3) and "Traceback" not in res.stderr, (argv, res.stderr)
        assert "internal error" not in res.stderr, (argv, res.stderr)
        if argv[0] in ("run", "replication", "verify", "preflight"):
            report = res.json
            assert res.returncode == 2, (argv, report["verdict"])
            assert "refused" in json.dumps(report).lower(), argv
        elif argv[0] == "monitor":
            # check_patroni's answer when the REST API cannot be asked: UNKNOWN, in one Nagios line
            assert res.returncode == 3 and res.stdout.count("\n") == 1 and "UNKNOWN" in res.stdout, res.stdout
            assert "refused" in res.stdout
        else:
            assert res.returncode in (0, 1, 2) and (tmp_path / "b.tar.gz").exists(), res.stderr
