"""Which values read from a log line may reach a fix's commands: only those the facts confirm.

Anyone who can write to a log (a client's user name lands in a failed-login line) chooses what a
pattern's groups capture, so a captured value is a claim, not a fact. ``confirmed`` lets a value
through only when this node's config or the DCS says the same (the data dir is the configured one,
the member is a member, the endpoint is a configured endpoint), or when its shape leaves nothing to
choose (a number, a replication slot name). Every other value stays text for the reader
(``log_value_<name>``) and the command it would have filled stays generic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

DEFAULT_ETCD = "http://127.0.0.1:2379"
_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+=,]{1,255}")
_NUMBER = re.compile(r"\d{1,19}")
# PostgreSQL's own rule for slot names (ReplicationSlotValidateName): lower-case letters, digits, underscore.
_SLOT = re.compile(r"[a-z0-9_]{1,63}")
_ENDPOINT = re.compile(r"https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]):\d{1,5}")
# Patroni moves a failed bootstrap's data dir aside as <data_dir>.failed, or <data_dir>_<time> (older releases).
_FAILED_SUFFIX = re.compile(r"(?:\.failed|_[0-9][0-9-]{0,30})")


def _path(value: Any) -> str | None:
    text = str(value or "")
    return os.path.normpath(text) if text.startswith("/") else None


def _same_path(value: str, configured: Any) -> bool:
    want = _path(configured)
    return want is not None and _path(value) == want


def _failed_dir(value: str, node: dict[str, Any]) -> bool:
    data_dir = _path(node.get("data_dir"))
    return data_dir is not None and value.startswith(data_dir) and bool(_FAILED_SUFFIX.fullmatch(value[len(data_dir):]))


def _pidfile(value: str, node: dict[str, Any]) -> bool:
    data_dir = _path(node.get("data_dir"))
    return data_dir is not None and _same_path(value, os.path.join(data_dir, "postmaster.pid"))


def _member(value: str, node: dict[str, Any]) -> bool:
    return value in {str(n) for n in node.get("known_members") or ()} | {str(node.get("name"))}


def _api_url(value: str, node: dict[str, Any]) -> bool:
    known = {str(u).rstrip("/") for u in node.get("known_api_urls") or ()} | {str(node.get("rest_url") or "")}
    return value.rstrip("/") in known - {""} or value.rstrip("/").rsplit("/", 1)[0] in known - {""}


def _endpoints(value: str, node: dict[str, Any]) -> bool:
    configured = str(node.get("etcd_endpoints") or DEFAULT_ETCD)
    items = value.split(",")
    if configured == DEFAULT_ETCD:  # no endpoints in the config: the log's, if they are plain host:port URLs
        return all(_ENDPOINT.fullmatch(i) for i in items)
    return set(items) <= set(configured.split(","))


def _user(value: str, node: dict[str, Any]) -> bool:
    return value in {str(node.get("replication_user")), str(node.get("superuser"))}


# value name -> how the facts confirm it
CONFIRM: dict[str, Callable[[str, dict[str, Any]], bool]] = {
    "data_dir": lambda v, n: _same_path(v, n.get("data_dir")),
    "failed_dir": _failed_dir,
    "pidfile": _pidfile,
    "member": _member,
    "name": lambda v, n: v == str(n.get("name")),
    "member_api_url": _api_url,
    "etcd_endpoints": _endpoints,
    "slot": lambda v, n: bool(_SLOT.fullmatch(v)),
    "user": _user,
    "replication_user": _user,
}


def confirmed(name: str, value: Any, node: dict[str, Any]) -> bool:
    """May this value, taken from a log line, fill ``name`` in a fix's commands?

    A number always may; a value that starts with ``-`` never (it would read as an option); a name
    with a fact to compare (``CONFIRM``) only when the fact agrees; a name no fact speaks of (a
    team's own playbook's value) only when it is one plain word, which quoting leaves as it is.
    """
    text = str(value)
    if text.startswith("-"):
        return False
    if _NUMBER.fullmatch(text):
        return True
    check = CONFIRM.get(name)
    if check is not None:
        return check(text, node)
    return bool(_PLAIN.fullmatch(text))
