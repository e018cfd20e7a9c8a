"""Preflight, clock: is this node's clock synchronised, and by what?

``timedatectl show`` where systemd runs; otherwise the kernel's own NTP state, read with
``adjtimex(2)`` in read-only mode. The time daemons running are recorded either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from typing import Any

import psutil

from doctor.collect.command import run_command
from doctor.collect.deadline import Deadline
from doctor.errors import error_data

TIME_DAEMONS = ("chronyd", "ntpd", "systemd-timesyncd", "openntpd", "timesyncd")


class _Timex(ctypes.Structure):
    _fields_ = [  # noqa: RUF012 (ctypes reads this class attribute by name)("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("pad", ctypes.c_int * 11)]


STA_UNSYNC = 0x0040


def kernel_clock() -> dict[str, Any]:
    """The kernel's NTP state via adjtimex(2) read-only (modes=0): what timedatectl reports too."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError) as exc:
        return {"error": error_data(exc)}
    if state < 0:
        return {"error": {"kind": "error", "message": os.strerror(ctypes.get_errno())}}
    return {"synchronized": not (tx.status & STA_UNSYNC) and tx.maxerror < 16_000_000,
            "maxerror_us": tx.maxerror, "state": state, "unsync_flag": bool(tx.status & STA_UNSYNC)}


def time_sync(deadline: Deadline) -> dict[str, Any]:
    out: dict[str, Any] = {"systemd_booted": os.path.isdir("/run/systemd/system"), "daemons": sorted({p.info["name"] for p in psutil.process_iter(["name"])
                                              if p.info.get("name") in TIME_DAEMONS})}
    if shutil.which("timedatectl"):
        res = run_command(["timedatectl", "show"], deadline)
        props = dict(l.split("=", 1) for l in (res.get("stdout") or "").splitlines() if "=" in l)
        if res.get("exit_code") == 0 and "NTPSynchronized" in props:
            out.update(source="timedatectl", synchronized=props["NTPSynchronized"] == "yes", ntp=props.get("NTP"))
            return out
        out["timedatectl_error"] = res.get("error") or {"kind": "error", "message": (res.get("stderr") or "no output")[:300]}
    kc = kernel_clock()
    out["kernel"] = kc
    if "synchronized" in kc:
        out.update(source="adjtimex", synchronized=kc["synchronized"])
    else:
        out.update(source=None, synchronized=None)
    return out
