"""One planted secret for each way a secret used to slip past redaction, through the redactor and
through a real `pgdoctor bundle`; and the rule that decides which .pgpass file a bundle may carry.

The forms: ETCDCTL_USER=user:password and ETCDCTL_PASSWORD in pgdoctor's and Patroni's environment,
CREATE ROLE / ALTER USER ... PASSWORD '...' in a PostgreSQL log, ssl_passphrase_command: 'echo ...',
a commented-out password in patroni.yml, a .pgpass line quoted in a log, and a shadow-format file
named as postgresql.pgpass. The words around each secret must survive.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from test_bundle import ADDR, cli

from doctor.bundle import pgpass
from doctor.redact import TOKEN_PREFIX, Redactor

CANARY = {
    "etcdctl_user": "CANARY-etcdctl-user-3f7a",
    "etcdctl_password": "CANARY-etcdctl-pw-91c2",
    "proc_etcdctl_user": "CANARY-proc-etcdctl-6d0e",
    "create_role": "CANARY-create-role-2b8f",
    "alter_user": "CANARY-alter-user-c41d",
    "passphrase": "CANARY-sslpass-7e55",
    "commented": "CANARY-commented-0a9b",
    "pgpass_line": "CANARY-pgpassline-58d3",
    "shadow_hash": "CANARYSHADOWHASH4e1b",
}


# -- the redactor, one form at a time ------------------------------------------------------------

@pytest.mark.parametrize("where,text,secret,kept", [
    ("environment", "ETCDCTL_USER=root:{s} etcdctl get /service", CANARY["etcdctl_user"],
     ["ETCDCTL_USER=root:", "etcdctl get /service"]),
    ("command line", "etcdctl --user root:{s} endpoint health", CANARY["etcdctl_user"],
     ["--user root:", "endpoint health"]),
    ("postgresql log", "2025-01-01 10:00:00 UTC [42] LOG:  statement: CREATE ROLE app LOGIN PASSWORD '{s}';",
     CANARY["create_role"], ["statement: CREATE ROLE app LOGIN PASSWORD '"]),
    ("postgresql log", "2025-01-01 10:00:01 UTC [42] STATEMENT:  ALTER USER replicator WITH ENCRYPTED PASSWORD '{s}'",
     CANARY["alter_user"], ["ALTER USER replicator WITH ENCRYPTED PASSWORD '"]),
    ("postgresql.conf", "ssl_passphrase_command = 'echo {s}'\nssl_passphrase_command_supports_reload = on",
     CANARY["passphrase"], ["ssl_passphrase_command = '", "ssl_passphrase_command_supports_reload = on"]),
    ("patroni log", '2025-01-01 10:00:02,000 ERROR: bad entry "127.0.0.1:5432:*:replicator:{s}" in .pgpass',
     CANARY["pgpass_line"], ['bad entry "127.0.0.1:5432:*:replicator:', 'in .pgpass']),
])
def test_each_form_is_redacted_and_its_words_kept(where, text, secret, kept):
    r = Redactor()
    out = r.text(text.format(s=secret), where)
    assert secret not in out, out
    assert TOKEN_PREFIX in out
    for words in kept:
        assert words in out, (words, out)
    # once seen, the secret is caught anywhere it shows up again
    assert secret not in r.text(f"echoed {secret} later")


def test_etcdctl_user_and_password_in_an_environment_keep_the_user_name():
    r = Redactor()
    env = r.environ({"ETCDCTL_USER": f"root:{CANARY['etcdctl_user']}", "ETCDCTL_PASSWORD": CANARY["etcdctl_password"],
                     "ETCDCTL_ENDPOINTS": "http://127.0.0.1:2379", "PWD": "/var/lib/postgresql"})
    assert env["ETCDCTL_USER"].startswith("root:" + TOKEN_PREFIX)
    assert env["ETCDCTL_PASSWORD"].startswith(TOKEN_PREFIX)
    assert env["ETCDCTL_ENDPOINTS"] == "http://127.0.0.1:2379" and env["PWD"] == "/var/lib/postgresql"
    # a user name alone is not a secret
    assert Redactor().environ({"ETCDCTL_USER": "root"}) == {"ETCDCTL_USER": "root"}
    # learned from the environment before collecting, then caught in any text
    learner = Redactor()
    learner.remember_environ({"ETCDCTL_USER": f"root:{CANARY['etcdctl_user']}"})
    assert CANARY["etcdctl_user"] not in learner.text(f"auth as {CANARY['etcdctl_user']}")
    assert "root" not in learner.known_secrets()


def test_passphrase_command_is_replaced_whole_and_what_it_prints_is_remembered():
    r = Redactor()
    config = ("postgresql:\n  parameters:\n"
              f"    ssl_passphrase_command: 'echo {CANARY['passphrase']}'\n"
              "    ssl_passphrase_command_supports_reload: true\n")
    out = r.yaml_text(config)
    parsed = yaml.safe_load(out)["postgresql"]["parameters"]
    assert parsed["ssl_passphrase_command"].startswith(TOKEN_PREFIX)
    assert parsed["ssl_passphrase_command_supports_reload"] is True
    assert CANARY["passphrase"] not in r.text(f"key unlocked with {CANARY['passphrase']}")
    facts = r.data({"settings": {"ssl_passphrase_command": f"sh -c 'printf %s {CANARY['passphrase']}'"}})
    assert CANARY["passphrase"] not in json.dumps(facts)


def test_a_commented_out_password_is_redacted_and_a_talking_comment_is_not():
    r = Redactor()
    text = ("postgresql:\n  authentication:\n    replication:\n      username: replicator\n"
            f"      # password: {CANARY['commented']}\n"
            "      # password: ask the team, it is in the vault\n"
            "      password: current-one-9\n")
    out = r.yaml_text(text)
    assert CANARY["commented"] not in out
    assert "      # password: '[REDACTED:password:" in out
    assert "# password: ask the team, it is in the vault" in out  # prose in a comment is no secret
    assert "ask the team, it is in the vault" not in r.known_secrets()
    assert yaml.safe_load(out)["postgresql"]["authentication"]["replication"]["username"] == "replicator"


def test_pgpass_lookalikes_in_logs_are_left_alone():
    r = Redactor()
    text = ("2025-01-01 10:00:00,123 INFO: no action. I am (node1), the leader with the lock\n"
            "listening on [fe80:0:0:0:0:0:0:1]:5432 and fe80::1:2:3:4; at 10:00:00 mac aa:bb:cc:dd:ee:ff\n"
            "# hostname:port:database:username:password\n"
            "INFO:patroni.ha:a:b:c\n")
    assert r.text(text) == text and r.known_secrets() == []


def test_prose_about_roles_and_passwords_is_not_sql():
    r = Redactor()
    text = ('FATAL:  password authentication failed for user "replicator"\n'
            "HINT: alter the role's password on the leader, then reload\n")
    assert r.text(text) == text and r.known_secrets() == []


# -- which pgpass a bundle may carry ---------------------------------------------------------------

ME = pwd.getpwuid(os.getuid()).pw_name
GOOD = "# host:port:db:user:password\n127.0.0.1:5432:*:replicator:pp-1\n*:*:*:post\\:gres:pp\\:2\n"


def _file(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_a_real_pgpass_of_the_postgres_user_is_shippable(tmp_path):
    assert pgpass.shippable(_file(tmp_path / "pgpass", GOOD), ME) == GOOD
    assert pgpass.shippable(_file(tmp_path / "ro", GOOD, 0o400), ME) == GOOD


@pytest.mark.parametrize("make,why", [
    (lambda d: _file(d / "shadow", f"root:$6$salt${CANARY['shadow_hash']}:19000:0:99999:7:::\n"),
     "line 1 is not host:port:database:user:password"),
    (lambda d: _file(d / "passwd", "root:x:0:0:root:/root:/bin/bash\n"), "line 1 is not"),
    (lambda d: _file(d / "words", "just a note\n"), "line 1 is not"),
    (lambda d: _file(d / "open", GOOD, 0o644), "mode 0644, not 0600"),
    (lambda d: _file(d / "group", GOOD, 0o640), "mode 0640, not 0600"),
    (lambda d: (os.symlink(_file(d / "target", GOOD), d / "link"), str(d / "link"))[1], "is a symbolic link"),
    (lambda d: (os.mkfifo(d / "fifo", 0o600), str(d / "fifo"))[1], "is a FIFO"),
    (lambda d: "/dev/null", "is a device"),
    (lambda d: str(d), "is a directory"),
    (lambda d: str(d / "absent"), "does not exist"),
])
def test_anything_else_is_refused_with_the_reason(tmp_path, make, why):
    path = make(tmp_path)
    with pytest.raises(pgpass.Refused) as err:
        pgpass.shippable(path, ME)
    assert why in str(err.value)
    assert CANARY["shadow_hash"] not in str(err.value)  # the reason never quotes the file


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to another owner")
def test_a_pgpass_owned_by_someone_else_is_refused(tmp_path):
    path = _file(tmp_path / "other", GOOD)
    os.chown(path, 65534, 65534)
    with pytest.raises(pgpass.Refused, match=r"owned by .*, not root"):
        pgpass.shippable(path, ME)
    with pytest.raises(pgpass.Refused, match="no OS user"):
        pgpass.shippable(path, "no-such-user-here")


def test_a_fifo_never_blocks_learning(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    assert pgpass.learnable(str(fifo)) is None  # would hang forever if it were opened for a plain read
    shadow = _file(tmp_path / "shadow", f"root:$6${CANARY['shadow_hash']}:1:0:9:7:::\nh:5432:d:u:learned-pw\n", 0o644)
    assert pgpass.learnable(shadow) == "h:5432:d:u:learned-pw"


# -- a real bundle with every canary planted -------------------------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("canaries")
    logdir, pglog = base / "log", base / "data" / "log"
    logdir.mkdir()
    pglog.mkdir(parents=True)
    shadow = base / "shadow"
    _file(shadow, f"root:$6$saltsalt${CANARY['shadow_hash']}:19000:0:99999:7:::\n"
                  "postgres:!:19000:0:99999:7:::\n")
    fifo = base / "pgpass.fifo"
    os.mkfifo(fifo, 0o600)
    cfg = base / "patroni.yml"
    cfg.write_text(f"""scope: canaries
name: cnode2
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
  pgpass: {shadow}
  parameters:
    logging_collector: 'on'
    log_directory: log
    ssl_passphrase_command: 'echo {CANARY['passphrase']}'
  authentication:
    replication:
      username: replicator
      # password: {CANARY['commented']}
      password: repl-current-77
""")
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    (logdir / "patroni.log").write_text(
        f"{now},001 INFO: no action. I am (cnode2), a secondary, and following a leader (cnode1)\n"
        f'{now},002 ERROR: could not parse .pgpass entry "{ADDR}:5432:*:replicator:{CANARY["pgpass_line"]}"\n')
    (pglog / time.strftime("postgresql-%Y-%m-%d_%H%M%S.log")).write_text(
        f"{now}.100 UTC [101] LOG:  statement: CREATE ROLE app LOGIN PASSWORD '{CANARY['create_role']}';\n"
        f"{now}.200 UTC [101] LOG:  statement: ALTER USER replicator WITH PASSWORD '{CANARY['alter_user']}'\n"
        f'{now}.300 UTC [102] FATAL:  password authentication failed for user "replicator"\n')
    fake = base / "bin" / "patroni"
    fake.parent.mkdir()
    fake.write_text("import time\ntime.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, str(fake), str(cfg)],
                            env={"PATH": "/usr/bin:/bin", "ETCDCTL_USER": f"patroni:{CANARY['proc_etcdctl_user']}"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"ETCDCTL_USER": f"root:{CANARY['etcdctl_user']}", "ETCDCTL_PASSWORD": CANARY["etcdctl_password"],
           "PGPASSFILE": str(fifo)}
    try:
        out = base / "b.tar.gz"
        made = cli("bundle", "-c", str(cfg), "-o", str(out), "--timeout", "1", "--pg-user", ME, env=env)
        assert made.returncode == 0, made.stderr
        members: dict[str, bytes] = {}
        with tarfile.open(out, "r:gz") as tar:
            for m in tar:
                members[m.name.split("/", 1)[1]] = tar.extractfile(m).read()
        yield {"members": members, "config": cfg, "env": env, "bundle": out, "output": made.stdout + made.stderr}
    finally:
        proc.kill()
        proc.wait()


def _no_canary(blob: bytes, where: str) -> None:
    for name, secret in CANARY.items():
        assert secret.encode() not in blob, f"{name} leaked into {where}"


def test_no_canary_in_any_member_of_the_bundle(planted):
    # the members that carry the planted secrets' sources are there to be searched
    assert {"facts.json", "system/environment.json"} <= set(planted["members"]), sorted(planted["members"])
    assert any(name.startswith("logs/") for name in planted["members"]), sorted(planted["members"])
    for name, blob in planted["members"].items():
        _no_canary(blob, name)
    _no_canary(planted["output"].encode(), "the bundle command's output")


def test_the_words_around_each_secret_survive(planted):
    m = planted["members"]
    env = json.loads(m["system/environment.json"])
    assert env["pgdoctor"]["ETCDCTL_USER"].startswith("root:[REDACTED:password:")
    assert env["pgdoctor"]["ETCDCTL_PASSWORD"].startswith("[REDACTED:password:")
    fake = [p for p in env["processes"] if "ETCDCTL_USER" in p.get("environment", {})]
    assert fake and fake[0]["environment"]["ETCDCTL_USER"].startswith("patroni:[REDACTED:password:")
    pg = next(v for k, v in m.items() if "/postgresql-" in k).decode()
    assert "statement: CREATE ROLE app LOGIN PASSWORD '[REDACTED:password:" in pg
    assert "ALTER USER replicator WITH PASSWORD '[REDACTED:password:" in pg
    assert 'password authentication failed for user "replicator"' in pg
    log = next(v for k, v in m.items() if k.endswith("patroni.log")).decode()
    assert f'could not parse .pgpass entry "{ADDR}:5432:*:replicator:[REDACTED:' in log
    assert "a secondary, and following a leader (cnode1)" in log
    yml = m["config/patroni.yml"].decode()
    assert "      # password: '[REDACTED:password:" in yml
    parsed = yaml.safe_load(yml)
    assert parsed["postgresql"]["parameters"]["ssl_passphrase_command"].startswith("[REDACTED:")
    assert parsed["postgresql"]["authentication"]["replication"]["username"] == "replicator"
    assert parsed["postgresql"]["pgpass"] == str(planted["config"].parent / "shadow")


def test_a_shadow_file_named_as_pgpass_and_a_fifo_are_not_collected(planted):
    assert not [n for n in planted["members"] if n.startswith("config/pgpass/")]
    manifest = json.loads(planted["members"]["manifest.json"])
    why = {x["what"]: x["message"] for x in manifest["not_collected"] if x["what"].startswith("pgpass ")}
    shadow = str(planted["config"].parent / "shadow")
    assert why[f"pgpass {shadow} (postgresql.pgpass)"] == \
        "not collected: line 1 is not host:port:database:user:password"
    assert why[f"pgpass {planted['env']['PGPASSFILE']} ($PGPASSFILE)"] == "not collected: is a FIFO"


def test_run_and_analyze_outputs_hold_no_canary(planted, tmp_path):
    env = {k: v for k, v in planted["env"].items() if k != "PGPASSFILE"}
    for fmt in ("text", "json", "html"):
        out = tmp_path / f"run.{fmt}"
        proc = cli("run", "-c", str(planted["config"]), "--timeout", "10", "--format", fmt, "-o", str(out), env=env)
        assert proc.returncode in (1, 2), proc.stderr
        assert "replication-auth-failed" in out.read_text()  # the PostgreSQL log was read
        _no_canary(out.read_bytes() + (proc.stdout + proc.stderr).encode(), f"run --format {fmt}")
        proc = cli("analyze", str(planted["bundle"]), "--format", fmt)
        assert proc.returncode in (1, 2), proc.stderr
        _no_canary((proc.stdout + proc.stderr).encode(), f"analyze --format {fmt}")
