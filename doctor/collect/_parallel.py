"""Run a few blocking calls at once under one deadline, on daemon threads.

Daemon threads (not a ThreadPoolExecutor) so that a call stuck past the deadline can
never hold the process open; its slot is reported as a timeout instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def parallel(calls: dict[str, Callable[[], Any]], budget: float, on_timeout: Callable[[str], Any]) -> dict[str, Any]:
    """``{name: call()}`` for every call that finished within ``budget`` seconds, else ``on_timeout(name)``.

    A call that raises yields ``on_timeout``'s sibling: the exception object itself, so the
    caller decides how to record it.
    """
    results: dict[str, Any] = {}
    lock = threading.Lock()

    def _run(name: str, fn: Callable[[], Any]) -> None:
        try:
            value = fn()
        except Exception as exc:  # recorded as data by the caller
            value = exc
        with lock:
            results[name] = value

    threads = []
    for name, fn in calls.items():
        t = threading.Thread(target=_run, args=(name, fn), name=f"pgdoctor-{name}", daemon=True)
        t.start()
        threads.append(t)
    end = time.monotonic() + budget
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    with lock:
        return {name: results[name] if name in results else on_timeout(name) for name in calls}
