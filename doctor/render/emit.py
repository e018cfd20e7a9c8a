"""The one way a report leaves pgdoctor: text, JSON or HTML, to stdout or a file.

Every command that reports ends in ``emit_report``; the bundle writes its report files with
``render_document``. A reader that closes the pipe early (``| head``) does not change the
verdict's exit code.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doctor.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console  # rich is imported only by the text and HTML renderers

    from doctor.facts import Facts
    from doctor.pipeline import Report


def text_renderer(command: str) -> Callable[[Console, dict[str, Any]], None]:
    """The terminal layout of a command: preflight's checklist, the logs summary, or the full report."""
    if command == "preflight":
        from doctor.render.checklist import render_checklist
        return render_checklist
    if command == "verify":
        from doctor.render.verify import render_verify
        return render_verify
    if command == "logs":
        from doctor.render.logs import render_logs_text
        return render_logs_text
    from doctor.render.text import render_report
    return render_report


def render_document(report: dict[str, Any], facts: Facts, fmt: str) -> str:
    """The report as one document: JSON, the HTML page, or the text report without colour."""
    if fmt == "json":
        from doctor.render.jsonout import render_json
        return render_json(report)
    if fmt == "prometheus":
        from doctor.render.prometheus import render_prometheus
        return render_prometheus(report, facts)
    if fmt == "html":
        from doctor.render.html import render_html
        return render_html(report, facts)
    buf = io.StringIO()
    from doctor.render.console import make_file_console
    text_renderer(str(report.get("command")))(make_file_console(buf), report)
    return buf.getvalue()


def emit_report(report_obj: Report, fmt: str, output: Path | None) -> int:
    """Render a Report in the chosen format to stdout or a file; return its exit code."""
    fmt = getattr(fmt, "value", fmt)  # the CLI's Format enum or its plain value
    report = report_obj.as_dict()
    try:
        if output is None and fmt == "text":
            from doctor.render.console import make_console
            text_renderer(report_obj.command)(make_console(), report)
        else:
            write_output(render_document(report, report_obj.facts, fmt), output, atomic=fmt == "prometheus")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    return report["exit_code"]


def write_output(text: str, output: Path | None, atomic: bool = False) -> None:
    """To stdout, or to ``output`` with one line on stderr saying where. ``atomic``: written beside it
    and renamed over it, so a reader (node_exporter's textfile collector) never sees half a file."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        if atomic:
            tmp = Path(output).with_name(f".{Path(output).name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, output)
        else:
            Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    from doctor.render.console import make_console
    make_console(stderr=True).print(f"wrote {output}")


def silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
