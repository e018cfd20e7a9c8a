"""A corpus of broken patroni.yml variants (tests/unit/config_mutants.py), by category: syntax,
truncation, aliases, encodings, types, missing keys, depth, size and kind of file.

For every variant pgdoctor must not fail itself (no internal error, no traceback), must report a
broken one (config.yaml or config.patroni fails, or a one-line refusal, exit 3), must not leak a
secret, and must agree with Patroni's own validator: every config that
``patroni --validate-config`` rejects fails, every config it accepts passes, except where
pgdoctor is stricter on purpose (STRICTER, each with its reason).

pgdoctor's side is judged by its own rules alone (no ``patroni --validate-config`` fact), so the
agreement is the schema table's, not a copy of Patroni's answer. Patroni's side runs in one
Python process from the lab's Patroni venv (patroni_validate_batch.py); without that venv the
agreement test is skipped in the fast suite, and fails in the full test command (scripts/test.sh
installs the venv first and sets PGDOCTOR_REQUIRE_PATRONI=1).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from config_mutants import PG_BINARIES, Mutant, base_text, mutants

REPO = Path(__file__).resolve().parents[2]
PATRONI_PY = Path(os.environ.get("PGDOCTOR_LAB_VENV", "/opt/pgdoctor-lab/venv")) / "bin" / "python"
BATCH = Path(__file__).with_name("patroni_validate_batch.py")
SECRETS = ("example-superuser-secret", "example-replication-secret", "hunter2secret")

# What Patroni 4.1's validator accepts among the variants (test_agreement_with_patroni checks this
# list against the real validator; everything else it rejects).
ACCEPTED_BY_PATRONI = {
    "unchanged", "bad-indent-list", "duplicate-key", "crlf-line-ends", "no-final-newline", "truncated-97pct",
    "alias-reuse", "merge-key", "utf8-bom", "utf8-non-ascii-value", "bin-dir-int", "loop-wait-string-number",
    "loop-wait-float", "ttl-timing-rule", "sync-mode-quorum", "sync-mode-on", "dcs-max-connections-string",
    "superuser-username-empty", "namespace-int", "etcd3-url-credentials", "restapi-listen-no-port",
    "postgresql-listen-wildcard", "postgresql-listen-multi", "watchdog-mode-off-bool", "unknown-top-key",
    "date-key", "missing-bootstrap-L14", "missing-dcs-L15", "missing-namespace-L3", "missing-both-passwords",
}
# Where pgdoctor is stricter than Patroni's validator, and why.
STRICTER = {
    "restapi-listen-no-port": "Patroni's REST API cannot start on a listen without a port (its validator assumes 1)",
    "superuser-username-empty": "an empty user name cannot log in; Patroni's validator only asks for a string",
}
# The hostile files: pgdoctor's time on each stays small.
HOSTILE = ("billion-laughs", "billion-laughs-inside-tags", "recursive-alias", "deep-nesting-flow-10000",
           "deep-nesting-block-400", "size-20mb", "dev-zero", "fifo", "directory")
HOSTILE_SECONDS = 5.0


@dataclass
class Judged:
    mutant: Mutant
    path: str
    kind: str  # "ok", "warn", "fail", "refused" or "internal error"
    summary: str
    facts_json: str
    seconds: float


@dataclass
class Corpus:
    judged: dict[str, Judged]
    env: dict[str, str]  # PATH without PostgreSQL programs, for Patroni's side


def _accepting_server() -> tuple[socket.socket, int]:
    """A TCP port on loopback that accepts and closes: the DCS host that 'answers' Patroni's validator."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def _write(m: Mutant, root: Path) -> str:
    if m.special == "fifo":
        os.mkfifo(root / "fifo.yml")
        return str(root / "fifo.yml")
    if m.special == "directory":
        (root / "conf.d").mkdir()
        (root / "conf.d" / "patroni.yml").write_text("scope: x\n")
        return str(root / "conf.d")
    if m.special == "devzero":
        return "/dev/zero"
    path = root / f"{m.name}.yml"
    path.write_bytes(m.data or b"")
    return str(path)


def _judge(m: Mutant, path: str) -> Judged:
    """pgdoctor's verdict on one file: the config loading of every command, then the two config checks."""
    from doctor.collect import CollectOptions
    from doctor.errors import UsageError
    from doctor.facts import Facts
    from doctor.pipeline import analyze, load_config_into
    from doctor.redact import Redactor

    started = time.monotonic()
    facts = Facts({"version": 1})
    try:
        load_config_into(facts, CollectOptions(config_path=path), Redactor())
        report = analyze(facts, only=["config.yaml", "config.patroni"])
        statuses = {f.check: f for f in report.findings}
        failing = [f for f in statuses.values() if f.status in ("fail", "error")]
        warning = [f for f in statuses.values() if f.status == "warn"]
        shown = (failing or warning or list(statuses.values()))[0]
        kind = "fail" if failing else "warn" if warning else "ok"
        if any(f.status == "error" for f in statuses.values()):
            kind = "internal error"
        summary = shown.summary
    except UsageError as exc:
        kind, summary = "refused", str(exc)
    except Exception:
        kind, summary = "internal error", traceback.format_exc()
    return Judged(m, path, kind, summary, facts.to_json(), time.monotonic() - started)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("corpus")
    bin_dir, empty = root / "bin", root / "empty-path"
    bin_dir.mkdir()
    empty.mkdir()
    for name in PG_BINARIES:
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    srv, port = _accepting_server()
    base = base_text(port, str(root / "data"), str(bin_dir))
    judged: dict[str, Judged] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(empty))  # PostgreSQL's programs only where bin_dir says, on any machine
        for name in [k for k in os.environ if k.startswith("PATRONI")]:
            mp.delenv(name)
        for m in mutants(base):
            judged[m.name] = _judge(m, _write(m, root))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONI")}
    env["PATH"] = str(empty)
    yield Corpus(judged, env)
    srv.close()


def test_corpus_covers_every_category(corpus: Corpus) -> None:
    categories = {j.mutant.category for j in corpus.judged.values()}
    assert {"syntax", "truncation", "aliases", "encodings", "types", "missing keys", "depth", "size",
            "kind of file"} <= categories
    assert len(corpus.judged) >= 190, len(corpus.judged)


def test_no_internal_error(corpus: Corpus) -> None:
    crashed = {n: j.summary for n, j in corpus.judged.items() if j.kind == "internal error"}
    assert not crashed, crashed


def test_refusals_are_one_line(corpus: Corpus) -> None:
    for name, j in corpus.judged.items():
        if j.kind == "refused":
            assert "\n" not in j.summary and j.summary.strip(), (name, j.summary)


def test_every_broken_config_is_reported(corpus: Corpus) -> None:
    missed = {n: (j.kind, j.summary[:200]) for n, j in corpus.judged.items()
              if (j.mutant.broken or n not in ACCEPTED_BY_PATRONI) and j.kind not in ("fail", "refused")}
    assert not missed, missed


def test_configs_patroni_accepts_pass(corpus: Corpus) -> None:
    failed = {n: j.summary for n, j in corpus.judged.items()
              if n in ACCEPTED_BY_PATRONI and n not in STRICTER and j.kind not in ("ok", "warn")}
    assert not failed, failed
    for name, why in STRICTER.items():
        assert corpus.judged[name].kind == "fail", (name, why, corpus.judged[name].summary)


def test_the_real_config_is_judged_not_its_redacted_copy(corpus: Corpus) -> None:
    """A password that is a list or a number is no longer one once redacted to a token."""
    for name in ("superuser-password-list", "replication-password-list", "superuser-password-int",
                 "etcd3-password-int", "etcd3-hosts-url-credentials"):
        assert corpus.judged[name].kind == "fail", (name, corpus.judged[name].summary)
    assert "password must be a string (it is a list)" in corpus.judged["superuser-password-list"].summary


def test_no_secret_leaves_the_config_loading(corpus: Corpus) -> None:
    leaks = {n: [s for s in SECRETS if s in j.facts_json + j.summary] for n, j in corpus.judged.items()}
    assert not {n: s for n, s in leaks.items() if s}, leaks


def test_findings_say_where(corpus: Corpus) -> None:
    j = corpus.judged
    assert "offset 137 (line 4, column 8)" in j["latin1-byte-in-value"].summary
    assert "UTF-16" in j["utf16-le-bom"].summary and "UTF-16" in j["utf16-be-no-bom"].summary
    assert "alias bomb" in j["billion-laughs"].summary
    assert "recursive alias" in j["recursive-alias"].summary
    assert "nesting" in j["deep-nesting-flow-10000"].summary
    assert "bootstrap.dcs.ttl must be an integer >= 20 (it is inf)" in j["ttl-inf"].summary
    assert "bootstrap.dcs.loop_wait must be an integer >= 1 (it is 0)" in j["loop-wait-0"].summary
    assert "synchronous_mode must be on, off or quorum (it is 'sometimes')" in j["sync-mode-sometimes"].summary
    assert "etcd3.hosts is an empty list" in j["etcd3-hosts-empty-list"].summary
    assert "postgresql.data_dir must be a string path (it is 123)" in j["data-dir-int"].summary
    for name in ("fifo", "dev-zero", "directory", "size-20mb"):
        assert j[name].kind == "refused", (name, j[name].summary)
    assert "named pipe" in j["fifo"].summary and "character device" in j["dev-zero"].summary
    assert "at most 1 MB" in j["size-20mb"].summary


def test_hostile_files_take_little_time(corpus: Corpus) -> None:
    slow = {n: round(corpus.judged[n].seconds, 2) for n in HOSTILE if corpus.judged[n].seconds > HOSTILE_SECONDS}
    assert not slow, slow


# The refusals, and the two files that used to hang or crash the whole command (the rest is judged
# in-process above, by the same loading and checks).
CLI_CASES = ("fifo", "size-20mb", "billion-laughs", "deep-nesting-flow-10000")


def test_the_cli_on_hostile_configs(corpus: Corpus) -> None:
    """The real command on the worst of them, side by side: exit 0-3, no traceback, a one-line
    refusal or a failing config finding, no secret in the output."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PATRONICTL_CONFIG_FILE", None)
    procs = {name: subprocess.Popen([sys.executable, "-m", "doctor.cli", "run", "-c", corpus.judged[name].path,
                                     "--format", "json", "--no-logs", "--timeout", "5"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/")
             for name in CLI_CASES}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 1, 2, 3), (name, proc.returncode, err)
        assert "Traceback" not in out + err and "internal error" not in err, (name, err)
        assert not [s for s in SECRETS if s in out + err], name
        if proc.returncode == 3:
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1, (name, err)
        else:
            findings = {f["check"]: f for f in json.loads(out)["findings"]}
            assert "fail" in (findings["config.yaml"]["status"], findings["config.patroni"]["status"]), (name, findings)


def _patroni_verdicts(paths: list[str], env: dict[str, str]) -> dict[str, dict]:
    proc = subprocess.run([str(PATRONI_PY), str(BATCH)], input=json.dumps(paths), capture_output=True, text=True,
                          env=env, timeout=600, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {v["path"]: v for v in json.loads(proc.stdout)}


def test_agreement_with_patroni(corpus: Corpus) -> None:
    if not PATRONI_PY.exists():
        reason = (f"Patroni's validator is not installed at {PATRONI_PY} (scripts/install-lab.sh installs it); "
                  "the full test command runs this test")
        if os.environ.get("PGDOCTOR_REQUIRE_PATRONI") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    # Files only, and not those pgdoctor refuses or reports by design (Patroni would walk a bomb forever).
    compared = {j.path: j for j in corpus.judged.values() if j.mutant.special is None and not j.mutant.broken}
    verdicts = _patroni_verdicts(list(compared), corpus.env)
    assert verdicts[corpus.judged["unchanged"].path]["valid"], verdicts[corpus.judged["unchanged"].path]
    accepted = {j.mutant.name for p, j in compared.items() if verdicts[p]["valid"]}
    assert accepted == ACCEPTED_BY_PATRONI & {j.mutant.name for j in compared.values()}, \
        (sorted(accepted - ACCEPTED_BY_PATRONI), sorted(ACCEPTED_BY_PATRONI - accepted))
    disagree = {}
    for path, j in compared.items():
        rejected = not verdicts[path]["valid"]
        reported = j.kind in ("fail", "refused")
        if rejected != reported and j.mutant.name not in STRICTER:
            disagree[j.mutant.name] = (f"Patroni: {verdicts[path]['reason'][:200] or 'valid'}",
                                       f"pgdoctor: {j.kind}: {j.summary[:200]}")
    assert not disagree, disagree


def test_the_pure_python_loader_keeps_the_same_limits(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml the pure loader is used: the same refusals, no RecursionError escaping."""
    import yaml

    from doctor.collect.config import parse_config

    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    for name in ("billion-laughs", "recursive-alias", "deep-nesting-flow-10000", "deep-nesting-flow-150"):
        config, error = parse_config((corpus.judged[name].mutant.data or b"").decode())
        assert config is None and error, name
    assert "alias bomb" in parse_config((corpus.judged["billion-laughs"].mutant.data or b"").decode())[1]["problem"]
    assert "nested more than 100 levels" in parse_config(
        (corpus.judged["deep-nesting-flow-10000"].mutant.data or b"").decode())[1]["problem"]
    assert parse_config((corpus.judged["unchanged"].mutant.data or b"").decode())[0]["name"] == "node1"
