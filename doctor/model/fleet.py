"""The cluster as several members' snapshots show it: one :class:`Snapshot` per member, and how a
value splits between them.

A cluster snapshot (``profile: cluster``, written by ``doctor.collect.fleet``) holds each member's own
facts under ``cluster.members[]``: the whole snapshot of a bundle (``local: true``) or, for
``run --cluster``, only what that member's REST API answered (``local: false``). Cluster checks judge
what differs between them; the values they compare are read here, once, so that no check re-reads
another's facts.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from doctor.facts import Facts
from doctor.model.node import NodeView

CLUSTER_PROFILE = "cluster"


@dataclass
class Snapshot:
    """One member's facts inside a cluster snapshot, and where they came from."""

    name: str
    local: bool  # its own facts (a bundle, or the node ``run --cluster`` ran on); else only its REST API
    facts: Facts
    source: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def node(self) -> NodeView:
        return NodeView(self.facts.get("config.data") or {}, self.facts.get("config.path"))

    @property
    def has_config(self) -> bool:
        return self.local and isinstance(self.facts.get("config.data"), dict)

    @property
    def collected_at(self) -> _dt.datetime | None:
        return parse_time(self.source.get("collected_at") or self.facts.get("collected_at"))

    @property
    def host(self) -> str | None:
        return self.source.get("host") or self.facts.get("host")

    @property
    def patroni(self) -> dict[str, Any]:
        """This member's own ``GET /patroni`` answer."""
        return self.facts.dict_at("patroni_api.patroni.body") or {}

    @property
    def dcs_config(self) -> dict[str, Any] | None:
        """The dynamic configuration as this member read it: its ``GET /config``, else its DCS read."""
        return self.facts.dict_at("patroni_api.config.body") or self.facts.dict_at("dcs.config")

    @property
    def dcs_config_from(self) -> str:
        return (f"{self.name}'s REST GET /config" if self.facts.dict_at("patroni_api.config.body")
                else f"{self.name}'s DCS read of /config")

    @property
    def local_parameters(self) -> dict[str, Any]:
        """``postgresql.parameters`` of this member's own patroni.yml (empty when not seen)."""
        params = self.node.get("postgresql", "parameters")
        return params if isinstance(params, dict) else {}

    @property
    def versions(self) -> dict[str, str]:
        """Patroni and PostgreSQL as this member runs them (its own answers only, never another's)."""
        from doctor.views.versions import pg_version_text

        out: dict[str, str] = {}
        patroni = (self.patroni.get("patroni") or {}).get("version") if isinstance(self.patroni.get("patroni"),
                                                                                    dict) else None
        if patroni:
            out["Patroni"] = str(patroni)
        pg = pg_version_text(self.facts.get("postgres.settings.server_version_num")
                             or self.patroni.get("server_version"))
        if pg:
            out["PostgreSQL"] = pg
        return out

    @property
    def etcd_versions(self) -> dict[str, str]:
        """etcd endpoint -> version, as this member's DCS collector read them."""
        return {str(e.get("url") or e.get("endpoint")): str(e["version"])
                for e in self.facts.get("dcs.endpoints") or []
                if isinstance(e, dict) and e.get("version") and (e.get("url") or e.get("endpoint"))}


def parse_time(value: Any) -> _dt.datetime | None:
    """An ISO 8601 time as written by the collectors; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def is_cluster(facts: Facts) -> bool:
    return facts.get("profile") == CLUSTER_PROFILE and isinstance(facts.get("cluster.members"), list)


def snapshots(facts: Facts) -> list[Snapshot]:
    """The members of a cluster snapshot, in the order they were merged; built once per snapshot."""
    def build() -> list[Snapshot]:
        out = []
        for m in facts.get("cluster.members") or []:
            if isinstance(m, dict) and isinstance(m.get("facts"), dict) and m.get("name"):
                source = m.get("source")
                out.append(Snapshot(name=str(m["name"]), local=bool(m.get("local")), facts=Facts(m["facts"]),
                                    source=source if isinstance(source, dict) else {}))
        return out
    return facts.memo("fleet-snapshots", build)


@dataclass
class Split:
    """How one value divides the members: the value most of them share, and the members that differ."""

    common: Any
    odd: dict[str, Any]  # member -> its value, for members whose value is not ``common``
    tied: bool  # no value is held by more members than every other: ``odd`` then names them all

    @property
    def differs(self) -> bool:
        return bool(self.odd)


def split(values: dict[str, Any]) -> Split:
    """Group members by a value; with a tie every member is named, since none is the cluster's value."""
    keyed = {name: _key(v) for name, v in values.items()}
    counts = Counter(keyed.values())
    if len(counts) <= 1:
        return Split(next(iter(values.values()), None), {}, False)
    (top, n_top), (_, n_next) = counts.most_common(2)
    if n_top == n_next:
        return Split(None, dict(values), True)
    common = next(v for name, v in values.items() if keyed[name] == top)
    return Split(common, {name: v for name, v in values.items() if keyed[name] != top}, False)


def _key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def shown(value: Any) -> str:
    """A compared value in a summary: lists joined, None as "not set"."""
    if value is None:
        return "not set"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return _key(value)
    return str(value)
