"""The pgdoctor command line: the typer app, every command registered explicitly, and ``main``.

The commands live in ``doctor.commands`` (one module each); each parses its options and goes
through the pipeline (``doctor.pipeline``) and the emitter (``doctor.render.emit``). A command
module that fails to import fails the whole program loudly rather than vanishing from it.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer

from doctor import __version__
from doctor.commands import bundle, catalog, logs, preflight, replication, run
from doctor.errors import UsageError
from doctor.lab.cli import app as lab_app
from doctor.render.emit import silence_stdout

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


# Every command, in the order ``--help`` lists them.
app.command("run")(run.run)
app.command("checks")(catalog.list_checks)
app.command("explain")(catalog.explain)
app.command("logs")(logs.logs_command)
app.command("replication")(replication.replication)
app.command("preflight")(preflight.preflight)
app.command("bundle")(bundle.bundle)
app.command("analyze")(bundle.analyze)
app.add_typer(lab_app, name="lab")


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
        silence_stdout()
        sys.exit(0)
    except Exception as exc:  # never a traceback unless asked for
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"pgdoctor: internal error: {type(exc).__name__}: {clean(exc)} (rerun with --debug for details)\n")
        sys.exit(3)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
