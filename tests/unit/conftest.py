"""Shared helpers for the fast suite: load a facts fixture and judge it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from doctor.facts import Facts
from doctor.pipeline import Report, analyze

FIXTURES = Path(__file__).parent / "fixtures"


def read_fixture(path: Path) -> dict:
    """A fixture's facts. A fixture of the form ``{"base": NAME, "set": {dotted.path: value}}`` is the
    fixture NAME next to it with those facts replaced: one broken item on a healthy snapshot (a number in
    the path is a list index)."""
    data = json.loads(path.read_text())
    if set(data) != {"base", "set"}:
        return data
    out = copy.deepcopy(read_fixture(path.parent / data["base"]))
    for dotted, value in data["set"].items():
        node = out
        *parents, last = dotted.split(".")
        for p in parents:  # a number steps into a list (cluster.members.2.facts...)
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return out


def load_facts(name: str) -> Facts:
    return Facts(read_fixture(FIXTURES / name))


@pytest.fixture
def judge():
    """judge('disk-full.json', only=[...]) -> Report"""

    def _judge(name: str, profiles=("run", "replication"), **kw) -> Report:
        return analyze(load_facts(name), profiles=profiles, **kw)

    return _judge
