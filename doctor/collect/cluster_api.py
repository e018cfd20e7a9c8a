"""``run --cluster``: the other members' REST API beyond ``/patroni`` — ``/config``, ``/history`` and
``/cluster`` of each member ``patroni_api`` found (the DCS member keys and this node's ``/cluster``).

What every member answers side by side shows what one member's answers cannot: a member whose
``/config`` differs reads other DCS keys. Each member's calls run at once, within the ``member`` share
(Patroni itself gives members 2 s), with the config's REST credentials, as ``patroni_api``'s are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doctor.collect import CollectContext, collector
from doctor.collect._parallel import parallel
from doctor.collect.deadline import GRACE
from doctor.collect.patroni_api import _auth_kw, fetch
from doctor.model.node import NodeView

MEMBER_PATHS = ("config", "history", "cluster")


@collector("cluster_api", profiles=("cluster",), after=("patroni_api",))
def collect_cluster_api(ctx: CollectContext) -> dict[str, Any]:
    node = NodeView(ctx.config or {}, ctx.config_path)
    api = ctx.upstream.result("patroni_api")
    found = api.get("members")
    members: dict[str, Any] = found if isinstance(found, dict) else {}
    targets = {name: str(m["api_url"]) for name, m in members.items()
               if isinstance(m, dict) and m.get("api_url") and not m.get("self")}
    assert ctx.deadline is not None  # the runner gives every collector its share
    timeout = ctx.deadline.share("member")

    def call(base: str, path: str) -> Callable[[], dict[str, Any]]:
        return lambda: fetch(f"{base}/{path}", _auth_kw(node, base, timeout))

    calls = {f"{name}\0{p}": call(base, p) for name, base in targets.items() for p in MEMBER_PATHS}
    got = parallel(calls, timeout + GRACE,
                   lambda key: {"error": {"kind": "timeout", "message": f"no answer within {timeout:.0f}s"}})
    out: dict[str, Any] = {}
    for name, base in sorted(targets.items()):
        answers: dict[str, Any] = {"api_url": base}
        for p in MEMBER_PATHS:
            value = got.get(f"{name}\0{p}")
            answers[p] = value if isinstance(value, dict) else {"error": {"kind": "error", "message": str(value)}}
        out[name] = answers
    return {"members": out}
