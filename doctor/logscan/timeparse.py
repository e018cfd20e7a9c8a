"""--since / --until as the user types them: a duration back from now (2h) or a date and time."""

from __future__ import annotations

import datetime as _dt
import time

from doctor.units import parse_duration


def time_bound(text: str, now: float | None = None) -> float:
    """Epoch seconds for '2h' (that long ago), '2024-08-28 19:00[:00]' or an ISO time; ValueError otherwise."""
    text = str(text).strip()
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text.lstrip("-"))
    except ValueError:
        pass
    try:
        dt = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a duration or a time: {text!r} (try 2h, 30m, 1d or '2024-08-28 19:00')") from None
    return dt.timestamp()
