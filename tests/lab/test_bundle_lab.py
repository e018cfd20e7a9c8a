"""Bundle and analyze on the real lab: the support round trip.

Break the lab for real (pg_hba without a replication line while a replica re-clones),
plant canary secrets in the DCS (a password-looking key in the dynamic config, via
patronictl) and in a real Patroni log, run `pgdoctor run` live, build a bundle, stop the
lab, and analyze the bundle with nothing running: same diagnosis ids, zero canaries in
any byte of the bundle or of the reports. Prints the bundle's size and the time it took.
"""

from __future__ import annotations

import json
import re
import tarfile
import time
from pathlib import Path

import pytest
from cli_runner import Result, run_cli

from doctor.lab import faults
from doctor.lab.layout import REPLICATION_PASSWORD, SUPERUSER_PASSWORD

REPO = Path(__file__).resolve().parents[2]
DCS_CANARY = "CANARY-dcs-4e1f9a"
LOG_CANARY = "CANARY-log-b7c2d0"
CANARY_KEY = "pgdoctor_canary_password"

pytestmark = pytest.mark.lab


def cli(*args: str) -> Result:
    return run_cli(*args, timeout=300)


def _no_canary(blob: bytes, where: str) -> None:
    for secret in (DCS_CANARY, LOG_CANARY, SUPERUSER_PASSWORD, REPLICATION_PASSWORD):
        assert secret.encode() not in blob, f"{secret} leaked into {where}"


def test_bundle_then_analyze_offline_gives_the_live_diagnosis(healthy_lab, tmp_path):
    lab = healthy_lab
    faults.patronictl(lab.layout, "edit-config", "--force", "-s", f"{CANARY_KEY}={DCS_CANARY}")
    try:
        info = lab.break_fault("pg-hba-replication-missing")
        node = lab.node(info["details"]["recloning"])
        with open(node.patroni_log, "a") as fh:  # a real log, as a careless debug line would leave it
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S") + ",000 DEBUG: primary_conninfo host=127.0.0.1 "
                     f"user=replicator password={LOG_CANARY} sslmode=prefer\n")
        config = str(node.config)

        live = cli("run", "-c", config, "--format", "json")
        assert live.returncode == 2, live.stderr
        live_ids = [d["id"] for d in json.loads(live.stdout)["diagnoses"]]
        assert "pg-hba-replication-missing" in live_ids
        _no_canary(live.stdout.encode(), "run --format json")

        bundle = tmp_path / "lab.tar.gz"
        t0 = time.monotonic()
        made = cli("bundle", "-c", config, "-o", str(bundle))
        took = time.monotonic() - t0
        assert made.returncode == 0, made.stderr
        print(f"\nlab bundle: {bundle.stat().st_size} bytes ({bundle.stat().st_size / 1024:.1f} KiB) "
              f"in {took:.2f}s wall (including interpreter start)")
    finally:
        lab.down()  # analyze must not need anything running

    try:
        members = {}
        with tarfile.open(bundle, "r:gz") as tar:
            for m in tar:
                members[m.name.split("/", 1)[1]] = tar.extractfile(m).read()
        for name, blob in members.items():
            _no_canary(blob, name)
        facts = json.loads(members["facts.json"])
        # the canaries really were collected, as tokens
        assert str(facts["dcs"]["config"][CANARY_KEY]).startswith("[REDACTED:")
        log_name = next(n for n in members if n.startswith("logs/") and n.endswith(f"{node.name}/log/patroni.log"))
        assert b"password=[REDACTED:password:" in members[log_name]
        manifest = json.loads(members["manifest.json"])
        # Patroni's own pgpass (owned by postgres, 0600) ships, every password field a token
        pgpass_files = [n for n in members if n.startswith("config/pgpass/")]
        assert pgpass_files, manifest["not_collected"]
        for name in pgpass_files:
            entries = [ln for ln in members[name].decode().splitlines() if ln.strip() and not ln.startswith("#")]
            assert entries and all(re.fullmatch(r"(?:[^:]*:){4}\[REDACTED:password:[0-9a-f]+\]", ln) for ln in entries), \
                entries
        assert manifest["diagnoses"] == live_ids or set(manifest["diagnoses"]) >= {"pg-hba-replication-missing"}

        offline = cli("analyze", str(bundle), "--format", "json")
        assert offline.returncode == 2, offline.stderr
        offline_ids = [d["id"] for d in json.loads(offline.stdout)["diagnoses"]]
        assert offline_ids == live_ids
        html = tmp_path / "offline.html"
        assert cli("analyze", str(bundle), "--format", "html", "-o", str(html)).returncode == 2
        page = html.read_bytes()
        _no_canary(page, "analyze --format html")
        assert b'data-diagnosis="pg-hba-replication-missing"' in page
    finally:
        lab.heal()  # starts what was stopped and undoes the fault; the session's lab is shared
        faults.patronictl(lab.layout, "edit-config", "--force", "-s", f"{CANARY_KEY}=null")


def test_wrong_replication_password_bundle_keeps_every_word_and_key(healthy_lab, tmp_path):
    """The replication-auth-failed fault writes the wrong password "not-the-password" into a member's config:
    its bundle must redact it without cutting "the" out of "authentication", "another" or the config's keys."""
    import re

    import yaml

    info = healthy_lab.break_fault("replication-auth-failed")
    config = info["config"]
    proc = cli("bundle", "-c", config, "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    name = yaml.safe_load(Path(config).read_text())["name"]
    assert re.fullmatch(rf"pgdoctor-bundle-[\w.-]+-{name}-\d{{8}}T\d{{6}}Z\.tar\.gz", path.name), path.name
    glued = re.compile(rb"[A-Za-z0-9_]\[REDACTED:|\[REDACTED:[\w-]+:[0-9a-f]+\][A-Za-z0-9_]")
    members: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as tar:
        for m in tar:
            members[m.name.split("/", 1)[1]] = tar.extractfile(m).read()
    for file, blob in members.items():
        assert b"not-the-password" not in blob, f"the wrong password leaked into {file}"
        hit = glued.search(blob)
        assert hit is None, f"{file}: a token cut into a word: {hit.group(0)!r}"
    report = json.loads(members["report.json"])
    assert "replication-auth-failed" in [d["id"] for d in report["diagnoses"]]
    assert "password authentication failed" in json.dumps(report)
    original = yaml.safe_load(Path(config).read_text())
    redacted = yaml.safe_load(members["config/patroni.yml"])

    def keys(v, t=""):
        return set().union(*[{f"{t}.{k}"} | keys(x, f"{t}.{k}") for k, x in v.items()]) if isinstance(v, dict) else set()
    assert keys(original) == keys(redacted)
    print(f"bundle {path.name}: {path.stat().st_size} bytes, {len(members)} files")
