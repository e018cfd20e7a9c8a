"""Which .pgpass files a bundle may carry, read without trusting the path.

A bundle is often made with sudo, and the config names its pgpass path: whatever
root-only file sits there (``/etc/shadow``) must not ship. A pgpass file goes in
the bundle only when it is what libpq itself would use for PostgreSQL's OS user:

* a regular file, not a symlink (opened with ``O_NOFOLLOW``), FIFO or device;
* owned by the PostgreSQL OS user, mode 0600 (or the stricter 0400);
* every line a comment, blank, or ``host:port:database:user:password`` (``\\:``
  and ``\\\\`` escaped, the port a number or ``*``).

Its password fields are then redacted. Any other file is recorded as
"not collected: why", and its content is never read into the bundle. Files that
fail only ownership or mode are still read to *learn* their passwords, so that a
copy in a log is caught; FIFOs and devices are never opened for reading.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from doctor.bundle.safefile import Missing, Refused, read_regular

# Where a .pgpass may live besides the config's postgresql.pgpass.
PGPASS_ENV = "PGPASSFILE"
MAX_PGPASS = 1_000_000
# Modes libpq accepts for a password file that a bundle may carry.
OWNER_ONLY_MODES = (0o600, 0o400)
_FIELD = r"(?:\\.|[^:\\\n])*"
PGPASS_LINE_RE = re.compile(rf"^{_FIELD}:(?:\d+|\*):{_FIELD}:{_FIELD}:{_FIELD}$")


@dataclass
class PgpassCandidate:
    path: str
    source: str  # "postgresql.pgpass", "$PGPASSFILE", "~/.pgpass", "postgres's ~/.pgpass"

    @property
    def explicit(self) -> bool:
        """Named by the config or the environment: its absence is worth a line in the manifest."""
        return self.source in ("postgresql.pgpass", f"${PGPASS_ENV}")


def candidates(config: dict[str, Any] | None, env: Mapping[str, str], pg_user: str = "postgres") -> list[PgpassCandidate]:
    """Every .pgpass this node may use: the config's, $PGPASSFILE, ~/.pgpass, the PostgreSQL user's."""
    found: list[PgpassCandidate] = []
    pg = (config or {}).get("postgresql") if isinstance(config, dict) else None
    if isinstance(pg, dict) and pg.get("pgpass"):
        found.append(PgpassCandidate(str(pg["pgpass"]), "postgresql.pgpass"))
    if env.get(PGPASS_ENV):
        found.append(PgpassCandidate(env[PGPASS_ENV], f"${PGPASS_ENV}"))
    found.append(PgpassCandidate(os.path.expanduser("~/.pgpass"), "~/.pgpass"))
    with contextlib.suppress(KeyError):
        found.append(PgpassCandidate(os.path.join(pwd.getpwnam(pg_user).pw_dir, ".pgpass"), f"{pg_user}'s ~/.pgpass"))
    seen: set[str] = set()
    out = []
    for c in found:
        if c.path not in seen:
            seen.add(c.path)
            out.append(c)
    return out


def format_problem(text: str) -> str | None:
    """Why ``text`` is not a password file (without quoting it), or None when every entry is one."""
    for n, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not PGPASS_LINE_RE.match(line):
            return f"line {n} is not host:port:database:user:password"
    return None


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def shippable(path: str, pg_user: str) -> str:
    """The text of a pgpass file that may go in the bundle (not yet redacted); ``Refused`` says why not."""
    try:
        uid = pwd.getpwnam(pg_user).pw_uid
    except KeyError:
        raise Refused(f"there is no OS user {pg_user} to own it") from None
    text, st = read_regular(path, MAX_PGPASS, follow=False)
    if st.st_uid != uid:
        raise Refused(f"owned by {_owner_name(st.st_uid)}, not {pg_user}")
    mode = stat.S_IMODE(st.st_mode)
    if mode not in OWNER_ONLY_MODES:
        raise Refused(f"mode 0{mode:o}, not 0600")
    problem = format_problem(text)
    if problem:
        raise Refused(problem)
    return text


def learnable(path: str) -> str | None:
    """The entries of a pgpass file worth learning passwords from (any owner or mode, never a FIFO or device)."""
    try:
        text, _ = read_regular(path, MAX_PGPASS, follow=True)
    except Refused:
        return None
    return "\n".join(line for line in text.splitlines() if PGPASS_LINE_RE.match(line.rstrip("\r")))


def refusal(candidate: PgpassCandidate, why: Refused) -> dict[str, Any]:
    """The manifest's record of a pgpass left out."""
    return {"what": f"pgpass {candidate.path} ({candidate.source})",
            "kind": "not-found" if isinstance(why, Missing) else "unsafe", "message": f"not collected: {why}"}
