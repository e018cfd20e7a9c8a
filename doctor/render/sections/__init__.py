"""Terminal sections for report views: ``@text_section("cluster")`` prints report["cluster"].

Sections are printed after the diagnoses and before the table of checks, in the
order of their ``order`` number.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from rich.console import Console

SectionFn = Callable[[Console, Any], None]
_SECTIONS: dict[str, tuple[int, SectionFn]] = {}


def text_section(name: str, order: int = 50) -> Callable[[SectionFn], SectionFn]:
    def wrap(fn: SectionFn) -> SectionFn:
        _SECTIONS[name] = (order, fn)
        return fn
    return wrap


def sections() -> list[tuple[str, SectionFn]]:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return [(name, fn) for name, (order, fn) in sorted(_SECTIONS.items(), key=lambda kv: (kv[1][0], kv[0]))]
