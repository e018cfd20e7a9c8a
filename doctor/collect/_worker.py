"""A forked worker process for the collectors that talk to PostgreSQL.

Why a process: a run is bound by one core's worth of Python (the GIL), and importing psycopg alone costs
about 130 ms of it — a quarter of a healthy run. Forked before any thread starts, the worker imports the
driver and queries PostgreSQL on the machine's other core while this process imports the HTTP client and
reads the DCS and the REST APIs. Nothing else changes for a collector: it gets the same context (fork
copies it), its ``after`` results arrive from this process through a pipe, and its result (or error
record) comes back the same way, to be redacted here like every other domain.

The worker is used only where forking is safe: POSIX, one thread alive (forking a threaded process can
copy a held lock), and ``PGDOCTOR_NO_FORK`` unset. Otherwise those collectors run as threads here, as
all collectors did before. The worker never writes to stdout or stderr and leaves with ``os._exit``.
A worker that dies or hangs costs its domains an error record, never the run: this process stops
waiting at the deadline and kills it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import IO, Any

Message = tuple[str, Any, float]  # (domain, facts or error record, seconds it took)


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1 and not os.environ.get("PGDOCTOR_NO_FORK")


class Worker:
    """The parent's side: start the child, feed it upstream results, hand its results to ``deliver``."""

    def __init__(self, domains: list[str], needs: set[str]) -> None:
        self.domains, self.needs = domains, needs
        self.pid = 0
        self._to_child: IO[bytes] | None = None
        self._from_child: IO[bytes] | None = None
        self._send_lock = threading.Lock()
        self._stopped = False

    def start(self, child_main: Callable[[Callable[[str], Message | None], Callable[[Message], None]], None]) -> bool:
        """Fork; the child runs ``child_main(receive, send)`` and exits. False when the fork failed."""
        up_r, up_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (up_r, up_w, res_r, res_w):
                os.close(fd)
            return False
        if pid == 0:  # the child
            code = 0
            try:
                os.close(up_w)
                os.close(res_r)
                _child(child_main, os.fdopen(up_r, "rb"), os.fdopen(res_w, "wb"))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(up_r)
        os.close(res_w)
        self.pid = pid
        self._to_child = os.fdopen(up_w, "wb")
        self._from_child = os.fdopen(res_r, "rb")
        return True

    def send(self, domain: str, value: Any, seconds: float) -> None:
        """Hand a result the child's collectors wait for (``after``); a child that is gone is ignored."""
        if domain not in self.needs or self._to_child is None:
            return
        with self._send_lock, contextlib.suppress(OSError, ValueError, pickle.PicklingError):
            pickle.dump((domain, value, seconds), self._to_child, protocol=pickle.HIGHEST_PROTOCOL)
            self._to_child.flush()

    def receive_all(self, deliver: Callable[[str, Any, float], None]) -> None:
        """Deliver the child's results as they come (run in a thread); at the end of the stream, an error
        record for every domain the child did not answer."""
        answered: set[str] = set()
        stream = self._from_child
        try:
            while stream is not None:
                domain, value, seconds = pickle.load(stream)
                answered.add(domain)
                deliver(domain, value, seconds)
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError):
            pass
        for domain in self.domains:
            if domain not in answered and not self._stopped:  # stopped at the deadline: the runner says so
                deliver(domain, {"error": {"kind": "worker-failed", "message": f"collector '{domain}' ran in a "
                                           "worker process that ended without its result"}}, 0.0)

    def stop(self) -> None:
        """Close the pipes, kill the child if it is still running, and reap it."""
        self._stopped = True
        for stream in (self._to_child, self._from_child):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.pid = 0


def _child(child_main: Callable[..., None], up: IO[bytes], out: IO[bytes]) -> None:
    lock = threading.Lock()

    def receive(_: str) -> Message | None:
        try:
            msg = pickle.load(up)
        except (EOFError, OSError, pickle.UnpicklingError):
            return None
        return msg if isinstance(msg, tuple) and len(msg) == 3 else None

    def send(msg: Message) -> None:
        with lock:
            try:
                data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                data = pickle.dumps((msg[0], {"error": {"kind": "internal", "message": f"unpicklable result: {exc}"}},
                                     msg[2]))
            out.write(data)
            out.flush()

    with contextlib.suppress(BrokenPipeError):
        child_main(receive, send)
