"""One place that decides colour and width, honouring NO_COLOR and non-terminals.

Every string printed goes through ``plain.clean`` first (``render_str``), so no escape
sequence from collected text reaches the terminal even where a renderer forgot to escape
it; renderers still escape collected text themselves (``plain.escape``) so that it is not
read as rich markup. Emoji codes (``:warning:``) are not expanded either.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from doctor.render.plain import clean


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """A reader closed the pipe (``| head``): stop writing, and let the caller keep its exit code
        (rich's default exits with 1, which would read as "warnings only")."""
        self.quiet = True
        raise BrokenPipeError

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Strings become Text only after their control characters are made harmless."""
        return super().render_str(clean(text), **kwargs)


def make_console(stderr: bool = False, force_color: bool | None = None) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    no_color = bool(os.environ.get("NO_COLOR")) if force_color is None else not force_color
    is_tty = stream.isatty()
    return _Console(
        file=stream,
        no_color=no_color,
        color_system=None if no_color else "auto",
        highlight=False,
        emoji=False,
        soft_wrap=not is_tty,  # piped output keeps long commands on one line, ready to copy
        width=None if is_tty else 200,
    )


def make_file_console(file: IO[str]) -> Console:
    """A console that writes a text report into a file: no colour, wide, long lines kept whole."""
    return _Console(file=file, no_color=True, color_system=None, highlight=False, emoji=False, width=200,
                    soft_wrap=True)
