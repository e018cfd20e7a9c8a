"""JSON output: the stable, versioned contract for scripts (docs/json-output.md)."""

from __future__ import annotations

import json
from typing import Any


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str, ensure_ascii=False) + "\n"
