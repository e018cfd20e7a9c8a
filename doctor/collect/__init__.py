"""Collectors: each gathers one domain of facts under the command's one ``Deadline``.

A collector is a function ``(ctx) -> dict``, registered with ``@collector(domain)``. The
runner starts every collector of a profile at once, each in its own daemon thread, so a
hung socket cannot hold the run past the deadline; whatever a collector raises or fails
to finish in time is recorded as ``{"error": {...}}`` in its domain of the facts.

A collector that needs another's result declares it: ``@collector("postgres",
after=("dcs",))``. It still starts at once (its own local work need not wait) and asks
for the result when it needs it with ``ctx.upstream.result("dcs")``, which waits at most
until the dependency's own share of the deadline is spent; a dependency that hangs or
fails reaches its dependants as its ``{"error": {...}}`` record, never as a wait past
the deadline.
"""

from __future__ import annotations

import dataclasses
import graphlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from doctor.collect.deadline import GRACE, Deadline
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
    validate_when_clean: bool = True  # run Patroni's validator even when pgdoctor's schema finds nothing
    peers: list[str] = field(default_factory=list)
    playbook_dirs: list[str] = field(default_factory=list)  # a team's own playbooks (their log patterns too)
    round_trip_timeout: float | None = None  # verify: how long the replication round trip may wait


class Upstream:
    """The results of the collectors one collector declared with ``after``; empty outside the runner."""

    def __init__(self, domain: str = "", after: tuple[str, ...] = (), board: _Board | None = None) -> None:
        self.domain, self.after, self._board = domain, after, board

    def result(self, name: str) -> dict[str, Any]:
        """``name``'s facts once it has finished, or its error record; waits no longer than its share."""
        if name not in self.after:
            raise LookupError(f"collector '{self.domain}' reads '{name}' without declaring after=('{name}',)")
        if self._board is None:
            return {"error": {"kind": "not-collected", "message": f"'{name}' is collected only by the collector runner"}}
        return self._board.wait(name)


@dataclass
class CollectContext:
    """Shared inputs for collectors: options plus the loaded config (secrets included).

    The config with its secrets lives here and only here: facts hold a redacted copy. The
    runner hands each collector its own copy with its own ``deadline`` and ``upstream``.
    """

    options: CollectOptions
    config: dict[str, Any] | None = None
    config_path: str | None = None
    redactor: Any = None
    deadline: Deadline | None = None
    upstream: Upstream = field(default_factory=Upstream)

    def __post_init__(self) -> None:
        if self.deadline is None:
            self.deadline = Deadline.for_command(self.options.timeout)


@dataclass
class Collector:
    domain: str
    fn: CollectorFn
    profiles: tuple[str, ...]
    after: tuple[str, ...] = ()
    share: str | None = None  # a named share of the deadline for this collector; None = the whole collection
    isolate: bool = False  # run in the worker process when one can be forked (doctor/collect/_worker.py)


_COLLECTORS: dict[str, Collector] = {}
DEFAULT_PROFILES = ("run", "preflight", "replication", "bundle", "verify")
# A profile that also runs every collector of others: ``cluster`` (run --cluster) is ``run`` plus its own.
PROFILE_INCLUDES: dict[str, tuple[str, ...]] = {"cluster": ("run",)}


def collector(domain: str, profiles: tuple[str, ...] = DEFAULT_PROFILES, after: tuple[str, ...] = (),
              share: str | None = None, isolate: bool = False):
    """Register a collector for one domain of the facts.

    ``after`` names the collectors whose results it reads (``ctx.upstream.result(name)``);
    ``share`` bounds it by a named share of the deadline (see ``doctor.collect.deadline``),
    which is also how long its dependants wait for it. ``isolate``: the collectors that need
    PostgreSQL's driver run together in a forked worker process (see ``doctor.collect._worker``).
    """

    def wrap(fn: CollectorFn) -> CollectorFn:
        _COLLECTORS[domain] = Collector(domain, fn, profiles, tuple(after), share, isolate)
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


class _Board:
    """Each running collector's deadline and, once it has finished, its result."""

    def __init__(self, run: Deadline) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.done: dict[str, threading.Event] = {}
        self.deadlines: dict[str, Deadline] = {}
        self.results: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.listeners: list[Callable[[str, Any, float], None]] = []

    def start(self, domain: str, deadline: Deadline) -> None:
        self.done[domain] = threading.Event()
        self.deadlines[domain] = deadline

    def finish(self, domain: str, value: Any, seconds: float) -> None:
        with self.lock:
            self.results[domain] = value
            self.timings[domain] = round(seconds, 3)
        self.done[domain].set()
        for listener in self.listeners:
            listener(domain, value, seconds)

    def wait(self, domain: str) -> dict[str, Any]:
        event = self.done.get(domain)
        if event is None:
            return {"error": {"kind": "not-collected", "message": f"collector '{domain}' is not part of this run"}}
        own = self.deadlines[domain]
        event.wait(min(own.remaining() + GRACE, self.run.remaining()))
        with self.lock:
            if domain in self.results:
                return self.results[domain]
        return {"error": own.timeout_error(f"collector '{domain}'")}


def _check_order(chosen: list[Collector]) -> None:
    """Every ``after`` names a registered collector, and no collector waits on itself through others."""
    known = set(_COLLECTORS)
    for c in chosen:
        missing = [a for a in c.after if a not in known]
        if missing:
            raise ValueError(f"collector '{c.domain}' comes after unknown collector(s): {', '.join(missing)}")
    graphlib.TopologicalSorter({c.domain: set(c.after) for c in chosen}).prepare()  # CycleError on a loop


def run_collectors(
    ctx: CollectContext,
    profile: str = "run",
    deadline: Deadline | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Run every collector of ``profile`` concurrently within ``deadline``; return ``{domain: facts}``.

    ``deadline`` defaults to the ``collect`` share of ``ctx.deadline``. The worker process for the
    ``isolate`` collectors is forked first, before the collector modules are imported here: it imports
    its own (and PostgreSQL's driver) on the other core meanwhile.
    """
    run = deadline if deadline is not None else ctx.deadline.sub("collect")
    worker = _fork_worker(ctx, profile, run)
    try:
        plan = _Plan(ctx, profile, run)
    except BaseException:
        if worker is not None:
            worker.stop()
        raise
    board = plan.board
    budget = run.remaining()

    def finished(domain: str, value: Any, seconds: float) -> None:
        board.finish(domain, value, seconds)
        if progress:
            progress(domain, "done")

    if worker is not None and not plan.isolated:
        worker.stop()
        worker = None
    if worker is not None:
        worker.expect(plan.isolated_domains, plan.needs)
        board.listeners.append(worker.send)
        threading.Thread(target=worker.receive_all, args=(finished,), name="collect-worker", daemon=True).start()
    plan.start([c for c in plan.chosen if worker is None or not c.isolate], board, finished)
    try:
        for c in plan.chosen:
            board.done[c.domain].wait(max(0.0, run.remaining()))
    finally:
        if worker is not None:
            worker.stop()
    with board.lock:
        results = dict(board.results)
        for c in plan.chosen:
            if c.domain not in results:
                results[c.domain] = {"error": {"kind": "timeout", "message": f"collector '{c.domain}' did not finish "
                                               f"within {budget:.0f}s"}}
        results["_timings"] = dict(board.timings)
    return results


class _Plan:
    """The collectors of a profile, each with its own context and deadline; built alike in this process
    and in the worker (a fork runs the same code on the same context)."""

    def __init__(self, ctx: CollectContext, profile: str, run: Deadline) -> None:
        wanted = {profile, *PROFILE_INCLUDES.get(profile, ())}
        self.chosen = [c for c in registered_collectors().values() if wanted & set(c.profiles)]
        _check_order(self.chosen)
        self.board = _Board(run)
        self.contexts: dict[str, CollectContext] = {}
        for c in self.chosen:
            own = run.sub(c.share) if c.share else run
            self.board.start(c.domain, own)
            self.contexts[c.domain] = dataclasses.replace(ctx, deadline=own)
        self.isolated = [c for c in self.chosen if c.isolate]
        self.isolated_domains = [c.domain for c in self.isolated]
        self.needs = {a for c in self.isolated for a in c.after} - set(self.isolated_domains)

    def start(self, collectors: list[Collector], on: _Board, done: Callable[[str, Any, float], None]) -> None:
        """Each collector in its own daemon thread, reading its ``after`` results from ``on``."""
        for c in collectors:
            threading.Thread(target=self._run, args=(c, on, done), name=f"collect-{c.domain}", daemon=True).start()

    def _run(self, c: Collector, on: _Board, done: Callable[[str, Any, float], None]) -> None:
        start = time.monotonic()
        try:
            value = c.fn(dataclasses.replace(self.contexts[c.domain], upstream=Upstream(c.domain, c.after, on)))
        except Exception as exc:  # a collector bug must not stop the run
            value = {"error": error_data(exc)}
        done(c.domain, value, time.monotonic() - start)


def _fork_worker(ctx: CollectContext, profile: str, run: Deadline) -> Any:
    """The worker process for the ``isolate`` collectors, or None where forking is not safe (they then run
    as threads here). In the worker: the same plan, its isolated collectors in threads, their ``after``
    results read from this process, each result sent back before it counts as done there."""
    from doctor.collect import _worker

    if not _worker.can_fork():
        return None

    def child_main(receive: Callable[[], Any], send: Callable[[Any], None]) -> None:
        plan = _Plan(ctx, profile, run)
        there = plan.board

        def feed() -> None:
            while (msg := receive()) is not None:
                if msg[0] in plan.needs:
                    there.finish(*msg)

        def finished_there(domain: str, value: Any, seconds: float) -> None:
            send((domain, value, seconds))  # before it counts as done: the worker exits once all are done
            there.finish(domain, value, seconds)

        threading.Thread(target=feed, daemon=True).start()
        plan.start(plan.isolated, there, finished_there)
        for c in plan.isolated:
            there.done[c.domain].wait(max(0.0, run.remaining()))

    worker = _worker.Worker()
    return worker if worker.start(child_main) else None
