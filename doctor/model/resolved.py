"""Paths as the node itself resolved them (symlinks followed), read from the facts.

Collectors record resolved paths (``config.realpath``, ``system.datadir.realpath``, a
postmaster's ``data_dir``, a distribution cluster's ``data_directory_realpath``) because
only the node's own file system can resolve them: under ``pgdoctor analyze`` the disk at
hand is another machine's. A snapshot from before these facts were recorded falls back
to the path normalised as text, never to the analysing machine's disk.
"""

from __future__ import annotations

import os

from doctor.facts import Facts
from doctor.model.node import NodeView


def as_resolved(path: str | None, recorded: str | None) -> str | None:
    """``recorded`` when the node resolved ``path``; else ``path`` normalised as text."""
    if recorded:
        return str(recorded)
    return os.path.normpath(path) if path else None


def node_data_dir(facts: Facts, node: NodeView) -> str | None:
    """This node's data dir as the node resolved it."""
    if not node.data_dir:
        return None
    datadir = facts.get("system.datadir") or {}
    recorded = (datadir.get("realpath") or datadir.get("symlink_to")) if isinstance(datadir, dict) else None
    return as_resolved(node.data_dir, recorded)


def node_config(facts: Facts, node: NodeView) -> str | None:
    """This node's config file as the node resolved it."""
    if not node.config_path:
        return None
    return as_resolved(node.config_path, facts.get("config.realpath"))
