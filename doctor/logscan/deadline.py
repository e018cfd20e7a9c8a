"""One end time for a whole command (``--deadline``): readers stop there and say what they did not read.

A deadline is a ``time.monotonic()`` value, or None for no limit. It is a plain float so that
any layer (a log source, the scanner, the bundle reader) can take it as a parameter.
"""

from __future__ import annotations

import time

DEFAULT_DEADLINE = 600.0
DEADLINE_HELP = ("Stop reading after this many seconds for the whole command, and say what was not read "
                 "(default 600).")


class DeadlineReached(Exception):
    """Raised by a blocking read (a pipe, a FIFO) that would wait past the deadline."""


def deadline_after(seconds: float | None) -> float | None:
    """The monotonic end time ``seconds`` from now; None (no limit) for None or a value <= 0."""
    if seconds is None or seconds <= 0:
        return None
    return time.monotonic() + seconds


def time_left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (never negative); None without a deadline."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
