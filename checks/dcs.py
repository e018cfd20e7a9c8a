"""etcd as Patroni sees it: does the config's DCS section speak an API the server serves,
and can every endpoint be reached with a quorum behind it."""

from __future__ import annotations

from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip, warn


def _endpoints(ctx: CheckContext) -> list[dict[str, Any]]:
    return [e for e in ctx.facts.get("dcs.endpoints") or [] if isinstance(e, dict)]


def _err(e: dict[str, Any]) -> str:
    err = e.get("error") or {}
    return f"{err.get('kind', 'error')}: {err.get('message', '')}".strip()


@check("dcs.api", "the config's DCS section speaks an API etcd serves", playbook="dcs-api-mismatch",
       profiles=("run", "preflight", "replication"), needs=("dcs",), errors_ok=True)
def dcs_api(ctx: CheckContext) -> Verdict:
    section = ctx.facts.get("dcs.section")
    if not section:
        return skip("no etcd3:/etcd: section in the config")
    answering = [e for e in _endpoints(ctx) if e.get("version")]
    if not answering:
        return skip("no etcd endpoint answered; cannot tell which API it serves")
    path = ctx.facts.get("config.path")
    if section == "etcd":
        v2 = [e for e in answering if isinstance(e.get("v2"), dict) and "status" in e["v2"]]
        if v2 and not any(e["v2"].get("served") for e in v2):
            e = v2[0]
            versions = sorted({str(x.get("version")) for x in answering})
            return fail(
                f"{path} has an etcd: section (the etcd v2 API), but etcd {', '.join(versions)} at "
                f"{', '.join(x['url'] for x in v2)} does not serve v2: GET /v2/machines answers HTTP "
                f"{e['v2'].get('status')} ({e['v2'].get('body') or 'no body'}); Patroni loops on \"waiting on etcd\"",
                evidence=[f"{x['url']}/v2/machines: HTTP {x['v2'].get('status')} {x['v2'].get('body', '')}" for x in v2]
                + [f"{x['url']}/version: etcdserver {x.get('version')}" for x in answering]
                + [f"the v3 keys under {ctx.facts.get('dcs.prefix')} show members: "
                   + (", ".join(m.get('name', '?') for m in ctx.facts.get('dcs.members') or []) or "none")],
                values={"etcd_version": versions[0], "v2_status": e["v2"].get("status")})
        return ok(f"etcd at {answering[0]['url']} serves the v2 API the etcd: section uses")
    missing = [e for e in _endpoints(ctx) if (e.get("error") or {}).get("kind") == "not-found"]
    if missing:
        e = missing[0]
        return fail(f"etcd {e.get('version')} at {e['url']} has no v3 gateway at {e.get('api_prefix')}: "
                    f"{(e.get('error') or {}).get('message')}",
                    evidence=[f"{x['url']}: {_err(x)}" for x in missing], values={"etcd_version": e.get("version")})
    return ok(f"etcd {answering[0].get('version')} serves the v3 API at {answering[0].get('api_prefix')}")


@check("dcs.reachable", "etcd endpoints reachable with a quorum", playbook="dcs-unreachable",
       profiles=("run", "preflight", "replication"), needs=("dcs",), errors_ok=True)
def dcs_reachable(ctx: CheckContext) -> list[Verdict] | Verdict:
    err = ctx.facts.get("dcs.error")
    if err and err.get("kind") == "not-configured":
        return skip(err.get("message", "no DCS configured"))
    if err:
        return fail(f"etcd could not be examined: {err.get('kind')}: {err.get('message')}")
    eps = _endpoints(ctx)
    if not eps:
        return skip("no etcd endpoint in the config")
    q = ctx.facts.get("dcs.quorum") or {}
    section = ctx.facts.get("dcs.section")
    down = [e for e in eps if not e.get("version")]
    unhealthy = [e for e in eps if e.get("version") and not e.get("ok")]
    evidence = [f"{e['url']}: " + (f"etcd {e.get('version')}, health {e.get('health')}, leader "
                                   f"{e.get('leader_id') or 'none'}, raft term {e.get('raft_term')}, "
                                   f"{e.get('latency_ms')} ms" if e.get("version") else _err(e))
                for e in eps]
    values = {"down_endpoints": ",".join(e["url"] for e in down), "healthy": q.get("healthy"),
              "total": q.get("total"), "needed": q.get("needed")}
    if not q.get("has_quorum"):
        if not any(e.get("version") for e in eps):
            kinds = sorted({(e.get("error") or {}).get("kind", "error") for e in eps})
            return fail(f"none of the {len(eps)} etcd endpoints in the {section}: section answers "
                        f"({', '.join(e['url'] + ' ' + (e.get('error') or {}).get('kind', 'error') for e in eps)}); "
                        "Patroni cannot read or renew any key",
                        evidence=evidence, values={**values, "kinds": kinds, "no_quorum": True, "all_down": True})
        alive = [e for e in eps if e.get("version")]
        return fail(f"etcd has no quorum: {len(alive)} of {q.get('total')} members answer "
                    f"({', '.join(e['url'] for e in alive)}) but none has a raft leader; {q.get('needed')} healthy "
                    f"members are needed" + (f"; down: {', '.join(e['url'] for e in down)}" if down else ""),
                    evidence=evidence, values={**values, "no_quorum": True})
    verdicts: list[Verdict] = []
    for e in down + unhealthy:
        verdicts.append(warn(f"etcd endpoint {e['url']} " + (f"does not answer ({_err(e)})" if e in down else
                             f"answers but is unhealthy ({_err(e)})")
                             + f"; the cluster keeps quorum with {q.get('healthy')} of {q.get('total')} members",
                             evidence=evidence, values={**values, "endpoint": e["url"]}, subject=e["url"]))
    slow = [e for e in eps if e.get("ok") and isinstance(e.get("latency_ms"), (int, float)) and e["latency_ms"] > 1000]
    for e in slow:
        verdicts.append(warn(f"etcd endpoint {e['url']} answered in {e['latency_ms']:.0f} ms; a slow DCS makes "
                             "Patroni miss its loop and lose the leader lock", evidence=evidence, subject=e["url"]))
    if not verdicts:
        verdicts.append(ok(f"all {len(eps)} etcd endpoints healthy, quorum {q.get('healthy')}/{q.get('total')}",
                           evidence=evidence))
    return verdicts
