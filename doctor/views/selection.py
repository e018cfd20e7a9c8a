"""The ``selection`` report section: which checks a run was limited to (``--only``/``--skip``),
so that the verdict can say that what did not run was not judged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doctor.views import view

if TYPE_CHECKING:
    from doctor.pipeline import Report


@view("selection", commands=("run", "analyze", "replication", "cluster"), of_report=True)
def selection_view(report: Report) -> dict[str, Any] | None:
    """The checks a run was limited to (``--only``/``--skip``), so the verdict can say so."""
    sel = report.selection
    return {"only": sel.only, "skip": sel.skip} if sel.only or sel.skip else None
