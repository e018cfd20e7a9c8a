"""Collected text reaches the terminal as text: no escape sequence, control character or rich markup
in a log line acts on the terminal, while pgdoctor's own colours still work."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.table import Table
from test_bundle import cli

from doctor.render.console import make_file_console
from doctor.render.plain import clean, escape

CLEAR = "\x1b[2J"
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\"
C1_CSI = "\u009b31m"
BEL = "\x07"
MARKUP = "[bold red]x[/]"
HOSTILE = f"before {CLEAR}cleared {OSC8} c1 {C1_CSI}red bell{BEL} {MARKUP} after"
# Every raw byte that would act on a terminal: ESC, the C1 CSI in UTF-8, BEL.
RAW = ("\x1b[2J", "\x1b]8", "\x1b\\", "\u009b", "\x07")


@pytest.mark.parametrize("raw,shown", [
    (CLEAR + "x", "x"),
    ("a\x1b[1;31mred\x1b[0mb", "aredb"),
    (OSC8, "click here"),
    ("\x1b]52;c;ZXZpbA==\x07rest", "rest"),  # OSC 52 writes the clipboard
    ("\x1bP1$r0m\x1b\\after", "after"),  # DCS
    ("x\u009b2Jy", "xy"),  # 8-bit CSI
    ("\x1b]0;title without end", ""),  # an unterminated string eats to the end, as a terminal would
    ("\x1bcreset", "reset"),  # RIS
    ("bell\x07 back\x08 cr\rlf\r\n", "bell\\a back\\b cr\\rlf\n"),
    ("nul\x00 del\x7f c1\u0085", "nul\\0 del\\x7f c1\\x85"),
    ("abc\u202edef", "abc\\u202edef"),  # a bidi override would show the text reversed
    ("tab\tnew\nline ünïcode ✓ —", "tab\tnew\nline ünïcode ✓ —"),
])
def test_clean_strips_sequences_and_shows_other_controls(raw, shown):
    assert clean(raw) == shown


def test_escape_cleans_before_escaping_markup():
    # A stripped sequence must not join "[" and "bold]" into markup after escaping.
    assert escape("[\x1b[0mbold]x") == "\\[bold]x"
    assert escape(MARKUP) == "\\[bold red]x\\[/]"


def _render(text: str) -> str:
    buf = io.StringIO()
    console = make_file_console(buf)
    console.print(f"[bold]own[/] {escape(text)}")
    table = Table(title=text)  # a renderer that forgot to clean: the console still does
    table.add_column("c")
    table.add_row(text)
    console.print(table)
    return buf.getvalue()


def test_the_console_cleans_what_a_renderer_forgot():
    out = _render(HOSTILE)
    for raw in RAW:
        assert raw not in out, repr(raw)
    assert MARKUP in out and "cleared click here c1 red bell\\a" in out


@pytest.fixture(scope="module")
def hostile_log(tmp_path_factory):
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path_factory.mktemp("esc") / "patroni.log"
    path.write_text(f"{now},307 INFO: promoted self to leader by acquiring session lock {HOSTILE}\n"
                    f'{now},900 ERROR: FATAL:  password authentication failed for user "replicator" {HOSTILE}\n',
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("colour", [True, False])
def test_logs_text_output_carries_no_terminal_control(hostile_log, colour):
    env = {"TERM": "xterm-256color", "COLUMNS": "200"}
    env.update({"FORCE_COLOR": "1", "NO_COLOR": ""} if colour else {"NO_COLOR": "1", "FORCE_COLOR": ""})
    proc = cli("logs", str(hostile_log), env=env)
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout
    assert "promotion" in out and "replication-auth-failed" in out, out  # the hostile lines were shown
    for raw in RAW:
        assert raw not in out, f"{raw!r} reached the terminal"
    assert MARKUP in out  # shown as written, not as bold red
    assert "click here" in out and "red bell\\a" in out
    escapes = re.findall(r"\x1b\[[0-9;]*[A-Za-z]", out)
    if colour:  # pgdoctor's own styles are there, and nothing but styles (SGR)
        assert "\x1b[1;31m" in out or "\x1b[31m" in out
        assert escapes and all(e.endswith("m") for e in escapes), set(escapes)
    else:
        assert "\x1b" not in out
