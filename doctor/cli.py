"""The pgdoctor command line: parse options, call the pipeline, pick a renderer. No logic here."""

from __future__ import annotations

import os
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from doctor import __version__
from doctor.errors import UsageError

app = typer.Typer(
    name="pgdoctor",
    help=(
        "A troubleshooting doctor for PostgreSQL clusters run by Patroni with etcd.\n\n"
        "Run it on a failing node: it tells what is wrong, why, and the exact commands that fix it, "
        "filled in with this node's values.\n\n"
        "Exit codes: 0 healthy, 1 warnings only, 2 at least one failure, 3 pgdoctor could not do its job."
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
)

_STATE: dict[str, Any] = {"debug": False}


class Format(str, Enum):
    text = "text"
    json = "json"
    html = "html"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pgdoctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback when pgdoctor itself fails."),
) -> None:
    _STATE["debug"] = debug


def _split_ids(values: Optional[list[str]]) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _write_output(text: str, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    from doctor.render.console import make_console
    make_console(stderr=True).print(f"wrote {output}")


def emit_report(report_obj: Any, fmt: Format, output: Optional[Path]) -> int:
    """Render a Report in the chosen format to stdout or a file; return its exit code.

    A reader that closes the pipe early (``| head``) does not change the verdict's exit code.
    """
    report = report_obj.as_dict()
    try:
        _render(report_obj, report, fmt, output)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return report["exit_code"]


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _render(report_obj: Any, report: dict, fmt: Format, output: Optional[Path]) -> None:
    if fmt == Format.json:
        from doctor.render.jsonout import render_json
        _write_output(render_json(report), output)
    elif fmt == Format.html:
        try:
            from doctor.render.html import render_html
        except ImportError:
            raise UsageError("the HTML report is not available in this build; use --format text or json") from None
        _write_output(render_html(report, report_obj.facts), output)
    else:
        from doctor.render.console import make_console
        from doctor.render.text import render_report
        if output is not None:
            import io

            from doctor.render.console import make_file_console
            buf = io.StringIO()
            render_report(make_file_console(buf), report)
            _write_output(buf.getvalue(), output)
        else:
            render_report(make_console(), report)


def _progress_status(enabled: bool):
    """A spinner on stderr while collecting, only for a person at a terminal."""
    import contextlib
    if not enabled or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from doctor.render.console import make_console
    return make_console(stderr=True).status("collecting facts…")


ConfigOpt = typer.Option(None, "-c", "--config-file", help="patroni.yml of this node (default: $PATRONICTL_CONFIG_FILE, "
                         "/etc/patroni/patroni.yml, /etc/patroni.yml).", show_default=False)
TimeoutOpt = typer.Option(5.0, "--timeout", min=0.1, help="Seconds one network call or local command may take (member calls and port probes at most 2 s, "
                          "Patroni's own commands up to 10 s). Calls run concurrently; collection stops at 2 x timeout + 2 s "
                          "whatever hangs.")


@app.command()
def run(
    config: Optional[str] = ConfigOpt,
    format: Format = typer.Option(Format.text, "--format", "-f", help="text for people, json for scripts, html for a report file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the report to this file instead of stdout."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only these checks or problem ids (repeat or comma-separate)."),
    skip: Optional[list[str]] = typer.Option(None, "--skip", help="Skip these checks or problem ids."),
    timeout: float = TimeoutOpt,
    since: str = typer.Option("2h", "--since", help="How far back to read logs (e.g. 30m, 2h, 1d)."),
    pg_user: Optional[str] = typer.Option(None, "--pg-user", help="OS user that must own the data dir (default: owner of the PostgreSQL binaries, else postgres)."),
    logs: bool = typer.Option(True, "--logs/--no-logs", help="Read this node's logs for known problems."),
    log_file: Optional[list[str]] = typer.Option(None, "--log-file", help="Also read this log file (repeatable)."),
    max_lag_bytes: Optional[str] = typer.Option(None, "--max-lag-bytes", help="Warn when a replica lags more than this (e.g. 16MB)."),
    max_lag_seconds: Optional[float] = typer.Option(None, "--max-lag-seconds", help="Warn when a replica's replay lags more than this."),
    slot_retained: Optional[str] = typer.Option(None, "--slot-retained-bytes", help="Warn when a slot that is inactive (or unbounded by max_slot_wal_keep_size) retains more WAL than this (default 1GB)."),
    expect_members: Optional[int] = typer.Option(None, "--expect-members", min=1, help="How many members the cluster should have; fewer is a warning (default: the members the DCS still knows of)."),
    playbooks: Optional[list[str]] = typer.Option(None, "--playbooks", help="A directory of your own playbooks (added to the built-in ones)."),
) -> None:
    """Diagnose this node: collect facts, run every check, print diagnoses with filled-in fixes.

    Examples:

      pgdoctor run -c /etc/patroni/patroni.yml

      pgdoctor run --format json | jq -r '.diagnoses[0].id'

      pgdoctor run --format html -o report.html
    """
    from doctor.collect import CollectOptions
    from doctor.engine import load_checks, unknown_ids
    from doctor.pipeline import analyze, collect
    from doctor.units import parse_duration, parse_size

    only_ids, skip_ids = _split_ids(only), _split_ids(skip)
    bad = unknown_ids(load_checks(), only_ids + skip_ids)
    if bad:
        raise UsageError(f"unknown check or problem id: {', '.join(bad)} (see: pgdoctor checks)")
    try:
        parse_duration(since)
        lag_bytes = parse_size(max_lag_bytes) if max_lag_bytes else None
        slot_bytes = parse_size(slot_retained) if slot_retained else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options = CollectOptions(config_path=config, timeout=timeout, since=since, pg_user=pg_user,
                             read_logs=logs, log_files=list(log_file or []), playbook_dirs=list(playbooks or []))
    with _progress_status(format == Format.text):
        facts, _ = collect(options, profile="run")
    settings = {"max_lag_bytes": lag_bytes, "max_lag_seconds": max_lag_seconds, "slot_retained_bytes": slot_bytes,
                "expect_members": expect_members}
    facts.set("settings", {k: v for k, v in settings.items() if v is not None})
    report = analyze(facts, command="run", profiles=("run", "replication"), only=only_ids, skip_ids=skip_ids,
                     playbook_dirs=playbooks)
    if only_ids or skip_ids:
        report.extra["selection"] = {"only": only_ids, "skip": skip_ids}
    raise typer.Exit(emit_report(report, format, output))


@app.command("checks")
def list_checks(
    format: Format = typer.Option(Format.text, "--format", "-f", help="text or json."),
) -> None:
    """List every check: its id, the problem id (playbook) it reports, and its profiles."""
    from doctor.engine import load_checks
    from doctor.playbooks import load_playbooks

    registry = load_checks()
    books = load_playbooks()
    rows = [{"check": c.id, "problem": c.playbook, "title": c.title, "profiles": list(c.profiles), "origin": c.origin,
             "has_playbook": c.playbook in books} for c in sorted(registry.values(), key=lambda c: c.id)]
    if format == Format.json:
        from doctor.render.jsonout import render_json
        sys.stdout.write(render_json({"checks": rows, "playbooks": sorted(books)}))
        return
    from rich.table import Table
    from doctor.render.console import make_console
    table = Table(show_edge=False, box=None)
    for col in ("check", "problem id", "profiles", "what it checks"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["check"], r["problem"], ",".join(r["profiles"]), r["title"])
    console = make_console()
    console.print(table)
    log_only = sorted(set(books) - {r["problem"] for r in rows})
    if log_only:
        console.print(f"\nProblems recognised from logs only: {', '.join(log_only)}")


@app.command()
def explain(
    problem_id: str = typer.Argument(..., help="A problem id, e.g. datadir-permissions (see: pgdoctor checks)."),
    config: Optional[str] = typer.Option(None, "-c", "--config-file", help="Fill the fix with this node's values."),
) -> None:
    """Show a playbook: symptoms, cause, fix and how to verify, for one problem id."""
    from doctor.model.node import NodeView
    from doctor.playbooks import load_playbooks
    from doctor.render.console import make_console

    books = load_playbooks()
    book = books.get(problem_id)
    if book is None:
        import difflib
        close = difflib.get_close_matches(problem_id, list(books), n=3)
        raise UsageError(f"no playbook '{problem_id}'" + (f"; did you mean {', '.join(close)}?" if close else "")
                         + " (pgdoctor checks lists them)")
    values = NodeView().template_values()
    if config:
        from doctor.collect.config import parse_config, read_config_text
        data, _ = parse_config(read_config_text(config))
        values = NodeView(data or {}, os.path.realpath(config)).template_values()
    console = make_console()
    from rich.markdown import Markdown
    console.print(f"[bold]{book.title}[/]  [dim]\\[{book.id}, severity {book.severity}][/]")
    for name in ("symptoms", "cause", "fix", "verify"):
        text = book.render(name, values)
        if text:
            console.print(Markdown(f"## {name.capitalize()}\n\n{text}"))


def _mount_subcommands() -> None:
    """Attach command groups that live in their own modules, when present."""
    import importlib
    for module, name in (("doctor.lab.cli", "lab"),):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        app.add_typer(mod.app, name=name)
    for module in ("doctor.commands",):
        try:
            importlib.import_module(module)
        except ImportError:
            continue


def _cli_error_types() -> tuple[type[BaseException], ...]:
    """Usage errors as raised by typer's parser (it vendors click in recent releases)."""
    types: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        types.append(typer.TyperException)
    try:
        import click
        types.append(click.ClickException)
    except ImportError:
        pass
    return tuple(types)


def main() -> None:
    """Entry point: map every failure to one line and exit code 3, as the design promises."""
    _mount_subcommands()
    from doctor.facts import FactsVersionError
    from doctor.render.plain import clean  # an error may quote a path or a bundle member: shown, not obeyed
    debug = "--debug" in sys.argv
    try:
        rv = app(standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("pgdoctor: interrupted\n")
        sys.exit(3)
    except (UsageError, FactsVersionError) as exc:
        sys.stderr.write(f"pgdoctor: {clean(exc)}\n")
        sys.exit(3)
    except _cli_error_types() as exc:
        msg = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        sys.stderr.write(f"pgdoctor: {clean(msg)}{clean(hint)}\n")
        sys.exit(3)
    except KeyboardInterrupt:
        sys.stderr.write("pgdoctor: interrupted\n")
        sys.exit(3)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)
    except Exception as exc:  # never a traceback unless asked for
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"pgdoctor: internal error: {type(exc).__name__}: {clean(exc)} (rerun with --debug for details)\n")
        sys.exit(3)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    # Under `python -m doctor.cli` this file is __main__; command modules register on the
    # imported doctor.cli app, so run that one.
    from doctor.cli import main as _main

    _main()
