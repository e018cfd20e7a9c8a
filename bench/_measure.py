"""One timed run of a command: wall and CPU seconds, peak RSS of its largest process and of its tree.

Shared by the benches so that both sides of every comparison are measured the same way.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def measure(argv: list[str], out: Path, env: dict[str, str], ok_codes: tuple[int, ...] = (0, 1, 2)) -> dict[str, float]:
    """Run ``argv`` with stdout to ``out``: wall and CPU seconds (``wait4``), peak RSS of the one largest
    process (``ru_maxrss``, children included) and peaks over the whole tree (psutil, polled every 10 ms):
    the sum of RSS, which counts pages forked processes share once per process, and the sum of PSS
    (each shared page divided among its sharers: the memory the tree really holds).

    Stdout goes to a file, never /dev/null: GNU grep stops at the first match when it sees /dev/null.
    """
    peak_tree = peak_pss = 0
    with open(out, "wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        done = threading.Event()

        def poll() -> None:
            nonlocal peak_tree, peak_pss
            try:
                top = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not done.is_set():
                total = pss = 0
                try:
                    for p in [top, *top.children(recursive=True)]:
                        full = p.memory_full_info()
                        total += full.rss
                        pss += getattr(full, "pss", full.rss)
                except psutil.Error:
                    pass
                peak_tree = max(peak_tree, total)
                peak_pss = max(peak_pss, pss)
                done.wait(0.01)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {err[-400:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_one": usage.ru_maxrss / 1024,
            "rss_tree": peak_tree / 2**20, "pss_tree": peak_pss / 2**20, "exit": float(proc.returncode)}
