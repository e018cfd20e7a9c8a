"""Read a small file for a bundle without trusting its path.

A path comes from a config that may be wrong or hostile, and ``pgdoctor bundle`` often runs
as root: a FIFO must not hang the bundle, a device must not be read, and where it matters a
symlink must not lead elsewhere. The file opened is the file that was checked.
"""

from __future__ import annotations

import os
import stat


class Refused(Exception):
    """The file may not be read into the bundle; the message says why."""


class Missing(Refused):
    """There is no file at that path."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str, limit: int, follow: bool = True) -> tuple[str, os.stat_result]:
    """A regular file's text (at most ``limit`` bytes) and its status.

    Opened with ``O_NONBLOCK`` (a FIFO cannot block) and, unless ``follow``, ``O_NOFOLLOW`` after an
    ``lstat`` (a symlink is refused, not followed); the opened file must be the one checked.
    """
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        raise Missing("does not exist") from None
    except OSError as exc:
        raise Refused(exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"is {_kind(st.st_mode)}")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise Refused(exc.strerror or str(exc)) from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise Refused("changed while being read")
        if fst.st_size > limit:
            raise Refused(f"is {fst.st_size} bytes, more than the {limit} a file of this kind may have")
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace"), fst
