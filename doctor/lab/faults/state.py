"""``<base>/fault.json``: the one active fault, what it touched, and the log sizes when it began."""

from __future__ import annotations

import contextlib
import json
import os

from ..layout import Layout


def write_state(lay: Layout, state: dict) -> None:
    tmp = lay.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, lay.state_file)


def read_state(lay: Layout | None = None) -> dict | None:
    lay = lay or Layout.from_env()
    try:
        return json.loads(lay.state_file.read_text())
    except (FileNotFoundError, ValueError):
        return None


def active_fault(lay: Layout | None = None) -> str | None:
    st = read_state(lay)
    return st.get("fault") if st else None


def clear_state(lay: Layout) -> None:
    with contextlib.suppress(FileNotFoundError):
        lay.state_file.unlink()
