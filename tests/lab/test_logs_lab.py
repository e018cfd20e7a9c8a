"""`pgdoctor run` on a broken lab node finds and reads that node's logs by itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def pgdoctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_run_uses_the_nodes_own_logs(healthy_lab):
    res = healthy_lab.break_fault("port-in-use.pg")
    try:
        node = healthy_lab.node(res["node"])
        proc = pgdoctor("run", "-c", str(node.config), "--format", "json", "--since", "10m")
        assert proc.returncode in (1, 2), proc.stderr
        doc = json.loads(proc.stdout)
        labels = [s["label"] for s in doc["logs"]["sources"] if s["read"]]
        assert str(node.patroni_log) in labels, labels
        assert any(label.startswith(str(node.postgres_log_dir) + "/") for label in labels), labels
        assert doc["logs"]["found"]["postgres_log_dir"] == str(node.postgres_log_dir)
        with_logs = [d for d in doc["diagnoses"] if d["log_matches"]]
        assert with_logs, doc["diagnoses"]
        port = [d for d in doc["diagnoses"] if d["id"] == "port-in-use"]
        assert port and any("Address already in use" in e for e in port[0]["evidence"]), doc["diagnoses"]
        assert any(m["source"].startswith(str(node.postgres_log_dir)) for m in port[0]["log_matches"])
        assert isinstance(doc.get("events"), list)
    finally:
        healthy_lab.heal()
