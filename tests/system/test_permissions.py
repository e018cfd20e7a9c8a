"""Missing permissions: a config, a log, a bundle pgdoctor may not read, an output it may not write,
a data directory it may not look into. Each is a one-line refusal with exit 3 or a finding, never a
traceback.

The tests run as root; pgdoctor runs under ``setpriv`` without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH, so that root meets mode 000 the way another user would (dropping to another
uid would also cut it off from this interpreter, which may live under /root).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from cli_runner import Result, run_cli

REPO = Path(__file__).resolve().parents[2]
SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                                reason="needs root and setpriv (util-linux) to take away the read override")


def unprivileged(*args: str) -> Result:
    res = run_cli(*args, wrap=(SETPRIV, "--bounding-set", "-dac_override,-dac_read_search"), timeout=120)
    assert res.returncode in (0, 1, 2, 3), res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    return res


def one_line_exit_3(res: Result, *words: str) -> None:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 3 and len(lines) == 1, (res.returncode, res.stderr)
    assert all(w in lines[0] for w in words), lines[0]


def offline_config(data_dir: str = "/var/tmp/pgdoctor-example/data") -> str:
    """The example config on loopback addresses nothing listens on (127.0.9.71-73, not a lab's)."""
    text = (REPO / "examples" / "patroni.yml").read_text().replace("/var/tmp/pgdoctor-example/data", data_dir)
    return text.replace("127.0.0.1", "127.0.9.7")


@pytest.fixture
def closed(tmp_path: Path) -> Path:
    """A directory holding a config, a log and a facts.json, all mode 000; the directory itself 0500."""
    d = tmp_path / "closed"
    d.mkdir()
    (d / "patroni.yml").write_text(offline_config())
    (d / "postgresql.log").write_text("2026-11-26 06:40:01.100 UTC [1] FATAL:  the database system is starting up\n")
    shutil.copy(REPO / "tests" / "unit" / "fixtures" / "disk-full.json", d / "facts.json")
    for f in d.iterdir():
        f.chmod(0)
    d.chmod(0o500)
    yield d
    d.chmod(0o700)


def test_an_unreadable_config_is_refused_in_one_line(closed):
    for cmd in ("run", "replication", "preflight", "verify", "bundle"):
        one_line_exit_3(unprivileged(cmd, "-c", str(closed / "patroni.yml"), "--timeout", "1"), "not readable")


def test_an_unreadable_log_is_refused_in_one_line(closed):
    one_line_exit_3(unprivileged("logs", str(closed / "postgresql.log"), "--format", "json"), "not readable")


def test_an_unreadable_bundle_is_refused_in_one_line(closed):
    one_line_exit_3(unprivileged("analyze", str(closed / "facts.json"), "--format", "json"), "Permission denied")


def test_an_unwritable_output_is_refused_in_one_line(closed, tmp_path):
    cfg = tmp_path / "patroni.yml"
    cfg.write_text(offline_config())
    one_line_exit_3(unprivileged("bundle", "-c", str(cfg), "-o", str(closed / "b.tar.gz"), "--timeout", "1"),
                    "cannot write")
    one_line_exit_3(unprivileged("analyze", str(REPO / "tests" / "unit" / "fixtures" / "disk-full.json"),
                                 "--format", "json", "-o", str(closed / "r.json")), "cannot write")


def test_an_unreadable_data_dir_is_a_finding(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    data.chmod(0)
    cfg = tmp_path / "patroni.yml"
    cfg.write_text(offline_config(str(data)))
    try:
        res = unprivileged("run", "-c", str(cfg), "--no-logs", "--timeout", "1", "--format", "json")
    finally:
        data.chmod(0o700)
    report = json.loads(res.stdout)
    datadir = [f for f in report["findings"] if f["check"].startswith("datadir.")]
    assert datadir and not [f for f in report["findings"] if f["status"] == "error"], report["findings"]
    assert any(f["status"] in ("fail", "warn", "skip") and "permission" in (f["summary"] + " ".join(f["evidence"])).lower()
               for f in datadir), datadir
