"""Report sections derived from the facts (cluster table, event timeline, replication verdicts).

A view is a pure function of the facts, like a check, but it describes instead of
judging. Each module registers its views with ``@view("name")``; ``build_views``
puts every view's result into the report under its name, and the text renderer
prints the ones it has a section for (``doctor.render.sections``).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from doctor.errors import error_data
from doctor.facts import Facts

ViewFn = Callable[[Facts], Any]
_VIEWS: dict[str, tuple[ViewFn, tuple[str, ...]]] = {}


def view(name: str, commands: tuple[str, ...] = ("run", "analyze")) -> Callable[[ViewFn], ViewFn]:
    def wrap(fn: ViewFn) -> ViewFn:
        _VIEWS[name] = (fn, commands)
        return fn
    return wrap


def _load() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def build_views(facts: Facts, command: str = "run") -> dict[str, Any]:
    """Every registered view's result; a view that raises records its error instead."""
    _load()
    out: dict[str, Any] = {}
    for name, (fn, commands) in sorted(_VIEWS.items()):
        if command not in commands:
            continue
        try:
            value = fn(facts)
        except Exception as exc:
            value = {"error": error_data(exc)}
        if value is not None:
            out[name] = value
    return out
