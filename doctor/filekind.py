"""Refuse paths that are not files before opening them.

Opening a FIFO blocks until someone writes to it, reading /dev/zero never ends, and a
socket cannot be read at all: a path a person gives pgdoctor (a config, a bundle, a log
file) must be a regular file, checked with ``stat`` before any ``open``.
"""

from __future__ import annotations

import os
import stat

from doctor.errors import UsageError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file mode says the path is, in words ("a regular file", "a named pipe (FIFO)", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def refuse_special(path: str, what: str, allow_dir: bool = False) -> os.stat_result | None:
    """Raise UsageError when ``path`` exists and is neither a regular file nor (if allowed) a directory.

    Returns the stat result, or None when the path does not exist (the caller says what that means).
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISREG(st.st_mode) or (allow_dir and stat.S_ISDIR(st.st_mode)):
        return st
    wanted = "a regular file or a directory" if allow_dir else "a regular file"
    raise UsageError(f"{what} {path} is {kind_of(st.st_mode)}, not {wanted}; pgdoctor does not read from it")
