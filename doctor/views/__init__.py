"""Report sections: what the renderers show beyond the diagnoses and the checks.

A view describes instead of judging. Most are pure functions of the facts, like a check
(the cluster table, the event timeline, the versions); a few are built from the judged
report (the preflight checklist, the selection a run was limited to) and are registered
with ``of_report=True``, receiving the ``Report``. Each module registers its views with
``@view("name", commands=...)``; ``build_views`` puts every view's result for the command
into the report under its name (one name may have a different view per command), and the
renderers show the ones they have a section for (``doctor.render.sections``) — they never
go back to the facts.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doctor.errors import error_data
from doctor.facts import Facts

if TYPE_CHECKING:
    from doctor.pipeline import Report

REPORTING = ("run", "analyze", "replication", "preflight", "logs")  # every command that writes a report


@dataclass(frozen=True)
class _View:
    name: str
    fn: Callable[[Any], Any]
    commands: tuple[str, ...]
    of_report: bool


_VIEWS: list[_View] = []


def view(name: str, commands: tuple[str, ...] = ("run", "analyze"),
         of_report: bool = False) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    def wrap(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        _VIEWS[:] = [v for v in _VIEWS if not (v.name == name and set(v.commands) & set(commands))]
        _VIEWS.append(_View(name, fn, tuple(commands), of_report))
        return fn
    return wrap


def _load() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def build_views(facts: Facts, command: str = "run", report: Report | None = None) -> dict[str, Any]:
    """Every registered view's result for ``command``; a view that raises records its error instead.

    Views of the report are skipped when no report is given.
    """
    _load()
    out: dict[str, Any] = {}
    for v in sorted(_VIEWS, key=lambda v: v.name):
        if command not in v.commands or (v.of_report and report is None):
            continue
        try:
            value = v.fn(report if v.of_report else facts)
        except Exception as exc:
            value = {"error": error_data(exc)}
        if value is not None:
            out[v.name] = value
    return out
