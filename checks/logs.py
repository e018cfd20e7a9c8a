"""Whether every log source was read to its end: a verdict about logs pgdoctor stopped reading is never "healthy"."""

from __future__ import annotations

from doctor.engine import CheckContext, Verdict, check, ok, skip, warn


@check("logs.read", "logs read to their end", "logs-incomplete", profiles=("run", "logs"), needs=("logs",))
def logs_read(ctx: CheckContext) -> Verdict:
    logs = ctx.facts.get("logs") or {}
    if logs.get("skipped"):
        return skip(str(logs["skipped"]))
    sources = [s for s in logs.get("sources") or [] if isinstance(s, dict)]
    stopped = [s for s in sources if s.get("stopped")]
    if not stopped:
        return ok(f"{len(sources)} log source(s) read to their end" if sources else "no log source to read")
    evidence = [f"{s.get('label')}: {s.get('stopped')} ({s.get('lines', 0)} lines read)" for s in stopped[:10]]
    if len(stopped) > 10:
        evidence.append(f"and {len(stopped) - 10} more")
    names = ", ".join(str(s.get("label")) for s in stopped[:3]) + (" …" if len(stopped) > 3 else "")
    return warn(f"{len(stopped)} of {len(sources)} log source(s) not read to their end ({names}): problems in "
                "the part not read are not in this report", evidence=evidence,
                values={"stopped_sources": [s.get("label") for s in stopped]})
