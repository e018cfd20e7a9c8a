"""The versions of Patroni, PostgreSQL and etcd this node's facts show, read from the places the
collectors record them (this node's REST API first, then the other members, the DCS)."""

from __future__ import annotations

import re
from typing import Any

from doctor.facts import Facts
from doctor.views import REPORTING, view


def pg_version_text(value: Any) -> str | None:
    """PostgreSQL's numeric server_version (150010) as 15.10, "PostgreSQL 15.10 on ..." as 15.10."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        n = int(value)
        return f"{n // 10000}.{n % 10000}" if n >= 100000 else f"{n // 10000}.{(n // 100) % 100}.{n % 100}"
    m = re.match(r"PostgreSQL (\S+)", str(value))
    return m.group(1).rstrip(",") if m else str(value)


def _members(facts: Facts) -> list[dict[str, Any]]:
    """Every member's /patroni answer body, this node's first."""
    bodies = [facts.get("patroni_api.patroni.body")]
    members = facts.get("patroni_api.members")
    if isinstance(members, dict):
        bodies += [m.get("body") for m in members.values() if isinstance(m, dict)]
    return [b for b in bodies if isinstance(b, dict)]


def _first(values: list[Any]) -> Any:
    return next((v for v in values if v not in (None, "")), None)


@view("versions", commands=REPORTING)
def versions(facts: Facts) -> dict[str, str] | None:
    bodies = _members(facts)
    patroni = _first([(b.get("patroni") or {}).get("version") for b in bodies]
                     + [m.get("version") for m in facts.get("dcs.members") or [] if isinstance(m, dict)])
    replicas = facts.get("replication.members")
    pg = _first([facts.get("postgres.settings.server_version_num"), facts.get("postgres.version")]
                + [b.get("server_version") for b in bodies]
                + ([(m.get("settings") or {}).get("server_version_num") for m in replicas.values()
                    if isinstance(m, dict)] if isinstance(replicas, dict) else [])
                + [facts.get("system.datadir.pg_version")])
    etcd = _first([e.get("version") for e in facts.get("dcs.endpoints") or [] if isinstance(e, dict)])
    out = {"Patroni": str(patroni) if patroni else None, "PostgreSQL": pg_version_text(pg),
           "etcd": str(etcd) if etcd else None}
    return {k: v for k, v in out.items() if v} or None
