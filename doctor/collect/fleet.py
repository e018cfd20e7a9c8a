"""The cluster snapshot: several members' facts merged into one ``Facts`` that cluster checks judge.

Two ways in, one shape out (``profile: cluster``, ``cluster.members[]``, see ``doctor.model.fleet``):

- ``from_bundles``: each bundle's whole snapshot is one member (``local: true``); ``pgdoctor analyze``
  with several bundles;
- ``from_node``: ``pgdoctor run --cluster``: this node's snapshot is its member, every other member is
  what its REST API answered (``/patroni``, ``/config``, ``/history``, ``/cluster``) and what this node
  read of its PostgreSQL (``local: false``).

The member snapshots are kept whole: a member's own diagnoses are made from them, unchanged.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from doctor import __version__
from doctor.facts import FACTS_VERSION, Facts
from doctor.model.fleet import CLUSTER_PROFILE, parse_time


def member_name(facts: Facts, source: dict[str, Any]) -> str:
    """The member a snapshot is of: its config's name, its REST API's, else its host or bundle."""
    for value in (facts.get("config.data.name"), facts.get("patroni_api.name"), source.get("member"),
                  facts.get("host"), source.get("bundle")):
        if isinstance(value, str) and value:
            return value
    return "unknown"


def _latest(times: list[Any]) -> str | None:
    parsed = [t for t in (parse_time(x) for x in times) if t is not None]
    return max(parsed).isoformat(timespec="seconds") if parsed else None


def from_bundles(items: list[tuple[Facts, dict[str, Any]]]) -> Facts:
    """One member per snapshot. Two snapshots of the same member keep the newer; a note says so."""
    chosen: dict[str, tuple[Facts, dict[str, Any]]] = {}
    notes: list[str] = []
    for facts, source in items:
        name = member_name(facts, source)
        if name in chosen:
            old_facts, old_source = chosen[name]
            newer = (parse_time(facts.get("collected_at")) or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)) > (
                parse_time(old_facts.get("collected_at")) or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc))
            kept, dropped = (source, old_source) if newer else (old_source, source)
            notes.append(f"two bundles of member {name}: {kept.get('bundle')} kept (the newer), "
                         f"{dropped.get('bundle')} left out")
            if not newer:
                continue
        chosen[name] = (facts, source)
    members = [_entry(name, facts, source, local=True) for name, (facts, source) in chosen.items()]
    return _cluster(members, notes, origin="bundles")


def from_node(facts: Facts) -> Facts:
    """This node's snapshot as its member, and every other member as its REST API and PostgreSQL showed it."""
    here = member_name(facts, {})
    members = [_entry(here, facts, {"host": facts.get("host"), "collected_at": facts.get("collected_at"),
                                     "via": "this node"}, local=True)]
    api = facts.dict_at("patroni_api") or {}
    remote = facts.dict_at("cluster_api.members") or {}
    known = sorted({*(api.get("members") or {}), *remote} - {here})
    replication = facts.dict_at("replication.members") or {}
    for name in known:
        got = remote.get(name)
        answers: dict[str, Any] = got if isinstance(got, dict) else {}
        patroni = (api.get("members") or {}).get(name)
        snap: dict[str, Any] = {
            "version": FACTS_VERSION, "profile": "remote", "collected_at": facts.get("collected_at"),
            "patroni_api": {"name": name,
                            "url": (patroni.get("api_url") if isinstance(patroni, dict) else None)
                            or answers.get("api_url"),
                            "patroni": patroni if isinstance(patroni, dict) else {"error": {
                                "kind": "not-read", "message": f"{here} did not read {name}'s /patroni"}},
                            **{p: answers[p] for p in ("config", "history", "cluster") if isinstance(answers.get(p), dict)}},
        }
        pg = replication.get(name)
        if isinstance(pg, dict) and isinstance(pg.get("settings"), dict):
            snap["postgres"] = {"settings": pg["settings"], "read_by": here}
        members.append(_entry(name, Facts(snap), {"via": f"{here}'s reads of its REST API",
                                                   "collected_at": facts.get("collected_at")}, local=False))
    return _cluster(members, [], origin="node", here=here)


def _entry(name: str, facts: Facts, source: dict[str, Any], local: bool) -> dict[str, Any]:
    return {"name": name, "local": local, "source": {k: v for k, v in source.items() if v is not None},
            "facts": facts.data}


def _cluster(members: list[dict[str, Any]], notes: list[str], origin: str, here: str | None = None) -> Facts:
    scopes = sorted({str(m["facts"].get("config", {}).get("data", {}).get("scope"))
                     for m in members if isinstance(m["facts"].get("config"), dict)
                     and isinstance(m["facts"]["config"].get("data"), dict)
                     and m["facts"]["config"]["data"].get("scope")})
    cluster: dict[str, Any] = {"origin": origin, "members": members, "notes": notes, "scopes": scopes}
    if here:
        cluster["here"] = here
    return Facts({"version": FACTS_VERSION, "profile": CLUSTER_PROFILE, "pgdoctor_version": __version__,
                  "collected_at": _latest([m["source"].get("collected_at") or m["facts"].get("collected_at")
                                           for m in members]),
                  "cluster": cluster})
