"""Shared helpers for the fast suite: load a facts fixture and judge it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.facts import Facts
from doctor.pipeline import Report, analyze

FIXTURES = Path(__file__).parent / "fixtures"


def load_facts(name: str) -> Facts:
    return Facts(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def judge():
    """judge('disk-full.json', only=[...]) -> Report"""

    def _judge(name: str, profiles=("run", "replication"), **kw) -> Report:
        return analyze(load_facts(name), profiles=profiles, **kw)

    return _judge
