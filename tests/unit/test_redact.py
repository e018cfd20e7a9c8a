"""The redactor on every form a secret takes: config keys, URLs, connection strings, JSON, YAML,
command lines, environments, .pgpass, private keys and tokens."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from doctor.redact import TOKEN_PREFIX, Redactor, collect_secrets, is_secret_key


def test_same_secret_same_token_and_different_secrets_differ():
    r = Redactor()
    a = r.text("host=db password=alpha-1 user=x")
    b = r.text("postgres://u:alpha-1@db/x")
    c = r.text("password=beta-2")
    tok = r.token("alpha-1")
    assert tok in a and tok in b
    assert r.token("beta-2") in c and r.token("beta-2") != tok
    assert "alpha-1" not in a + b and "beta-2" not in c


def test_tokens_differ_between_redactors():
    assert Redactor().token("same") != Redactor().token("same")


def test_config_structure_every_patroni_secret():
    config = {
        "restapi": {"authentication": {"username": "u", "password": "rest-pw"}, "keyfile_password": "kf-pw"},
        "ctl": {"authentication": {"username": "c", "password": "ctl-pw"}},
        "etcd3": {"username": "root", "password": "etcd-pw", "hosts": ["127.0.0.1:2379"]},
        "postgresql": {"authentication": {"superuser": {"password": "su-pw"}, "replication": {"password": "rep-pw"},
                                          "rewind": {"password": "rw-pw"}},
                       "parameters": {"password_encryption": "scram-sha-256"}},
    }
    assert sorted(collect_secrets(config)) == sorted(["rest-pw", "kf-pw", "ctl-pw", "etcd-pw", "su-pw", "rep-pw", "rw-pw"])
    r = Redactor()
    out = json.dumps(r.data(config, "config"))
    for s in ("rest-pw", "kf-pw", "ctl-pw", "etcd-pw", "su-pw", "rep-pw", "rw-pw"):
        assert s not in out
    assert "scram-sha-256" in out  # a setting named like a secret is not one
    kinds = {(x["kind"], x["file"]) for x in r.summary_list()}
    assert ("password", "config") in kinds
    assert all("pw" not in json.dumps(x) for x in r.summary_list())


def test_free_text_forms():
    r = Redactor()
    cases = {
        "primary_conninfo = 'host=10.0.0.1 port=5432 user=replicator password=conn-pw1 sslmode=prefer'": "conn-pw1",
        "connecting to postgresql://replicator:url-pw2@10.0.0.1:5432/postgres": "url-pw2",
        "redis://:bare-pw3@cache:6379": "bare-pw3",
        '{"canary_password": "json-pw4", "x": 1}': "json-pw4",
        "PGPASSWORD=env-pw5 psql -h x": "env-pw5",
        "PATRONI_SUPERUSER_PASSWORD='quoted pw6' patroni": "quoted pw6",
        "Authorization: Bearer tok-abcdefgh7": "tok-abcdefgh7",
        "token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlOA": "eyJhbGciOiJIUzI1NiJ9",
        "key AKIAABCDEFGHIJKLMNOP used": "AKIAABCDEFGHIJKLMNOP",
    }
    for line, secret in cases.items():
        out = r.text(line, "log")
        assert secret not in out, (line, out)
        assert TOKEN_PREFIX in out
    # ordinary log lines survive untouched
    keep = 'FATAL:  password authentication failed for user "replicator"'
    assert r.text(keep) == keep


def test_redaction_is_idempotent():
    r = Redactor()
    once = r.text("password=abc123 url postgres://a:b-pass@h/db Bearer abcdefghijk")
    assert "abc123" not in once and "b-pass" not in once  # the first pass did redact
    assert r.text(once) == once


def test_private_keys_whole_and_truncated():
    r = Redactor()
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEcanarykeybody\n-----END RSA PRIVATE KEY-----\n"
    out = r.text("before\n" + pem + "after")
    assert "canarykeybody" not in out and "before" in out and "after" in out
    cut = r.text("log: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXkcanarycut")
    assert "canarycut" not in cut


def test_command_lines():
    r = Redactor()
    out = r.argv(["etcdctl", "--user", "root:argv-pw1", "--password", "argv-pw2", "--password=argv-pw3", "get"])
    joined = " ".join(out)
    assert "argv-pw1" not in joined and "argv-pw2" not in joined and "argv-pw3" not in joined
    assert "root:" in joined
    # etcd's cluster token names a cluster; it is kept for diagnosis
    kept = r.data(["etcd", "--initial-cluster-token", "lab-cluster"])
    assert "lab-cluster" in kept


def test_environment_and_remembered_secrets():
    r = Redactor()
    env = r.environ({"PGPASSWORD": "env-canary-1", "PATRONI_REPLICATION_PASSWORD": "env-canary-2",
                     "PGHOST": "db1", "MY_TOKEN": "env-canary-3"})
    assert env["PGHOST"] == "db1"
    assert all(TOKEN_PREFIX in env[k] for k in ("PGPASSWORD", "PATRONI_REPLICATION_PASSWORD", "MY_TOKEN"))
    # once known, the secret is caught anywhere, even with no key around it
    assert "env-canary-1" not in r.text("something echoed env-canary-1 into a log")


def test_yaml_file_text_keeps_layout_and_stays_yaml():
    r = Redactor()
    text = ("# comment stays\nrestapi:\n  authentication:\n    username: admin\n    password: \"y-pw 1\"\n"
            "postgresql:\n  authentication:\n    superuser: {username: postgres, password: y-pw2}\n"
            "  parameters:\n    password_encryption: scram-sha-256\n")
    out = r.yaml_text(text)
    assert "y-pw 1" not in out and "y-pw2" not in out
    assert "# comment stays" in out
    parsed = yaml.safe_load(out)
    assert parsed["restapi"]["authentication"]["password"].startswith(TOKEN_PREFIX)
    assert parsed["postgresql"]["authentication"]["superuser"]["password"].startswith(TOKEN_PREFIX)
    assert parsed["postgresql"]["parameters"]["password_encryption"] == "scram-sha-256"


def test_pgpass_file():
    r = Redactor()
    out = r.pgpass("# host:port:db:user:password\n*:5432:*:replicator:pp-1\nlocalhost:*:*:postgres:pp\\:2\n")
    assert "pp-1" not in out and "pp\\:2" not in out and "pp:2" not in out
    assert "# host:port:db:user:password" in out
    assert out.count(TOKEN_PREFIX) == 2


def test_dcs_key_value_pairs():
    r = Redactor()
    out = r.data([{"key": "/service/pg/canary_password", "value": "dcs-pw"}, {"key": "/service/pg/leader", "value": "n1"}])
    assert out[0]["value"].startswith(TOKEN_PREFIX) and out[1]["value"] == "n1"
    assert is_secret_key("/service/pg/canary_password") and not is_secret_key("/service/pg/leader")


def test_leaks_finds_json_escaped_copies():
    r = Redactor()
    r.remember('pa"ss\\word')
    assert r.leaks(json.dumps({"x": 'pa"ss\\word'}).encode()) >= 1


# -- secrets that look like words: never cut into other words -------------------------------------

_PROSE = ('FATAL:  password authentication failed for user "replicator"\n'
          "wrong replication password: the password for replicator in /etc/patroni/patroni.yml is not the one "
          "of role replicator on the leader; another server answers <thead> rather than the leader\n")


def _config_with(password: str) -> str:
    return ("scope: demo\nname: node3\npostgresql:\n  authentication:\n    replication:\n"
            f"      username: replicator\n      password: {password}\n    superuser:\n"
            "      username: postgres\n      password: 'Sup3r-s3cret'\n  pgpass: /tmp/pgpass\n"
            "  parameters:\n    password_encryption: scram-sha-256\n")


def _keys(value, trail=""):
    """Every key path of a parsed YAML document."""
    if isinstance(value, dict):
        out = set()
        for k, v in value.items():
            out.add(f"{trail}.{k}")
            out |= _keys(v, f"{trail}.{k}")
        return out
    return set()


def test_prose_about_a_password_registers_no_secret():
    r = Redactor()
    assert r.text(_PROSE) == _PROSE
    assert r.known_secrets() == []


def test_prose_with_basic_or_token_words_is_not_a_credential():
    r = Redactor()
    text = "Basic authentication failed; Token expired yesterday; Bearer authorization required"
    assert r.text(text) == text and r.known_secrets() == []
    assert "dXNlcjpwYXNz" not in r.text("Authorization: Basic dXNlcjpwYXNz")


@pytest.mark.parametrize("password", ["not-the-password", "rainbow-unicorn-x", "correct horse battery staple",
                                      "thentic", "the"])
def test_hyphenated_multiword_and_wordlike_passwords_leave_other_words_whole(password):
    r = Redactor()
    conf = r.yaml_text(_config_with(f"'{password}'"))
    text = r.text(_PROSE + f"copied: {password} ; ({password})\n")
    tok = r.token(password)
    # Every word around the secret is whole: nothing was cut into "authentication", "another", "<thead>".
    if password == "the":  # a password that is a word is replaced as that word, and only as a word
        assert all(w in text for w in ("password authentication failed", "another server", "<thead>"))
        assert not re.search(r"\w\[REDACTED|\[REDACTED:[\w-]+:[0-9a-f]+\]\w", text + conf)
    else:
        assert text.startswith(_PROSE)
    assert text.endswith(f"copied: {tok} ; ({tok})\n")
    assert "  authentication:\n" in conf and "password_encryption: scram-sha-256" in conf
    assert f"password: '{tok}'" in conf


@pytest.mark.parametrize("password", ["not-the-password", "rainbow-unicorn-x", "postgres", "the",
                                      "correct horse battery staple", "p@ss: w#rd", "x'y\"z"])
def test_redacted_patroni_yml_parses_with_the_same_keys(password):
    r = Redactor()
    quoted = "'" + password.replace("'", "''") + "'"
    original = _config_with(quoted)
    r.remember(password)
    r.text(_PROSE)  # the report's prose passes the same redactor first
    redacted = r.yaml_text(original)
    before, after = yaml.safe_load(original), yaml.safe_load(redacted)
    assert _keys(before) == _keys(after)
    assert after["postgresql"]["authentication"]["replication"]["password"] == r.token(password)
    assert after["postgresql"]["authentication"]["superuser"]["password"].startswith(TOKEN_PREFIX)
    assert after["postgresql"]["pgpass"] == "/tmp/pgpass"
    assert password not in json.dumps(after) or password in ("the", "postgres")


def test_a_common_word_password_is_replaced_as_a_word_only():
    r = Redactor()
    r.remember("postgres")
    tok = r.token("postgres")
    out = r.text("user=postgres dir=/var/lib/postgresql/15 bin=postgres_exporter pw: postgres.")
    assert out == f"user={tok} dir=/var/lib/postgresql/15 bin=postgres_exporter pw: {tok}."
    assert r.leaks(b"/var/lib/postgresql and postgres_exporter") == 0
    assert r.leaks(b"PGPASSWORD=postgres") == 1


def test_long_random_secret_is_caught_even_glued_to_other_text():
    r = Redactor()
    secret = "Zx9-Qw7!kP2#mN5vR8"
    r.remember(secret)
    assert secret not in r.text(f"prefix{secret}suffix")
    assert r.leaks(f"abc{secret}def".encode()) == 1


def test_stand_ins_for_a_password_are_kept():
    r = Redactor()
    text = "export PGPASSWORD=<password>; psql password={{ replication_password }} pw=$REPL_PW"
    assert r.text(text) == text and r.known_secrets() == []


def test_yaml_comment_after_an_unquoted_password_is_not_part_of_it():
    r = Redactor()
    out = r.yaml_text("postgresql:\n  authentication:\n    replication:\n      password: s3cr3t-pw  # old one\n")
    assert "s3cr3t-pw" in r.known_secrets() and "s3cr3t-pw  # old one" not in r.known_secrets()
    assert "s3cr3t-pw" not in out


def test_the_working_directory_is_not_a_password():
    """$PWD is a path: treating it as a secret would blank the directory out of every path in a bundle."""
    r = Redactor()
    r.remember_environ({"PWD": "/tmp", "OLDPWD": "/etc/patroni", "PGPASSWORD": "canary-pgpass-9"})
    out = r.text("data_dir: /var/tmp/pgdoctor/data in /etc/patroni, password from canary-pgpass-9")
    assert "/var/tmp/pgdoctor/data" in out and "/etc/patroni" in out
    assert "canary-pgpass-9" not in out
    assert r.data({"PWD": "/tmp"}) == {"PWD": "/tmp"}


def test_a_text_once_clean_is_redacted_after_its_secret_becomes_known():
    """Texts that came back unchanged are remembered as clean; learning a secret forgets that."""
    r = Redactor()
    line = "restore_command=fetch-wal --key Zq8-vault-77 %f %p"
    assert r.text(line) == line  # nothing says this word is a secret yet
    assert r.text(line) == line
    r.remember("Zq8-vault-77")
    again = r.text(line, "logs")
    assert "Zq8-vault-77" not in again and r.token("Zq8-vault-77") in again
    assert r.summary[("known-secret", "logs")] == 1
    assert r.text("password=hunter-42") != "password=hunter-42"  # redactions are never cached as clean
    assert r.summary[("password", "text")] == 1
    r.text("password=hunter-42")
    assert r.summary[("password", "text")] == 2, "each redaction is counted, cached or not"
