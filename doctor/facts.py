"""The facts snapshot: the one seam between collecting and judging.

Collectors write into it, checks only read from it, and it can be saved to JSON
and loaded elsewhere (``pgdoctor analyze``), so nothing in it may be a live
object or a secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Bumped only when a field changes meaning or goes away. Added fields (e.g. the resolved paths
# config.realpath, system.datadir.realpath) keep version 1: readers treat them as optional.
FACTS_VERSION = 1
# Oldest snapshot version this pgdoctor still knows how to judge.
OLDEST_SUPPORTED_VERSION = 1

_MISSING = object()


class FactsVersionError(ValueError):
    """A saved snapshot is from a pgdoctor this one cannot read."""


class Facts:
    """A read-mostly wrapper around the snapshot dict with dotted-path lookup."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {"version": FACTS_VERSION}
        self.data.setdefault("version", FACTS_VERSION)

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

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent, sort_keys=False, default=str)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_json(cls, text: str) -> "Facts":
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
