"""A forked worker process for the collectors that talk to PostgreSQL.

Why a process: a run is bound by one core's worth of Python (the GIL), and importing psycopg alone costs
about 130 ms of it — a quarter of a healthy run. Forked before any thread starts and before the collector
modules are imported, the worker imports them and the driver and queries PostgreSQL on the machine's
other core while this process imports the HTTP client and reads the DCS and the REST APIs. Nothing else
changes for a collector: it gets the same context (fork copies it), its ``after`` results arrive from this
process through a pipe, and its result (or error record) comes back the same way, to be redacted here
like every other domain.

The worker is used only where forking is safe: POSIX, one thread alive (forking a threaded process can
copy a held lock), and ``PGDOCTOR_NO_FORK`` unset. Otherwise those collectors run as threads here, as
all collectors did before. The worker never writes to stdout or stderr and leaves with ``os._exit``.
A worker that dies costs its domains an error record, never the run; one that hangs is killed when
this process stops waiting, at the deadline.

Messages are pickles written whole with ``os.write`` (no buffered writer whose lock a blocked write could
hold while another thread closes it); both ends are this program, forked from this process.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any

Message = tuple[str, Any, float]  # (domain, facts or error record, seconds it took)
ChildMain = Callable[[Callable[[], "Message | None"], Callable[[Message], None]], None]


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1 and not os.environ.get("PGDOCTOR_NO_FORK")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Worker:
    """The parent's side: start the child, feed it upstream results, hand its results to a callback."""

    def __init__(self) -> None:
        self.pid = 0
        self.domains: list[str] = []  # what the child answers, once this process knows its plan
        self.needs: set[str] = set()  # the results of this process the child waits for
        self._to_child = -1
        self._from_child = -1
        self._send_lock = threading.Lock()
        self._stopped = False

    def start(self, child_main: ChildMain) -> bool:
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
                _child(child_main, up_r, res_w)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(up_r)
        os.close(res_w)
        self.pid, self._to_child, self._from_child = pid, up_w, res_r
        return True

    def expect(self, domains: list[str], needs: set[str]) -> None:
        self.domains, self.needs = list(domains), set(needs)

    def send(self, domain: str, value: Any, seconds: float) -> None:
        """Hand the child a result its collectors wait for (``after``); a child that is gone is ignored."""
        if domain not in self.needs or self._stopped:
            return
        with self._send_lock, contextlib.suppress(OSError, pickle.PicklingError, TypeError, AttributeError):
            _write_all(self._to_child, pickle.dumps((domain, value, seconds), protocol=pickle.HIGHEST_PROTOCOL))

    def receive_all(self, deliver: Callable[[str, Any, float], None]) -> None:
        """Deliver the child's results as they come (run in a thread); at the end of the stream, an error
        record for every domain the child did not answer."""
        answered: set[str] = set()
        # a copy of the descriptor: stop() may close ours while this thread still reads
        with contextlib.suppress(EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError), \
                os.fdopen(os.dup(self._from_child), "rb") as stream:
            while True:
                domain, value, seconds = pickle.load(stream)
                answered.add(domain)
                deliver(domain, value, seconds)
        for domain in self.domains:
            if domain not in answered and not self._stopped:  # stopped at the deadline: the runner says so
                deliver(domain, {"error": {"kind": "worker-failed", "message": f"collector '{domain}' ran in a "
                                           "worker process that ended without its result"}}, 0.0)

    def stop(self) -> None:
        """Kill the child if it is still running, reap it, then close the pipes (a send blocked on a full
        pipe fails once its reader is gone)."""
        self._stopped = True
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.pid = 0
        with self._send_lock:
            for fd in (self._to_child, self._from_child):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._to_child = self._from_child = -1


def _child(child_main: ChildMain, up: int, out: int) -> None:
    lock = threading.Lock()
    stream = os.fdopen(up, "rb")

    def receive() -> Message | None:
        try:
            msg = pickle.load(stream)
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError):
            return None
        return msg if isinstance(msg, tuple) and len(msg) == 3 else None

    def send(msg: Message) -> None:
        try:
            data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            data = pickle.dumps((msg[0], {"error": {"kind": "internal", "message": f"unpicklable result: {exc}"}},
                                 msg[2]))
        with lock:
            _write_all(out, data)

    with contextlib.suppress(BrokenPipeError):
        child_main(receive, send)
