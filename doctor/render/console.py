"""One place that decides colour and width, honouring NO_COLOR and non-terminals."""

from __future__ import annotations

import os
import sys

from rich.console import Console


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """A reader closed the pipe (``| head``): stop writing, and let the caller keep its exit code
        (rich's default exits with 1, which would read as "warnings only")."""
        self.quiet = True
        raise BrokenPipeError


def make_console(stderr: bool = False, force_color: bool | None = None) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    no_color = bool(os.environ.get("NO_COLOR")) if force_color is None else not force_color
    is_tty = stream.isatty()
    return _Console(
        file=stream,
        no_color=no_color,
        color_system=None if no_color else "auto",
        highlight=False,
        soft_wrap=not is_tty,  # piped output keeps long commands on one line, ready to copy
        width=None if is_tty else 200,
    )
