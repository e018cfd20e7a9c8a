"""Split brain: two writable primaries, or a writable primary that does not hold the leader key.

Either way two servers may accept writes that the other will never see. It is judged from what
the members say of themselves (``pg_is_in_recovery()`` of every member's PostgreSQL, their REST
role; the model's ``LeaderView``), against the ``/leader`` key as read.
"""

from __future__ import annotations

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip
from doctor.model import model_of


def writable_members(ctx: CheckContext) -> list[str]:
    """Members that say they are a writable primary (a standby leader is in recovery: not writable)."""
    lv = model_of(ctx.facts).leaders
    return sorted(n for n, r in lv.live.items() if r.role == "primary")


@check("cluster.split-brain", "one writable primary (no split brain)", "split-brain",
       profiles=("run", "replication", "verify"), needs=("dcs",), errors_ok=True)
def split_brain(ctx: CheckContext) -> Verdict:
    model = model_of(ctx.facts)
    lv = model.leaders
    if not lv.known:
        return skip("no member's role could be read (neither its REST API nor its PostgreSQL answered)")
    primaries = writable_members(ctx)
    holder = lv.dcs_leader if ctx.facts.dcs_keys_read else None
    rogue = [n for n in primaries if holder and n != holder]
    evidence = [f"{n}: {lv.live[n].evidence}" for n in primaries]
    evidence.append(f"leader key: {holder}" if holder else "leader key: not held" if ctx.facts.dcs_keys_read
                    else "leader key: not read")
    timelines = {m.name: m.timeline for m in model.members if m.name in primaries and m.timeline is not None}
    if timelines:
        evidence.append("timelines: " + ", ".join(f"{n} {t}" for n, t in sorted(timelines.items())))
    values = {"primaries": primaries, "rogue": rogue, "leader": holder,
              "member": (rogue or primaries[1:] or [None])[0]}
    if len(primaries) > 1:
        return fail(f"split brain: {len(primaries)} members are writable primaries ({', '.join(primaries)})"
                    + (f"; only {holder} holds the leader key" if holder else ""),
                    evidence=evidence, values=values, subject=",".join(primaries))
    if rogue:
        return fail(f"split brain: {rogue[0]} is a writable primary without the leader key, which {holder} holds",
                    evidence=evidence, values=values, subject=rogue[0])
    if primaries:
        return ok(f"one writable primary: {primaries[0]}" + (" (holds the leader key)" if holder == primaries[0] else ""))
    return ok("no member is a writable primary (see the leader item)")
