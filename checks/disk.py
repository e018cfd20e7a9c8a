"""Free space on the filesystems that hold the data dir, WAL and logs."""

from __future__ import annotations

from doctor.engine import CheckContext, Verdict, check, fail, ok, warn
from doctor.units import human_bytes

DEFAULTS = {"disk_warn_pct": 15.0, "disk_warn_bytes": 2 * 1024**3, "disk_fail_pct": 5.0, "disk_fail_bytes": 512 * 1024**2}


@check("disk.space", "free disk space", playbook="disk-full", profiles=("run", "preflight"), needs=("system.disk",))
def disk_space(ctx: CheckContext) -> list[Verdict]:
    t = {k: ctx.settings.get(k, v) for k, v in DEFAULTS.items()}
    by_fs: dict[str, dict] = {}
    for entry in ctx.facts.dicts_at("system.disk"):
        if entry.get("error") or not all(isinstance(entry.get(k), (int, float)) for k in ("free", "total", "used")):
            continue  # not measured (or not a measurement: a tampered bundle)
        key = str(entry.get("mountpoint") or entry.get("checked"))
        fs = by_fs.setdefault(key, dict(entry, roles=[]))
        fs["roles"].append(f"{entry['role']} ({entry['path']})")
    verdicts = []
    for mount, fs in by_fs.items():
        free, pct = fs["free"], fs.get("free_percent", 100.0)
        if not isinstance(pct, (int, float)):
            pct = 100.0 * free / fs["total"] if fs["total"] else 100.0
        roles = ", ".join(fs["roles"])
        what = f"{mount} holding {roles}: {human_bytes(free)} free ({pct:.1f}% of {human_bytes(fs['total'])})"
        values = {"mountpoint": mount, "free": free, "free_human": human_bytes(free), "free_pct": pct,
                  "path": fs["path"], "device": fs.get("device")}
        evidence = [f"df {fs['checked']}: {human_bytes(fs['used'])} used of {human_bytes(fs['total'])}, "
                    f"{human_bytes(free)} free, inodes free {fs.get('inodes_free')}"]
        if pct < t["disk_fail_pct"] or free < t["disk_fail_bytes"]:
            verdicts.append(fail(what + f" — below {t['disk_fail_pct']:g}% or {human_bytes(t['disk_fail_bytes'])}",
                                 evidence=evidence, values=values, subject=mount))
        elif pct < t["disk_warn_pct"] or free < t["disk_warn_bytes"]:
            verdicts.append(warn(what + f" — below {t['disk_warn_pct']:g}% or {human_bytes(t['disk_warn_bytes'])}",
                                 evidence=evidence, values=values, subject=mount))
        else:
            verdicts.append(ok(what, subject=mount))
    return verdicts
