"""Capture the ``logs`` facts fixtures from real reads of a FIFO under a deadline, as ``pgdoctor run`` reads logs.

A FIFO is given a real lab log (``sample_logs/healthy.bootstrap.patroni.log``) by a writer that then either
closes it (``healthy.logs.json``: read to its end) or stalls without closing it, as a hung ``journalctl`` or a
stuck pipe does (``logs-incomplete.json``: stopped at the deadline)::

    .venv/bin/python tests/unit/capture_log_fixtures.py
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

from doctor.logscan.sources import FileSource
from doctor.pipeline import collect_logs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "unit" / "fixtures"
LOG = ROOT / "sample_logs" / "healthy.bootstrap.patroni.log"
DEADLINE = 5.0  # seconds
STALL = DEADLINE + 10  # the writer keeps the FIFO open, silent, past the deadline


def capture(stall: float) -> dict:
    """The ``logs`` facts of reading the FIFO whose writer stays silent for ``stall`` seconds before closing it."""
    with tempfile.TemporaryDirectory() as tmp:
        fifo = Path(tmp) / "patroni.log"
        os.mkfifo(fifo)

        def write() -> None:
            with open(fifo, "w") as fh:  # blocks until the collector opens the FIFO
                fh.write(LOG.read_text())
                fh.flush()
                time.sleep(stall)

        threading.Thread(target=write, daemon=True).start()
        facts = collect_logs([FileSource(str(fifo))], None, None, "auto", None, None,
                             deadline=time.monotonic() + DEADLINE)
        return {"logs": facts.data["logs"]}


if __name__ == "__main__":
    for name, stall in (("healthy.logs", 0.0), ("logs-incomplete", STALL)):
        path = FIXTURES / f"{name}.json"
        path.write_text(json.dumps(capture(stall), indent=1, sort_keys=True) + "\n")
        print(f"wrote {path}")
