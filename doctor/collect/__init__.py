"""Collectors: each gathers one domain of facts under a shared deadline.

A collector is a function ``(ctx) -> dict``. It runs in its own daemon thread so a
hung socket cannot hold the run past its deadline; whatever it raises or fails to
finish in time is recorded as ``{"error": {...}}`` in its domain of the facts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from doctor.errors import error_data

CollectorFn = Callable[["CollectContext"], dict[str, Any]]


@dataclass
class CollectOptions:
    """What the user asked for; read by collectors, never by checks."""

    config_path: str | None = None
    timeout: float = 5.0
    since: str | None = None
    until: str | None = None
    pg_user: str | None = None
    log_files: list[str] = field(default_factory=list)
    units: list[str] | None = None
    read_logs: bool = True
    validate_config: bool = True
    peers: list[str] = field(default_factory=list)
    playbook_dirs: list[str] = field(default_factory=list)  # a team's own playbooks (their log patterns too)


@dataclass
class CollectContext:
    """Shared inputs for collectors: options plus the loaded config (secrets included).

    The config with its secrets lives here and only here: facts hold a redacted copy.
    """

    options: CollectOptions
    config: dict[str, Any] | None = None
    config_path: str | None = None
    redactor: Any = None


@dataclass
class Collector:
    domain: str
    fn: CollectorFn
    profiles: tuple[str, ...]


_COLLECTORS: dict[str, Collector] = {}


def collector(domain: str, profiles: tuple[str, ...] = ("run", "preflight", "replication", "bundle")):
    """Register a collector for one domain of the facts."""

    def wrap(fn: CollectorFn) -> CollectorFn:
        _COLLECTORS[domain] = Collector(domain, fn, profiles)
        return fn

    return wrap


def registered_collectors() -> dict[str, Collector]:
    _import_builtin_collectors()
    return dict(_COLLECTORS)


def _import_builtin_collectors() -> None:
    import importlib
    import pkgutil

    import doctor.collect as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_") and mod.name != "config":
            importlib.import_module(f"doctor.collect.{mod.name}")


def run_collectors(
    ctx: CollectContext,
    profile: str = "run",
    deadline: float | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Run every collector of ``profile`` concurrently; return ``{domain: facts}``."""
    chosen = [c for c in registered_collectors().values() if profile in c.profiles]
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    lock = threading.Lock()

    def _run(c: Collector) -> None:
        start = time.monotonic()
        try:
            value = c.fn(ctx)
        except Exception as exc:  # a collector bug must not stop the run
            value = {"error": error_data(exc)}
        with lock:
            results[c.domain] = value
            timings[c.domain] = round(time.monotonic() - start, 3)
        if progress:
            progress(c.domain, "done")

    budget = deadline if deadline is not None else ctx.options.timeout * 2 + 2
    threads = []
    for c in chosen:
        t = threading.Thread(target=_run, args=(c,), name=f"collect-{c.domain}", daemon=True)
        t.start()
        threads.append((c, t))
    end = time.monotonic() + budget
    for c, t in threads:
        t.join(max(0.0, end - time.monotonic()))
    with lock:
        for c, t in threads:
            if c.domain not in results:
                results[c.domain] = {
                    "error": {"kind": "timeout", "message": f"collector '{c.domain}' did not finish within {budget:.0f}s"}
                }
        results["_timings"] = dict(timings)
    return results
