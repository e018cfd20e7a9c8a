"""Patroni's member states across versions, in one table: what each word in a member's ``state``
means, which Patroni releases write it, and what pgdoctor makes of it.

Where the words come from (github.com/patroni/patroni):

- ``Postgresql.state`` (patroni/postgresql/__init__.py ``set_state``; since 4.1.0 the enum
  ``PostgresqlState`` in patroni/postgresql/misc.py, whose values are the same strings) is written to
  the member key as ``state`` by ``Ha.touch_member`` (patroni/ha.py) and answered by ``GET /patroni``.
- Since 3.0.4 a replica also publishes ``replication_state`` (``Postgresql.replication_state_from_parameters``:
  ``streaming`` when ``pg_stat_wal_receiver.status`` is streaming, ``in archive recovery`` when it is not
  and a ``restore_command`` is set), and ``GET /cluster`` / ``patronictl list`` show that instead of
  ``state`` for every member but the leader (patroni/utils.py ``cluster_as_json``). Before 3.0.4 a
  streaming replica is plain ``running``: ``running`` then says nothing about streaming.
- ``stopped`` is written when PostgreSQL is not running while the cluster is paused (patroni/ha.py
  ``_run_cycle``: "if self.is_paused(): set_state(STOPPED)"; a paused leader also drops its leader key
  then), at Patroni start before PostgreSQL runs, and after a clean stop.
- ``crashed`` (since 2.0.0) is written when a PostgreSQL that was ``running``/``starting`` is found dead
  outside maintenance mode; Patroni then tries to start it again (``recover``).
- ``start failed`` / ``restart failed`` / ``stop failed``: ``Postgresql.start``/``restart``/``stop``
  failed (``check_startup_state_changed``, ``restart``, ``stop``).

The table is data: one row per state. :func:`state_info` turns any word (also unknown ones) into a
:class:`StateInfo`; the checks ask only ``kind``.
"""

from __future__ import annotations

from dataclasses import dataclass

# kinds: what the state means for the member's PostgreSQL right now
UP = "up"  # PostgreSQL runs (as primary or replica)
TRANSIENT = "transient"  # on its way up or down; normal for a while
BOOTSTRAP = "bootstrap"  # being created (initdb, custom bootstrap, clone)
DOWN = "down"  # not running, and Patroni is not starting it (paused, or it just died)
FAILED = "failed"  # an action on it failed; Patroni retries, a human is usually needed
UNKNOWN = "unknown"


@dataclass(frozen=True)
class StateInfo:
    state: str
    kind: str
    since: str  # first Patroni release that writes this word
    until: str | None  # last release that writes it (None: still current)
    where: str  # the Patroni code that sets it
    meaning: str


STATES: tuple[StateInfo, ...] = (
    StateInfo("running", UP, "0.4", None, "postgresql/__init__.py start(), ha.py _run_cycle",
              "PostgreSQL runs; on Patroni < 3.0.4 also every streaming replica's state"),
    StateInfo("streaming", UP, "3.0.4", None, "postgresql/__init__.py replication_state_from_parameters",
              "replication_state: the replica's WAL receiver streams (shown by /cluster and patronictl list)"),
    StateInfo("in archive recovery", UP, "3.0.4", None, "postgresql/__init__.py replication_state_from_parameters",
              "replication_state: no WAL receiver streaming, replaying from restore_command"),
    StateInfo("starting", TRANSIENT, "0.4", None, "postgresql/__init__.py start()",
              "pg_ctl start issued, not yet accepting connections"),
    StateInfo("starting after custom bootstrap", BOOTSTRAP, "4.1.0", None,
              "postgresql/misc.py PostgresqlState.BOOTSTRAP_STARTING",
              "first start after a custom bootstrap script"),
    StateInfo("restarting", TRANSIENT, "0.4", None, "postgresql/__init__.py restart()", "a restart is under way"),
    StateInfo("stopping", TRANSIENT, "0.4", None, "postgresql/__init__.py stop()", "pg_ctl stop issued"),
    StateInfo("stopped", DOWN, "0.4", None, "ha.py _run_cycle (paused and not healthy), postgresql/__init__.py stop()",
              "PostgreSQL is not running and Patroni does not start it (maintenance mode, or stopped on purpose)"),
    StateInfo("crashed", DOWN, "2.0.0", None, "ha.py _run_cycle (not healthy, was running or starting)",
              "PostgreSQL died; outside maintenance mode Patroni tries to start it again"),
    StateInfo("start failed", FAILED, "0.4", None, "postgresql/__init__.py check_startup_state_changed()",
              "PostgreSQL did not come up; the reason is in its log"),
    StateInfo("restart failed", FAILED, "0.4", None, "postgresql/__init__.py restart()",
              "a restart (patronictl restart, pending restart) did not bring PostgreSQL back"),
    StateInfo("stop failed", FAILED, "0.4", None, "postgresql/__init__.py stop()", "pg_ctl stop failed"),
    StateInfo("creating replica", BOOTSTRAP, "1.0", None, "postgresql/bootstrap.py create_replica()",
              "cloning from the leader or a replica (pg_basebackup or a replica method)"),
    StateInfo("initalizing new cluster", BOOTSTRAP, "0.4", "3.0.1", "postgresql/bootstrap.py _initdb() (sic)",
              "initdb is running (spelled this way before 3.0.2)"),
    StateInfo("initializing new cluster", BOOTSTRAP, "3.0.2", None, "postgresql/bootstrap.py _initdb()",
              "initdb is running"),
    StateInfo("initdb failed", FAILED, "0.4", None, "postgresql/bootstrap.py _initdb()", "initdb failed"),
    StateInfo("running custom bootstrap script", BOOTSTRAP, "1.4.2", None, "postgresql/bootstrap.py _custom_bootstrap()",
              "a bootstrap method from the config runs"),
    StateInfo("custom bootstrap failed", FAILED, "1.3", None, "postgresql/bootstrap.py _custom_bootstrap()",
              "the custom bootstrap method failed"),
)

_BY_STATE = {s.state: s for s in STATES}

# Patroni writes ``replication_state`` (and /cluster shows it) from this release on.
REPLICATION_STATE_SINCE = (3, 0, 4)


def state_info(state: str | None) -> StateInfo:
    """The table row of ``state``; an unknown or missing word is kind ``unknown``."""
    if state and state in _BY_STATE:
        return _BY_STATE[state]
    return StateInfo(state or "", UNKNOWN, "", None, "", "not a state pgdoctor knows")


def kind(state: str | None) -> str:
    return state_info(state).kind


def is_down(state: str | None) -> bool:
    """PostgreSQL is not running there: stopped, crashed, or an action on it failed."""
    return kind(state) in (DOWN, FAILED)


def version_tuple(version: str | None) -> tuple[int, ...] | None:
    """'3.0.4' -> (3, 0, 4); None when unknown or not a version."""
    if not version:
        return None
    parts = []
    for p in str(version).split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def running_says_streaming(version: str | None) -> bool | None:
    """Does ``running`` on a replica rule out streaming? True from 3.0.4 on (a streaming replica would say
    ``streaming``), False before (every replica says ``running``), None when the version is unknown."""
    v = version_tuple(version)
    if v is None:
        return None
    return v >= REPLICATION_STATE_SINCE


def table_markdown() -> str:
    """The table as Markdown, for docs/member-states.md (kept in step by a test)."""
    lines = ["| state | kind | written by Patroni | set in | meaning |", "|---|---|---|---|---|"]
    for s in STATES:
        span = f"{s.since}–{s.until}" if s.until else f"≥ {s.since}"
        lines.append(f"| `{s.state}` | {s.kind} | {span} | `{s.where}` | {s.meaning} |")
    return "\n".join(lines)
