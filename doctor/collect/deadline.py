"""One time budget per command, made from ``--timeout``, handed out in named shares.

The budget model, in one place (docs/architecture.md repeats it):

* ``T`` is ``--timeout``: the longest one network call (an HTTP request, a PostgreSQL
  connection or query) or one local command may take.
* The whole collection stops at ``2 * T + 2`` seconds (share ``collect``), whatever hangs:
  collectors run concurrently and the runner stops waiting for them then.
* ``bundle`` has ``max(T, 10)`` seconds more (share ``bundle``) for what it gathers
  after the collection: log files, the journal, host files.
* Every other share is the time one step may take; the step gets that or what is left
  of the budget it runs in, whichever is less, so nothing can outlast the command's
  budget. The shares are the table ``SHARES`` below and nowhere else.

A step that runs out of time records ``{"error": {"kind": "timeout", ...}}`` like any
other failure. ``sub(name)`` gives a phase (one collector, the DCS read) its own
deadline inside its parent's, so that a dependant can tell when to stop waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# (T, seconds left) -> seconds for one named share. The result is then capped by what is left.
SHARES: dict[str, Callable[[float, float], float]] = {
    "collect": lambda t, left: 2 * t + 2,  # the whole collection of a command
    "bundle": lambda t, left: max(t, 10.0),  # a bundle's logs, journal and host files, after the collection
    "call": lambda t, left: t,  # one HTTP request, or one PostgreSQL connection with its queries
    "member": lambda t, left: min(t, 2.0),  # another member's REST API or a port probe (Patroni gives members 2 s)
    "dcs": lambda t, left: t + 2.0,  # the DCS read: endpoint probes within one call, then the member list and keys
    "command": lambda t, left: t,  # one local read-only command (systemctl, pg_controldata, nft, ...)
    "slow-command": lambda t, left: max(t, 10.0),  # a command that starts Python (patroni --version)
    "logs": lambda t, left: left - 1.0,  # the log scan: all that is left, less a second to record what it found
}
# The least a call is given once the budget is spent: it then fails at once, as a timeout.
FLOOR = 0.1
# Time for a call that gave up at its own timeout to come back with its error.
GRACE = 0.5


@dataclass
class Deadline:
    """A point in (monotonic) time and the ``--timeout`` it was made from."""

    timeout: float
    end: float
    name: str = "command"
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def for_command(cls, timeout: float, command: str = "run",
                    clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The budget of one command: the collection, plus the bundle's own gathering for ``bundle``."""
        t = max(0.1, float(timeout))
        total = SHARES["collect"](t, 0.0) + (SHARES["bundle"](t, 0.0) if command == "bundle" else 0.0)
        return cls(timeout=t, end=clock() + total, name=command, clock=clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.end

    def share(self, name: str) -> float:
        """Seconds one step named ``name`` may take now (see ``SHARES``), capped by what is left."""
        left = self.remaining()
        return max(FLOOR, min(SHARES[name](self.timeout, left), left))

    def sub(self, name: str) -> Deadline:
        """A phase's own deadline: its share from now, and never later than this one."""
        now = self.clock()
        left = max(0.0, self.end - now)
        seconds = max(0.0, min(SHARES[name](self.timeout, left), left))
        return Deadline(timeout=self.timeout, end=now + seconds, name=name, clock=self.clock)

    def wait_budget(self) -> float:
        """How long a collector may wait for its own calls and still record them before this deadline."""
        return max(FLOOR, self.remaining() - GRACE)

    def timeout_error(self, what: str) -> dict[str, Any]:
        """The record of a step this deadline cut short."""
        return {"kind": "timeout", "message": f"{what} did not finish within the {self.name} time budget "
                                              f"(--timeout {self.timeout:g}s)"}
