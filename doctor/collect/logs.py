"""Collector: this node's logs, scanned for the playbooks' known messages.

It finds the sources by itself from the config (Patroni's log.dir, PostgreSQL's log
directory inside the data dir, the journal), reads them back to ``--since``, and stores
counted matches, a timeline of events and what was read (or why not) in facts["logs"].
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from doctor.collect import CollectContext, collector
from doctor.model.node import NodeView

# The log scanner's modules are imported when logs are read: `run --no-logs` does without them.


@collector("logs", profiles=("run", "bundle"))
def collect_logs(ctx: CollectContext) -> dict[str, Any]:
    opts = ctx.options
    if not opts.read_logs:
        return {"skipped": "log reading turned off (--no-logs)", "sources": [], "matches": [], "events": []}
    from doctor.logscan.discover import node_sources
    from doctor.logscan.timeparse import time_bound

    started = time.monotonic()
    since = time_bound(opts.since) if opts.since else None
    until = time_bound(opts.until) if opts.until else None
    node = NodeView(ctx.config or {}, ctx.config_path)
    sources, notes, where = node_sources(node, since, until, timeout=ctx.deadline.share("command"),
                                         units=opts.units, extra_files=list(opts.log_files))

    def redact(text: str) -> str:
        return ctx.redactor.text(text, "logs") if ctx.redactor is not None else text

    # the "logs" share keeps a margin inside the collection's deadline to record what was found
    facts = scan_logs(sources, opts.playbook_dirs, since=since, until=until, redact=redact, notes=notes,
                      deadline=time.monotonic() + ctx.deadline.share("logs"), now=time.time(),
                      node_values=node.template_values(), loop_wait=node.loop_wait)
    facts["found"] = where
    facts["since"] = opts.since
    facts["seconds"] = round(time.monotonic() - started, 3)
    return facts


def scan_logs(sources: Sequence[Any], playbook_dirs: Sequence[str] | None = None, since: float | None = None,
              until: float | None = None, redact: Callable[[str], str] | None = None, engine: str = "auto",
              notes: Sequence[str] = (), deadline: float | None = None, now: float | None = None,
              node_values: dict[str, Any] | None = None, loop_wait: float | None = None) -> dict[str, Any]:
    """Scan ``sources`` for the playbooks' patterns: the ``logs`` domain of the facts.

    Used for this node's own logs (above) and for logs given by hand (``pgdoctor logs``).
    ``now`` dates the matches' ages; without it they are aged from the end of the logs read.
    ``node_values`` (this node's, when known) keep values that fit the node from being folded.
    ``loop_wait`` (the config's, when known) is the HA loop persistent-only patterns are counted in.
    """
    from doctor.logscan import mark_ages, patterns_from
    from doctor.logscan.scan import Scanner
    from doctor.playbooks import load_playbooks

    scanner = Scanner(patterns_from(load_playbooks(list(playbook_dirs or []))), engine=engine, since=since,
                      until=until, redact=redact, deadline=deadline,
                      node_values=node_values, loop_wait=loop_wait)
    scanner.notes.extend(notes)
    scanner.scan(list(sources))
    facts = scanner.facts()
    mark_ages(facts.get("matches") or [], now)
    return facts
