"""The command line as a user meets it: exit codes, one-line errors, JSON that matches its schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from cli_runner import Result, run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "patroni.yml"
SCHEMA = json.loads((REPO / "doctor" / "schemas" / "report.schema.json").read_text())


def pgdoctor(*args: str, env: dict | None = None, stdin: str | None = None) -> Result:
    return run_cli(*args, env=env, input=stdin, timeout=120)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture
def tab_config(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text().replace("  listen: 127.0.0.11:8008", "\tlisten: 127.0.0.11:8008")
    p = tmp_path / "patroni.yml"
    p.write_text(text)
    return p


def test_version_and_help():
    out = pgdoctor("--version")
    assert out.returncode == 0 and out.stdout.startswith("pgdoctor ")
    out = pgdoctor("run", "--help")
    assert out.returncode == 0 and "--config-file" in out.stdout and "Examples" in out.stdout


def test_exit_0_when_the_selected_checks_pass():
    out = pgdoctor("run", "-c", str(EXAMPLE), "--only", "config-invalid-yaml,config-invalid", "--format", "json")
    no_traceback(out)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "ok" and report["diagnoses"] == []


def test_exit_1_on_warnings_only(tmp_path):
    """A postmaster.pid naming a dead pid is a warning: exit 1."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "PG_VERSION").write_text("15\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    (data / "postmaster.pid").write_text(f"{dead.pid}\n{data}\n1700000000\n5432\n/tmp\n127.0.9.1\n")
    cfg = tmp_path / "p.yml"
    cfg.write_text(EXAMPLE.read_text().replace("/var/tmp/pgdoctor-example/data", str(data)))
    out = pgdoctor("run", "-c", str(cfg), "--only", "postmaster-pid-stale", "--format", "json")
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "warn"
    assert report["diagnoses"][0]["id"] == "postmaster-pid-stale"
    assert str(data / "postmaster.pid") in report["diagnoses"][0]["summary"]


def test_missing_data_dir_that_postgres_cannot_create_fails(tmp_path):
    cfg = tmp_path / "p.yml"
    cfg.write_text(EXAMPLE.read_text().replace("/var/tmp/pgdoctor-example/data", str(tmp_path / "missing" / "data")))
    out = pgdoctor("run", "-c", str(cfg), "--only", "datadir-permissions", "--format", "json")
    assert out.returncode == 2, out.stdout + out.stderr
    d = json.loads(out.stdout)["diagnoses"][0]
    assert d["id"] == "datadir-permissions" and "cannot create it" in d["summary"]
    assert any(f"install -d -o postgres -g postgres -m 700 -- {tmp_path / 'missing' / 'data'}" in b for b in d["fix"])


def test_tab_gives_config_invalid_yaml_with_line_number(tab_config):
    out = pgdoctor("run", "-c", str(tab_config), "--format", "json", "--no-logs")
    no_traceback(out)
    assert out.returncode == 2
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    first = report["diagnoses"][0]
    assert first["id"] == "config-invalid-yaml"
    line = next(i for i, l in enumerate(tab_config.read_text().splitlines(), 1) if l.startswith("\t"))
    assert f"line {line}" in first["summary"] and "tab" in first["summary"]
    assert any(str(tab_config) in block for block in first["fix"])


def test_text_output_shows_diagnosis_fix_and_verdict(tab_config):
    out = pgdoctor("run", "-c", str(tab_config), "--no-logs")
    assert out.returncode == 2
    assert "patroni.yml is not valid YAML" in out.stdout
    line = next(i for i, l in enumerate(tab_config.read_text().splitlines(), 1) if l.startswith("\t"))
    command = f"sudo sed -i.bak -e '{line}s/^[[:space:]]*/  /' {tab_config}"
    assert "Fix" in out.stdout and command in out.stdout
    # The printed fix really repairs the file: run it (without sudo) and the YAML is the example again.
    subprocess.run(command.replace("sudo ", "", 1), shell=True, check=True)
    import yaml
    assert yaml.safe_load(tab_config.read_text()) == yaml.safe_load(EXAMPLE.read_text())
    assert "Verdict: FAILING" in out.stdout and "exit 2" in out.stdout


def test_no_color_is_honoured(tab_config):
    out = pgdoctor("run", "-c", str(tab_config), "--no-logs", env={"NO_COLOR": "1", "FORCE_COLOR": "1", "TERM": "xterm"})
    assert "\x1b[" not in out.stdout
    colored = pgdoctor("run", "-c", str(tab_config), "--no-logs", env={"FORCE_COLOR": "1", "TERM": "xterm"})
    assert "\x1b[" in colored.stdout  # the control: colour does appear when forced


@pytest.mark.parametrize("args,needle", [
    (["run", "-c", "/nonexistent/patroni.yml"], "does not exist"),
    (["run", "-c", "/"], "is a directory"),
    (["run", "--format", "yaml", "-c", "x"], "yaml"),
    (["run", "--only", "no-such-check", "-c", "x"], "unknown check or problem id: no-such-check"),
    (["explain", "no-such-problem"], "no playbook 'no-such-problem'"),
    (["no-such-command"], "No such command"),
    (["run", "--since", "yesterday-ish", "-c", "x"], "not a duration"),
])
def test_usage_errors_are_one_line_exit_3(args, needle):
    out = pgdoctor(*args)
    no_traceback(out)
    assert out.returncode == 3, out.stdout + out.stderr
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_binary_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "patroni.yml"
    cfg.write_bytes(b"\x7fELF\x00\x01\x02garbage\xff\xfe")
    out = pgdoctor("run", "-c", str(cfg))
    no_traceback(out)
    assert out.returncode == 3 and "binary" in out.stderr


def test_no_config_anywhere_says_where_it_looked():
    out = pgdoctor("run", env={"PATRONICTL_CONFIG_FILE": ""})
    if Path("/etc/patroni/patroni.yml").exists() or Path("/etc/patroni.yml").exists():
        pytest.skip("a system patroni.yml exists on this machine")
    assert out.returncode == 3
    assert "PATRONICTL_CONFIG_FILE" in out.stderr and "/etc/patroni/patroni.yml" in out.stderr


def test_config_from_environment_variable(tab_config):
    out = pgdoctor("run", "--format", "json", "--no-logs", env={"PATRONICTL_CONFIG_FILE": str(tab_config)})
    assert json.loads(out.stdout)["node"]["config_path"] == str(tab_config)


def test_unreadable_config_is_a_usage_error(tmp_path, monkeypatch):
    import os

    from doctor.collect.config import read_config_text
    from doctor.errors import UsageError

    def deny(*_args, **_kw):
        raise PermissionError(13, "Permission denied")

    target = tmp_path / "p.yml"
    target.write_text("scope: x\n")
    monkeypatch.setattr(os, "open", deny)  # root reads any file: make the open itself refuse
    with pytest.raises(UsageError, match="not readable by this user"):
        read_config_text(str(target))


def test_output_file_and_unwritable_output(tab_config, tmp_path):
    target = tmp_path / "report.json"
    out = pgdoctor("run", "-c", str(tab_config), "--no-logs", "--format", "json", "-o", str(target))
    assert out.returncode == 2 and json.loads(target.read_text())["diagnoses"][0]["id"] == "config-invalid-yaml"
    out = pgdoctor("run", "-c", str(tab_config), "--no-logs", "--format", "json", "-o", "/nonexistent-dir/r.json")
    assert out.returncode == 3 and "cannot write /nonexistent-dir/r.json" in out.stderr


def test_checks_and_explain():
    out = pgdoctor("checks", "--format", "json")
    assert out.returncode == 0
    data = json.loads(out.stdout)
    assert {"check": "datadir.permissions", "problem": "datadir-permissions"}.items() <= next(
        c for c in data["checks"] if c["check"] == "datadir.permissions").items()
    out = pgdoctor("explain", "datadir-permissions", "-c", str(EXAMPLE))
    assert out.returncode == 0
    assert "chmod 700 -- /var/tmp/pgdoctor-example/data" in out.stdout


def test_explain_without_a_config_shows_the_placeholders_in_prose_and_code():
    """Markdown would take a ``<member>`` in prose for an HTML tag and drop it ("Patroni on  exits")."""
    out = pgdoctor("explain", "system-id-mismatch")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "Patroni on <member> exits" in text
    assert "node '<member>' belongs to a different cluster" in text and "\\<" not in text


def test_secrets_from_the_config_never_reach_the_output(tab_config, tmp_path):
    cfg = tmp_path / "ok.yml"
    cfg.write_text(EXAMPLE.read_text())
    for args in (["--format", "json"], []):
        out = pgdoctor("run", "-c", str(cfg), "--no-logs", *args)
        assert "example-superuser-secret" not in out.stdout + out.stderr
        assert "example-replication-secret" not in out.stdout + out.stderr


def test_a_yaml_file_that_is_not_a_patroni_config_is_refused(tmp_path):
    cfg = tmp_path / "docker-compose.yml"
    cfg.write_text('version: "3"\nservices:\n  db:\n    image: postgres\n')
    out = pgdoctor("run", "-c", str(cfg))
    no_traceback(out)
    assert out.returncode == 3
    assert "does not look like a Patroni config" in out.stderr and "services" in out.stderr


@pytest.fixture
def acme_playbooks(tmp_path: Path) -> tuple[Path, Path]:
    """A team's own playbook directory and a log with its line, written just now."""
    import datetime as dt
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "acme-disk-quota.md").write_text(
        "---\nid: acme-disk-quota\ntitle: The ACME quota daemon throttles the data volume\nseverity: error\n"
        "patterns:\n  - {id: acme-quota, log: any, regex: 'acme-quota: volume (?P<volume>\\S+) throttled'}\n---\n\n"
        "## Symptoms\nWrites stall.\n\n## Cause\nThrottled.\n\n## Fix\n```\nacme-quota release {{ volume }}\n```\n\n"
        "## Verify\nNo more lines.\n")
    log = tmp_path / "acme.log"
    log.write_text(f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S,000')} ERROR: acme-quota: volume /srv/pg throttled\n")
    return books, log


def test_a_teams_own_playbook_is_used_for_logs_and_fixes(acme_playbooks):
    """--playbooks DIR adds the team's problems: their log patterns are scanned and their fixes filled."""
    books, log = acme_playbooks
    out = pgdoctor("run", "-c", str(EXAMPLE), "--playbooks", str(books), "--log-file", str(log), "--since", "3650d",
                   "--format", "json")
    diag = {d["id"]: d for d in json.loads(out.stdout)["diagnoses"]}
    assert diag["acme-disk-quota"]["fix"] == ["acme-quota release /srv/pg"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_reader_closing_the_pipe_keeps_the_exit_code(tab_config, fmt):
    """`pgdoctor run | head -1` still exits with the verdict's code (2 here), not an error."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "doctor", "run", "-c", str(tab_config), "--no-logs", "--format", fmt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.stdout.close()  # as head does after its first line
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 2, err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_logs_takes_a_teams_playbooks_and_writes_every_format_to_a_file(acme_playbooks, tmp_path):
    books, log = acme_playbooks
    assert pgdoctor("logs", str(log), "--format", "json").returncode == 0  # unknown line without the playbooks
    out = pgdoctor("logs", str(log), "--playbooks", str(books), "--format", "json")
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    assert out.returncode == 2 and report["diagnoses"][0]["fix"] == ["acme-quota release /srv/pg"]
    for fmt, needle in (("html", "acme-quota release /srv/pg</code>"), ("text", "acme-quota release /srv/pg"),
                        ("json", '"acme-disk-quota"')):
        target = tmp_path / f"logs.{fmt}"
        out = pgdoctor("logs", str(log), "--playbooks", str(books), "--format", fmt, "-o", str(target))
        no_traceback(out)
        assert out.returncode == 2 and out.stdout == "" and f"wrote {target}" in out.stderr
        assert needle in target.read_text(), fmt


@pytest.mark.parametrize("command", ["run", "logs", "replication", "preflight", "verify", "analyze"])
def test_every_reporting_command_has_the_same_output_options(command):
    out = pgdoctor(command, "--help", env={"COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    for needle in ("--format", "--output", "text for people, json for scripts, html for a report file."):
        assert needle in out.stdout, (command, needle)


@pytest.mark.parametrize("command", ["run", "replication"])
def test_thresholds_are_parsed_alike(command):
    out = pgdoctor(command, "-c", "/nonexistent.yml", "--max-lag-bytes", "lots")
    assert out.returncode == 3 and out.stderr.startswith("pgdoctor: ") and "lots" in out.stderr
    out = pgdoctor(command, "--help", env={"COLUMNS": "200"})
    assert all(o in out.stdout for o in ("--max-lag-bytes", "--max-lag-seconds", "--slot-retained-bytes"))


def test_a_command_module_that_fails_to_import_fails_loudly():
    """Commands are registered explicitly: a broken module is an error, not four commands gone missing."""
    code = "import sys; sys.modules['doctor.commands.logs'] = None; from doctor.cli import main; main()"
    out = subprocess.run([sys.executable, "-c", code, "checks"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), cwd="/")
    assert out.returncode != 0 and "doctor.commands.logs" in out.stderr
