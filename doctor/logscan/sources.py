"""Where log text comes from: files (plain, .gz, rotated), pipes and FIFOs, stdin, and the systemd journal.

Every source is read as a stream of blocks made of whole lines, with bounded memory:
a line longer than ``LINE_CAP`` is cut (the rest of it is skipped) and the reader goes
on. Whatever goes wrong — a missing or unreadable file, a truncated gzip, a journal that
does not exist — becomes a note on the source, never an exception for the caller.

Only regular files, pipes (``<(…)``, FIFOs, stdin) and terminals are read: a device
(``/dev/urandom``, ``/dev/zero``) is refused, since it never ends and is no log. Pipes are
read under the command's deadline (``doctor.logscan.deadline``): a FIFO without a writer,
or a writer that stalls, stops the source at the deadline instead of blocking forever;
the source then says it was ``stopped`` and why.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import gzip
import io
import os
import select
import shutil
import stat
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from doctor.logscan.deadline import DeadlineReached, passed, time_left

BLOCK_SIZE = 8 * 1024 * 1024
LINE_CAP = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
MAX_UNPARSED_REASONS = 8  # distinct reasons kept per source; further ones are counted as "other"
STOPPED_AT_DEADLINE = "the time limit was reached; the rest of this source was not read"


class NotALogFile(OSError):
    """A path that is no regular file or pipe (a device, a socket): refused before it is opened."""


@dataclass
class SourceStats:
    """What reading a source gave: the facts entry for it."""

    label: str
    kind: str | None = None
    path: str | None = None
    unit: str | None = None
    lines: int = 0
    bytes: int = 0
    read: bool = False
    long_lines: int = 0
    nul_bytes: int = 0
    invalid_utf8: bool = False
    stopped: str | None = None  # why reading ended before the end of the source
    unparsed: dict[str, int] = field(default_factory=dict)  # reason -> lines skipped for it
    notes: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def stop(self, reason: str) -> None:
        """Record that this source was not read to its end (the first reason is kept)."""
        if self.stopped is None:
            self.stopped = reason

    def skip_line(self, reason: str) -> None:
        """Count one line that could not be parsed and was skipped; the source goes on."""
        if reason not in self.unparsed and len(self.unparsed) >= MAX_UNPARSED_REASONS:
            reason = "other"
        self.unparsed[reason] = self.unparsed.get(reason, 0) + 1

    def as_dict(self) -> dict:
        d: dict = {"label": self.label, "kind": self.kind, "lines": self.lines, "bytes": self.bytes,
                   "read": self.read, "complete": self.read and self.stopped is None}
        if self.path:
            d["path"] = self.path
        if self.unit:
            d["unit"] = self.unit
        if self.stopped:
            d["stopped"] = self.stopped
        if self.unparsed:
            d["unparsed_lines"] = sum(self.unparsed.values())
        notes = [f"stopped early: {self.stopped}"] if self.stopped else []
        if self.unparsed:
            n = sum(self.unparsed.values())
            why = ", ".join(f"{reason} ({count})" for reason, count in self.unparsed.items())
            notes.append(f"{n} line{'s' if n != 1 else ''} could not be parsed and {'were' if n != 1 else 'was'} "
                         f"skipped: {why}")
        notes += self.notes
        if self.long_lines:
            notes.append(f"{self.long_lines} line(s) longer than {LINE_CAP // 1024} KiB were cut to that length")
        if self.nul_bytes:
            notes.append(f"{self.nul_bytes} NUL byte(s) ignored")
        if self.invalid_utf8:
            notes.append("invalid UTF-8 replaced")
        if notes:
            d["notes"] = notes
        if self.errors:
            d["errors"] = self.errors
        return d


class Source:
    """A readable log: ``open()`` returns a binary stream or raises OSError.

    ``deadline`` (monotonic seconds) bounds every blocking read of a pipe: past it a read
    raises ``DeadlineReached`` instead of waiting.
    """

    label = "log"
    kind: str | None = None
    path: str | None = None
    unit: str | None = None

    def open(self, stats: SourceStats, deadline: float | None = None) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        return None

    def stats(self) -> SourceStats:
        return SourceStats(label=self.label, kind=self.kind, path=self.path, unit=self.unit)

    def size_hint(self) -> int:
        """How many bytes reading may bring, when known without reading (0: unknown, or none)."""
        return 0


class FileSource(Source):
    """A log file; gzip is recognised by its magic bytes, so ``x.log.2.gz`` and ``x.gz`` both work.

    ``tail_bytes`` bounds how much of a huge plain file is read: only its end, the recent part.
    """

    def __init__(self, path: str, kind: str | None = None, tail_bytes: int | None = None) -> None:
        self.path = path
        self.label = path
        self.kind = kind
        self.tail_bytes = tail_bytes
        self._fh: IO[bytes] | None = None

    def open(self, stats: SourceStats, deadline: float | None = None) -> IO[bytes]:
        mode = os.stat(self.path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "is a directory", self.path)
        if stat.S_ISFIFO(mode):  # a named pipe, or <(…) as /dev/fd/N
            # O_NONBLOCK: opening a FIFO that has no writer would block right here, before any deadline
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            stream = open_pipe(fd, deadline)
            self._fh = stream
            return _gunzip_if_compressed(stream)
        refuse_non_file(mode, self.path)
        fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        head = fh.read(2)
        fh.seek(0)
        if head == GZIP_MAGIC:
            self._fh = fh
            return gzip.GzipFile(fileobj=fh, mode="rb")
        if self.tail_bytes:
            size = os.fstat(fh.fileno()).st_size
            if size > self.tail_bytes:
                fh.seek(size - self.tail_bytes)
                fh.readline()  # start on a whole line
                stats.notes.append(f"only the last {self.tail_bytes // (1024 * 1024)} MiB of "
                                   f"{size // (1024 * 1024)} MiB read")
        self._fh = fh
        return fh

    def size_hint(self) -> int:
        try:  # stat, not open: opening a FIFO without a writer would block
            st = os.stat(self.path)
        except OSError:
            return 0
        if not stat.S_ISREG(st.st_mode):
            return 0
        return min(st.st_size, self.tail_bytes) if self.tail_bytes else st.st_size

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class StdinSource(Source):
    label = "<stdin>"

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self._stream = stream

    def open(self, stats: SourceStats, deadline: float | None = None) -> IO[bytes]:
        stream = self._stream if self._stream is not None else _stdin_stream(deadline)
        return _gunzip_if_compressed(stream)


def _stdin_stream(deadline: float | None) -> IO[bytes]:
    """Standard input as a byte stream: a pipe or terminal read under the deadline, a device refused."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return sys.stdin.buffer  # replaced by a test harness, or closed: read what it gives
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd):
        return open_pipe(fd, deadline, close_fd=False)
    refuse_non_file(mode, "standard input")
    return sys.stdin.buffer


def _gunzip_if_compressed(stream: IO[bytes]) -> IO[bytes]:
    head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


def refuse_non_file(mode: int, what: str) -> None:
    """Raise ``NotALogFile`` for a device or socket: reading /dev/urandom or /dev/zero never ends."""
    if stat.S_ISREG(mode):
        return
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "character device" if stat.S_ISCHR(mode) else "block device"
    elif stat.S_ISSOCK(mode):
        kind = "socket"
    else:
        kind = "special file"
    raise NotALogFile(errno.EINVAL, f"is a {kind}, not a log file (give a file, a pipe or - for stdin)", what)


class PipeStream(io.RawIOBase):
    """A pipe, FIFO or terminal read with ``poll``: no read waits past the deadline."""

    def __init__(self, fd: int, deadline: float | None, close_fd: bool = True) -> None:
        super().__init__()
        self._fd, self._deadline, self._close_fd = fd, deadline, close_fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLPRI)

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buf) -> int:  # type: ignore[override]
        while True:
            left = time_left(self._deadline)
            # A FIFO opened without a writer reports nothing (not even EOF) until one comes: wait for
            # data, EOF or the deadline, whichever is first.
            ready = self._poll.poll(None if left is None else int(min(left, 3600.0) * 1000) + 1)
            if not ready:
                if passed(self._deadline):
                    raise DeadlineReached()
                continue
            try:
                data = os.read(self._fd, len(buf))
            except BlockingIOError:
                continue
            buf[:len(data)] = data
            return len(data)

    def close(self) -> None:
        if not self.closed and self._close_fd:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        super().close()


def open_pipe(fd: int, deadline: float | None, close_fd: bool = True) -> io.BufferedReader:
    return io.BufferedReader(PipeStream(fd, deadline, close_fd), buffer_size=1024 * 1024)


class JournalSource(Source):
    """``journalctl -u UNIT -o json`` between since and until, killed at the deadline."""

    def __init__(self, unit: str, since: float | None = None, until: float | None = None,
                 timeout: float = 10.0, journalctl: str | None = None) -> None:
        self.unit = unit
        self.label = f"journal:{unit}"
        from doctor.logscan.parse import ident_kind
        self.kind = ident_kind(unit)
        self.since, self.until, self.timeout = since, until, timeout
        self.journalctl = journalctl or shutil.which("journalctl")
        self._proc: subprocess.Popen[bytes] | None = None
        self._timer: threading.Timer | None = None

    def argv(self) -> list[str]:
        argv = [self.journalctl or "journalctl", "-u", self.unit, "-o", "json", "--no-pager", "-q"]
        if self.since is not None:
            argv += ["--since", _journal_time(self.since)]
        if self.until is not None:
            argv += ["--until", _journal_time(self.until)]
        return argv

    def open(self, stats: SourceStats, deadline: float | None = None) -> IO[bytes]:
        if not self.journalctl:
            raise FileNotFoundError(2, "journalctl is not installed", "journalctl")
        self._proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL)
        left = time_left(deadline)
        wait = self.timeout if left is None else min(self.timeout, left)
        self._timer = threading.Timer(wait, self._kill, args=(stats, wait))
        self._timer.daemon = True
        self._timer.start()
        assert self._proc.stdout is not None
        return self._proc.stdout

    def _kill(self, stats: SourceStats, wait: float) -> None:
        if self._proc and self._proc.poll() is None:
            stats.stop(f"journalctl stopped after {wait:.0f}s; later entries not read")
            self._proc.kill()

    def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._proc is not None:
            try:
                _, err = self._proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                err = b""
            self.stderr = (err or b"").decode("utf-8", "replace").strip()
            self.returncode = self._proc.returncode


def _journal_time(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def read_blocks(stream: IO[bytes], stats: SourceStats, block_size: int = BLOCK_SIZE,
                line_cap: int = LINE_CAP, deadline: float | None = None) -> Iterator[bytes]:
    """Yield blocks of whole lines (each ending in ``\\n``), no line longer than ``line_cap``.

    Memory stays within about ``block_size + line_cap`` whatever the input. Past ``deadline`` no
    further block is read and the source is marked stopped.
    """
    carry = b""
    skipping = False  # inside an over-long line: drop bytes until its newline
    failed = False
    while not failed:
        if passed(deadline):
            stats.stop(STOPPED_AT_DEADLINE)
            break
        try:
            data, failed = _read_some(stream, block_size, stats)
        except DeadlineReached:
            stats.stop(STOPPED_AT_DEADLINE)
            break
        if not data:
            break
        stats.bytes += len(data)
        if skipping:
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data = data[nl + 1:]
            skipping = False
        buf = carry + data if carry else data
        del data  # at most a block and its copy at once: memory stays bounded by the block size
        last_nl = buf.rfind(b"\n")
        if last_nl < 0:
            carry = buf
        else:
            block, carry = buf[:last_nl + 1], buf[last_nl + 1:]
            del buf
            yield block
            del block
        if len(carry) > line_cap:
            stats.long_lines += 1
            yield carry[:line_cap] + b"\n"
            carry = b""
            skipping = True
    if carry:
        yield carry + b"\n"


def _read_some(stream: IO[bytes], size: int, stats: SourceStats) -> tuple[bytes, bool]:
    """Up to ``size`` bytes; on a damaged stream, the bytes read before the damage and True."""
    read1 = getattr(stream, "read1", None)
    if read1 is None:
        parts = [stream.read(size)]
    else:
        parts, got = [], 0
        try:
            while got < size:
                chunk = read1(size - got)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
        except DeadlineReached:
            if not parts:
                raise
            stats.stop(STOPPED_AT_DEADLINE)  # keep what came; the caller stops after this block
            return b"".join(parts), True
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            stats.notes.append(f"compressed data ends early or is damaged ({exc}); read what came before")
            return b"".join(parts), True
        except OSError as exc:
            stats.stop(f"read error: {exc.strerror or exc}; read what came before")
            return b"".join(parts), True
    return b"".join(parts), False


def open_error_note(exc: BaseException, what: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{what}: does not exist"
    if isinstance(exc, PermissionError):
        return f"{what}: not readable by this user (run pgdoctor as root or as the postgres user)"
    if isinstance(exc, IsADirectoryError):
        return f"{what}: is a directory"
    if isinstance(exc, NotALogFile):
        return f"{what}: {exc.strerror}"
    if isinstance(exc, OSError):
        return f"{what}: cannot be read: {exc.strerror or exc}"
    return f"{what}: cannot be read: {exc}"


def as_stream(data: bytes) -> IO[bytes]:
    """A bytes object as a readable stream (tests, stdin replacements)."""
    return io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]
