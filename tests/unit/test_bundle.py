"""Bundles on a temporary node whose services are all dead: every file is written, every
canary secret is gone, `analyze` gives the run's diagnoses, and bad bundles fail in one line.

No cluster is needed: the collectors record refused connections as data, which is exactly
the "keeps going past a dead service" case.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pwd
import re
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli

from doctor.bundle import logs as bundle_logs
from doctor.collect.deadline import Deadline
from doctor.facts import Facts
from doctor.redact import Redactor

REPO = Path(__file__).resolve().parents[2]
ADDR = "127.0.5.231"  # loopback, nothing listens here

CANARIES = {
    "superuser": "CANARY-su-5f1e",
    "replication": "CANARY-repl-77ab",
    "rewind": "CANARY-rewind-0c3d",
    "restapi": "CANARY-restapi-91aa",
    "ctl": "CANARY-ctl-4b2f",
    "etcd3": "CANARY-etcd3-e8d0",
    "keyfile_password": "CANARY-kfpw-2d9c",
    "env_pgpassword": "CANARY-envpg-6a11",
    "env_superuser": "CANARY-envsu-3c70",
    "proc_env": "CANARY-procenv-81f3",
    "proc_argv": "CANARY-procargv-a2e4",
    "log_conninfo": "CANARY-logconn-5d5d",
    "log_url": "CANARY-logurl-1b7e",
    "pgpass": "CANARY-pgpass-9e03",
    "private_key": "CANARYPRIVKEYBODY0a7c",
    "combined_key": "CANARYCOMBINEDKEY55e1",
}


cli = run_cli


def _pem(kind: str, body: str) -> str:
    return f"-----BEGIN {kind}-----\nMIIBVQIBADANBgkqhkiG9w0B{body}AQEFAASCAT8wggE7AgEAAkEA\n-----END {kind}-----\n"


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> dict:
    """A node directory with canaries planted in its config, .pgpass, keys, logs and a fake Patroni process."""
    base = tmp_path_factory.mktemp("node")
    logdir = base / "log"
    logdir.mkdir()
    data = base / "data"
    key = base / "rest.key"
    key.write_text(_pem("PRIVATE KEY", CANARIES["private_key"]))
    combined = base / "rest.pem"
    combined.write_text("-----BEGIN CERTIFICATE-----\nMIIBszCCAV2gAwIBAgIUfakecert\n-----END CERTIFICATE-----\n"
                        + _pem("RSA PRIVATE KEY", CANARIES["combined_key"]))
    pgpass = base / "pgpass"
    pgpass.write_text(f"# host:port:db:user:password\n{ADDR}:5432:*:replicator:{CANARIES['pgpass']}\n")
    pgpass.chmod(0o600)
    config = f"""scope: canary
name: cnode1
log:
  dir: {logdir}
restapi:
  listen: {ADDR}:8008
  connect_address: {ADDR}:8008
  certfile: {combined}
  keyfile: {key}
  keyfile_password: {CANARIES['keyfile_password']}
  authentication:
    username: admin
    password: {CANARIES['restapi']}
ctl:
  authentication:
    username: ctl
    password: "{CANARIES['ctl']}"
etcd3:
  hosts: {ADDR}:2379
  username: root
  password: '{CANARIES['etcd3']}'
postgresql:
  listen: {ADDR}:5432
  connect_address: {ADDR}:5432
  data_dir: {data}
  pgpass: {pgpass}
  authentication:
    superuser: {{username: postgres, password: {CANARIES['superuser']}}}
    replication:
      username: replicator
      password: {CANARIES['replication']}
    rewind:
      username: rewinder
      password: {CANARIES['rewind']}
"""
    cfg = base / "patroni.yml"
    cfg.write_text(config)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    old = "2001-01-01 00:00:00"
    (logdir / "patroni.log").write_text(
        f"{old},000 INFO: an old line before --since\n"
        f"{now},001 INFO: Lock owner: None; I am cnode1\n"
        f"{now},002 ERROR: primary_conninfo 'host={ADDR} user=replicator password={CANARIES['log_conninfo']}'\n"
        f"{now},003 ERROR: connecting to postgresql://replicator:{CANARIES['log_url']}@{ADDR}:5432/postgres\n"
        f"{now},004 DEBUG: superuser password echoed {CANARIES['superuser']} and env {CANARIES['env_pgpassword']}\n"
        f"{now},005 DEBUG: key dump " + _pem("EC PRIVATE KEY", CANARIES["private_key"]).replace("\n", " ") + "\n"
        f"{now},006 INFO: <script>window.__pwned=1</script> <img src=x onerror=alert(1)>\n")
    stale = logdir / "patroni.log.1"
    stale.write_text(f"{old},000 INFO: rotated long ago\n")
    os.utime(stale, (time.time() - 10 * 86400, time.time() - 10 * 86400))
    # A process that looks like Patroni, with a secret on its command line and in its environment.
    fake = base / "bin" / "patroni"
    fake.parent.mkdir()
    fake.write_text("import time\ntime.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, str(fake), "--password", CANARIES["proc_argv"], str(cfg)],
                            env={"PATH": "/usr/bin:/bin", "PATRONI_REPLICATION_PASSWORD": CANARIES["proc_env"]},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"PGPASSWORD": CANARIES["env_pgpassword"], "PATRONI_SUPERUSER_PASSWORD": CANARIES["env_superuser"]}
    try:
        yield {"base": base, "config": cfg, "env": env, "logdir": logdir}
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def built(node, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("out")
    bundle = out / "b.tar.gz"
    t0 = time.monotonic()
    # The planted .pgpass is owned by whoever runs the tests: that is the PostgreSQL OS user here.
    proc = cli("bundle", "-c", str(node["config"]), "-o", str(bundle), "--timeout", "1",
               "--pg-user", pwd.getpwuid(os.getuid()).pw_name, env=node["env"])
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    print(f"bundle: {bundle.stat().st_size} bytes in {took:.1f}s")
    members: dict[str, bytes] = {}
    with tarfile.open(bundle, "r:gz") as tar:
        for m in tar:
            assert m.isfile() and not m.name.startswith("/") and ".." not in m.name.split("/")
            members[m.name.split("/", 1)[1]] = tar.extractfile(m).read()
    return {"path": bundle, "members": members, "stdout": proc.stdout, "stderr": proc.stderr}


def _assert_no_canary(blob: bytes, where: str) -> None:
    for name, secret in CANARIES.items():
        assert secret.encode() not in blob, f"{name} canary leaked into {where}"


def test_bundle_has_every_part_and_mode_0600(built):
    assert stat.S_IMODE(built["path"].stat().st_mode) == 0o600
    names = set(built["members"])
    for required in ("manifest.json", "facts.json", "report.html", "report.json", "config/patroni.yml",
                     "system/host.json", "system/mounts.json", "system/environment.json", "system/processes.json",
                     "system/listeners.json"):
        assert required in names, required
    assert any(n.startswith("dcs/") for n in names)
    assert any(n.startswith("patroni_api/") for n in names)
    assert any(n.startswith("postgres/") for n in names)
    assert any(n.startswith("config/pgpass/") for n in names)
    assert any(n.startswith("logs/") and n.endswith("patroni.log") for n in names)
    # the fake Patroni was seen: its command line and environment are in the bundle, redacted
    env = json.loads(built["members"]["system/environment.json"])
    fake = [p for p in env["processes"] if "PATRONI_REPLICATION_PASSWORD" in p.get("environment", {})]
    assert fake and fake[0]["environment"]["PATRONI_REPLICATION_PASSWORD"].startswith("[REDACTED:")
    assert b"--password" in built["members"]["system/processes.json"]
    assert built["path"].stat().st_size < 50 * 1024 * 1024


def test_zero_canaries_in_every_byte(built):
    for name, blob in built["members"].items():
        _assert_no_canary(blob, name)
        _assert_no_canary(name.encode(), f"member name {name}")
    _assert_no_canary((built["stdout"] + built["stderr"]).encode(), "bundle command output")


def test_redaction_left_tokens_where_the_secrets_were(built):
    yml = built["members"]["config/patroni.yml"].decode()
    assert yml.count("[REDACTED:") >= 7
    import yaml
    parsed = yaml.safe_load(yml)  # still YAML after redaction
    assert parsed["postgresql"]["authentication"]["superuser"]["password"].startswith("[REDACTED:")
    log = next(v for k, v in built["members"].items() if k.endswith("/patroni.log")).decode()
    assert "Lock owner: None; I am cnode1" in log  # the log is there, only secrets are gone
    assert "[REDACTED:password:" in log and "[REDACTED:private-key:" in log
    # the same secret gives the same token across files
    facts = json.loads(built["members"]["facts.json"])
    rep_token = facts["config"]["data"]["postgresql"]["authentication"]["replication"]["password"]
    assert rep_token in yml
    pgpass = next(v for k, v in built["members"].items() if k.startswith("config/pgpass/")).decode()
    assert "replicator:[REDACTED:" in pgpass


def test_manifest_lists_files_redactions_and_failures(built):
    m = json.loads(built["members"]["manifest.json"])
    assert m["format"] == "pgdoctor-bundle" and m["facts_version"] >= 1 and m["host"]
    assert "bundle" in m["command_line"] and m["created_at"]
    listed = {f["name"]: f for f in m["files"]}
    for name, blob in built["members"].items():
        if name == "manifest.json":
            continue
        assert listed[name]["size"] == len(blob)
        assert listed[name]["sha256"] == hashlib.sha256(blob).hexdigest()
    kinds = {r["kind"] for r in m["redactions"]}
    assert {"password", "private-key", "pgpass"} <= kinds, kinds
    assert all(set(r) == {"kind", "file", "count"} and r["count"] > 0 for r in m["redactions"])
    # dead etcd, REST API and PostgreSQL are recorded with their reason
    what = " ".join(f"{x['what']}:{x['kind']}" for x in m["not_collected"])
    assert "dcs" in what and "patroni_api" in what and "postgres" in what and "refused" in what
    # the rotated log untouched for 10 days is left out by --since, with the reason
    assert any(x["file"].endswith("patroni.log.1") and "since" in x["reason"] for x in m["logs_left_out"])
    entry = next(x for x in m["logs"] if x["file"].endswith("patroni.log"))
    assert entry["dropped_lines_before_since"] == 1


def test_run_json_and_html_have_no_canaries(node, tmp_path):
    for fmt in ("json", "html", "text"):
        out = tmp_path / f"report.{fmt}"
        proc = cli("run", "-c", str(node["config"]), "--timeout", "1", "--format", fmt, "-o", str(out), env=node["env"])
        assert proc.returncode in (1, 2), proc.stderr
        body = out.read_text()
        # a real report, not an empty one that would trivially hold no canary
        assert "dcs-unreachable" in body and ("datadir" in body or "config" in body), body[:500]
        _assert_no_canary(out.read_bytes(), f"run --format {fmt}")
        _assert_no_canary((proc.stdout + proc.stderr).encode(), f"run --format {fmt} output")


def test_analyze_gives_the_bundles_diagnoses_in_every_format(built, tmp_path):
    m = json.loads(built["members"]["manifest.json"])
    proc = cli("analyze", str(built["path"]), "--format", "json")
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    assert report["command"] == "analyze"
    assert [d["id"] for d in report["diagnoses"]] == m["diagnoses"]
    assert "dcs-unreachable" in m["diagnoses"]
    html = tmp_path / "r.html"
    proc = cli("analyze", str(built["path"]), "--format", "html", "-o", str(html))
    assert proc.returncode == 2 and "etcd" in html.read_text()
    proc = cli("analyze", str(built["path"]))
    assert proc.returncode == 2 and "dcs-unreachable" in proc.stdout
    for text in (html.read_text(), proc.stdout):
        _assert_no_canary(text.encode(), "analyze output")


def _rewrite(src: Path, dst: Path, change) -> None:
    with tarfile.open(src, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(dst, "w:gz") as out:
        for m, blob in change(members):
            m.size = len(blob)
            out.addfile(m, io.BytesIO(blob))


def _one_line_exit_3(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_bad_bundles_fail_in_one_line(built, tmp_path):
    truncated = tmp_path / "cut.tar.gz"
    data = built["path"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    _one_line_exit_3(cli("analyze", str(truncated)), "truncated or corrupt")
    garbage = tmp_path / "notes.txt"
    garbage.write_text("just some notes\n")
    _one_line_exit_3(cli("analyze", str(garbage)), "not a pgdoctor bundle")
    _one_line_exit_3(cli("analyze", str(tmp_path / "missing.tar.gz")), "does not exist")
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("x/readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    _one_line_exit_3(cli("analyze", str(other)), "no manifest.json")

    def tamper(members):
        for m, blob in members:
            if m.name.endswith("/facts.json"):
                blob = blob.replace(b'"host"', b'"hosT"')
            yield m, blob
    bad = tmp_path / "tampered.tar.gz"
    _rewrite(built["path"], bad, tamper)
    _one_line_exit_3(cli("analyze", str(bad)), "corrupt", "sha256")


@pytest.mark.parametrize("version,words", [(99, ("newer pgdoctor", "upgrade")), (0, ("too old",))])
def test_other_facts_versions_say_why(built, tmp_path, version, words):
    def bump(members):
        members = list(members)
        facts = next(b for m, b in members if m.name.endswith("/facts.json"))
        data = json.loads(facts)
        data["version"] = version
        new_facts = json.dumps(data).encode()
        for m, blob in members:
            if m.name.endswith("/facts.json"):
                blob = new_facts
            elif m.name.endswith("/manifest.json"):
                man = json.loads(blob)
                for f in man["files"]:
                    if f["name"] == "facts.json":
                        f["sha256"] = hashlib.sha256(new_facts).hexdigest()
                blob = json.dumps(man).encode()
            yield m, blob
    dst = tmp_path / f"v{version}.tar.gz"
    _rewrite(built["path"], dst, bump)
    _one_line_exit_3(cli("analyze", str(dst)), f"facts version {version}", *words)


def test_missing_config_is_a_usage_error(tmp_path):
    _one_line_exit_3(cli("bundle", "-c", str(tmp_path / "nope.yml"), "-o", str(tmp_path)), "does not exist")
    assert not list(tmp_path.glob("*.tar.gz"))


def test_log_cap_keeps_the_newest(tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    old, new = logdir / "patroni.log.1", logdir / "patroni.log"
    old.write_text("".join(f"old line {i}\n" for i in range(2000)))
    new.write_text("".join(f"new line {i} password=pw{i}x\n" for i in range(2000)))
    os.utime(old, (time.time() - 60, time.time() - 60))
    facts = Facts({"version": 1, "config": {"data": {"log": {"dir": str(logdir)}}}})
    got = bundle_logs.harvest(facts, Redactor(), since_seconds=3600, max_bytes=20_000,
                              deadline=Deadline.for_command(5.0, "bundle"))
    assert [e.source for e in got.excerpts] == [str(new)]
    ex = got.excerpts[0]
    assert ex.truncated and "new line 1999" in ex.text and "new line 0 " not in ex.text
    assert not ex.text.startswith("new line") or ex.text.split("\n", 1)[0].startswith("new line")
    assert "pw1999x" not in ex.text
    assert any(x["file"] == str(old) and "size cap" in x["reason"] for x in got.left_out)
    assert len(ex.text.encode()) <= 20_000 + 2000 * 30  # tokens may be longer than the secrets


# -- wordy passwords: redaction never cuts into other words, the config keeps its keys --------------

_GLUED = re.compile(rb"[A-Za-z0-9_]\[REDACTED:|\[REDACTED:[\w-]+:[0-9a-f]+\][A-Za-z0-9_]")


def _key_paths(value, trail=""):
    if isinstance(value, dict):
        out = set()
        for k, v in value.items():
            out.add(f"{trail}.{k}")
            out |= _key_paths(v, f"{trail}.{k}")
        return out
    return set()


@pytest.fixture(scope="module")
def wordy(tmp_path_factory) -> dict:
    """A bundle of a member whose passwords share words with ordinary text, written under its default name."""
    base = tmp_path_factory.mktemp("wordy")
    logdir = base / "log"
    logdir.mkdir()
    cfg = base / "patroni.yml"
    cfg.write_text(f"""scope: wordy
name: member-3
log:
  dir: {logdir}
restapi:
  listen: {ADDR}:8008
  connect_address: {ADDR}:8008
etcd3:
  hosts: {ADDR}:2379
postgresql:
  listen: {ADDR}:5432
  connect_address: {ADDR}:5432
  data_dir: {base / 'data'}
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: replicator
      password: not-the-password
    rewind:
      username: rewinder
      password: 'correct horse battery staple'
""")
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    (logdir / "patroni.log").write_text(
        f"{now},001 INFO: no action. I am (member-3), a secondary, and the leader is another server\n"
        f'{now},002 ERROR: FATAL:  password authentication failed for user "replicator"\n'
        f"{now},003 DEBUG: echoed not-the-password and correct horse battery staple\n")
    out = tmp_path_factory.mktemp("wordy-out")
    proc = cli("bundle", "-c", str(cfg), "-o", str(out), "--timeout", "1")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    members: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as tar:
        for m in tar:
            members[m.name.split("/", 1)[1]] = tar.extractfile(m).read()
    return {"path": path, "members": members, "config": cfg}


def test_default_name_is_scope_and_member(wordy):
    assert re.fullmatch(r"pgdoctor-bundle-wordy-member-3-\d{8}T\d{6}Z\.tar\.gz", wordy["path"].name)


def test_default_name_falls_back_to_host_without_a_member_name():
    import datetime as dt

    from doctor.bundle.writer import default_name
    when = dt.datetime(2025, 1, 1, 3, 0, 0, tzinfo=dt.timezone.utc)
    assert default_name("db host", when, "main", None) == "pgdoctor-bundle-db_host-20250101T030000Z.tar.gz"
    assert default_name("vm", when, "main", "pg1") == "pgdoctor-bundle-main-pg1-20250101T030000Z.tar.gz"


def test_wordy_passwords_never_cut_into_words(wordy):
    for name, blob in wordy["members"].items():
        assert not _GLUED.search(blob), f"{name}: a token glued to a word: {_GLUED.search(blob).group(0)!r}"
        assert b"not-the-password" not in blob and b"correct horse battery staple" not in blob, name
    log = next(b for n, b in wordy["members"].items() if n.endswith("patroni.log")).decode()
    assert 'password authentication failed for user "replicator"' in log
    assert "a secondary, and the leader is another server" in log


def test_redacted_config_parses_with_the_same_keys(wordy):
    original = yaml.safe_load(wordy["config"].read_text())
    redacted = yaml.safe_load(wordy["members"]["config/patroni.yml"])
    assert _key_paths(original) == _key_paths(redacted)
    auth = redacted["postgresql"]["authentication"]
    assert all(str(auth[r]["password"]).startswith("[REDACTED:password:") for r in ("superuser", "replication", "rewind"))
    # "postgres" is a password here, so it is replaced as a word; never inside "postgresql".
    assert "postgresql" in redacted and redacted["etcd3"]["hosts"] == f"{ADDR}:2379"


def test_analyze_says_which_bundle_it_reads(wordy, tmp_path):
    name = wordy["path"].name
    proc = cli("analyze", str(wordy["path"]))
    head = proc.stdout.splitlines()[:2]
    assert head[0].startswith("pgdoctor analyze — node member-3, cluster wordy"), head
    assert head[1].startswith(f"from bundle {name}, collected on host "), head
    assert re.search(r" at \d{4}-\d{2}-\d{2}T", head[1]), head
    report = json.loads(cli("analyze", str(wordy["path"]), "--format", "json").stdout)
    assert report["source"]["bundle"] == name and report["source"]["member"] == "member-3"
    assert report["source"]["collected_at"] and report["source"]["host"]
    html = tmp_path / "r.html"
    cli("analyze", str(wordy["path"]), "--format", "html", "-o", str(html))
    head = html.read_text().split("<main>")[0]
    assert name in head and "collected on host" in head
