"""The facts snapshot: the one seam between collecting and judging.

Collectors write into it, checks only read from it, and it can be saved to JSON
and loaded elsewhere (``pgdoctor analyze``), so nothing in it may be a live
object or a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

# Bumped only when a field changes meaning or goes away. Added fields (e.g. the resolved paths
# config.realpath, system.datadir.realpath) keep version 1: readers treat them as optional.
FACTS_VERSION = 1
# Oldest snapshot version this pgdoctor still knows how to judge.
OLDEST_SUPPORTED_VERSION = 1

_MISSING = object()
_T = TypeVar("_T")


class FactsVersionError(ValueError):
    """A saved snapshot is from a pgdoctor this one cannot read."""


class Facts:
    """A read-mostly wrapper around the snapshot dict with dotted-path lookup."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {"version": FACTS_VERSION}
        self.data.setdefault("version", FACTS_VERSION)
        self._memo: dict[str, Any] = {}

    def get(self, path: str, default: Any = None) -> Any:
        """Return the value at a dotted path such as ``system.datadir.mode``."""
        node: Any = self.data
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node

    def has(self, path: str) -> bool:
        return self.get(path, _MISSING) is not _MISSING

    def error_of(self, path: str) -> dict[str, Any] | None:
        """The collection error recorded at ``path`` or any of its parents, if any."""
        node: Any = self.data
        for part in path.split("."):
            if isinstance(node, dict) and isinstance(node.get("error"), dict):
                return node["error"]
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return None
        if isinstance(node, dict) and isinstance(node.get("error"), dict):
            return node["error"]
        return None

    def set(self, domain: str, value: Any) -> None:
        self.data[domain] = value
        self._memo.clear()

    def memo(self, key: str, build: Callable[[], _T]) -> _T:
        """A value derived from this snapshot, built on first use and kept until ``set`` changes the
        snapshot, so that checks and views judging the same facts share one build (the cluster model)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    # ------------------------------------------------------------------ typed lookups
    # The shapes the collectors write, checked once here so that judgement code gets a dict,
    # a list or a number, never "whatever JSON happened to hold".

    def dict_at(self, path: str) -> dict[str, Any] | None:
        """The dict at ``path``, or None when it is absent or not a dict."""
        value = self.get(path)
        return value if isinstance(value, dict) else None

    def list_at(self, path: str) -> list[Any]:
        """The list at ``path``; [] when it is absent or not a list."""
        value = self.get(path)
        return value if isinstance(value, list) else []

    def dicts_at(self, path: str) -> list[dict[str, Any]]:
        """The dict entries of the list at ``path``."""
        return [x for x in self.list_at(path) if isinstance(x, dict)]

    def named_dicts_at(self, path: str) -> list[dict[str, Any]]:
        """The dict entries of the list at ``path`` whose ``name`` is a non-empty string: a member
        everything else keys by that name (a bundle's facts may say anything)."""
        return [x for x in self.dicts_at(path) if isinstance(x.get("name"), str) and x["name"]]

    def int_at(self, path: str) -> int | None:
        value = self.get(path)
        return value if isinstance(value, int) else None

    def text_at(self, path: str) -> str | None:
        """The value at ``path`` as text, or None when it is absent or empty."""
        value = self.get(path)
        return str(value) if value else None

    @property
    def config(self) -> dict[str, Any]:
        """This node's Patroni config as collected (redacted), {} when it could not be read."""
        return self.dict_at("config.data") or {}

    @property
    def dcs_keys_read(self) -> bool:
        """The cluster's keys were read from the DCS (possibly from a quorum-less member's copy)."""
        return bool(self.get("dcs.keys_read"))

    @property
    def dcs_keys_error(self) -> dict[str, Any]:
        """Why the keys could not be read (``kind``, ``message``), {} when nothing is known."""
        return self.dict_at("dcs.keys_error") or self.dict_at("dcs.error") or {}

    @property
    def dcs_prefix(self) -> str | None:
        """The cluster's key prefix in the DCS, e.g. ``/service/postgres/``."""
        return self.text_at("dcs.prefix")

    @property
    def dcs_leader(self) -> str | None:
        """The holder of the ``/leader`` key as read: not necessarily a writable primary (see the model)."""
        return self.text_at("dcs.leader")

    @property
    def dcs_config(self) -> dict[str, Any] | None:
        """The ``/config`` key (Patroni's dynamic configuration), None when unread."""
        return self.dict_at("dcs.config")

    @property
    def dcs_members(self) -> list[dict[str, Any]]:
        """The ``/members/<name>`` keys that name a member."""
        return self.named_dicts_at("dcs.members")

    @property
    def dcs_sync(self) -> dict[str, Any]:
        """The ``/sync`` key, {} when absent."""
        return self.dict_at("dcs.sync") or {}

    @property
    def dcs_optime(self) -> int | None:
        """The leader's last WAL position published in ``/status`` (``optime``)."""
        return self.int_at("dcs.status.optime")

    @property
    def rest_answers(self) -> dict[str, dict[str, Any]]:
        """{member: REST ``/patroni`` fetch result} for this node and every member probed."""
        return self.dict_at("patroni_api.members") or {}

    @property
    def pg_members(self) -> dict[str, dict[str, Any]]:
        """{member: its PostgreSQL as the replication collector found it}."""
        return self.dict_at("replication.members") or {}

    @property
    def postgres_settings(self) -> dict[str, Any]:
        """This node's PostgreSQL settings (``pg_settings``), {} when it was not reached."""
        return self.dict_at("postgres.settings") or {}

    @property
    def controldata(self) -> dict[str, Any]:
        """This node's ``pg_controldata``, {} when not read."""
        return self.dict_at("postgres.controldata") or {}

    @property
    def datadir(self) -> dict[str, Any]:
        """What the system collector saw of this node's data directory."""
        return self.dict_at("system.datadir") or {}

    @property
    def run_settings(self) -> dict[str, Any]:
        """The thresholds this run was given (``--max-lag-bytes`` and the like)."""
        return self.dict_at("settings") or {}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent, sort_keys=False, default=str)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_json(cls, text: str) -> Facts:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FactsVersionError(f"not a pgdoctor facts file: {exc}") from None
        if not isinstance(data, dict) or "version" not in data:
            raise FactsVersionError("not a pgdoctor facts file: no 'version' field")
        version = data["version"]
        if not isinstance(version, int):
            raise FactsVersionError(f"facts version {version!r} is not a number")
        if version > FACTS_VERSION:
            raise FactsVersionError(
                f"facts version {version} was written by a newer pgdoctor (this one reads up to "
                f"{FACTS_VERSION}); upgrade pgdoctor to analyze it"
            )
        if version < OLDEST_SUPPORTED_VERSION:
            raise FactsVersionError(
                f"facts version {version} is too old (oldest supported: {OLDEST_SUPPORTED_VERSION}); "
                "collect a new bundle on the node"
            )
        return cls(data)
