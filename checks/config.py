"""patroni.yml: does it parse, and is it something Patroni can run with."""

from __future__ import annotations

from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, warn
from doctor.model.node import is_loopback, is_wildcard, split_host_port

REQUIRED = (
    ("scope",), ("name",), ("restapi", "listen"), ("restapi", "connect_address"),
    ("postgresql", "data_dir"), ("postgresql", "listen"), ("postgresql", "connect_address"),
    ("postgresql", "authentication", "superuser", "username"),
    ("postgresql", "authentication", "replication", "username"),
)
OTHER_DCS = ("consul", "zookeeper", "exhibitor", "kubernetes", "raft")
TIMING_DEFAULTS = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}


@check("config.yaml", "patroni.yml parses as YAML", playbook="config-invalid-yaml",
       profiles=("run", "preflight", "replication"), needs=("config",))
def yaml_parses(ctx: CheckContext) -> Verdict:
    cfg = ctx.facts.get("config") or {}
    err = cfg.get("yaml_error")
    if not err:
        return ok(f"{cfg.get('path')} parses as YAML")
    where = f"line {err['line']}, column {err['column']}" if err.get("line") else "the file"
    hints = err.get("hints") or []
    summary = f"{cfg.get('path')} does not parse: {where}: {err.get('problem')}"
    if hints:
        summary += f" — {hints[0]}"
    evidence = [f"{where}: {err.get('message')}"]
    if err.get("line_text") is not None:
        evidence.append(f"line {err['line']}: {err['line_text']!r}")
    evidence += [f"hint: {h}" for h in hints[1:]]
    return fail(summary, evidence=evidence,
                values={"line": err.get("line") or 1, "column": err.get("column") or 1,
                        "yaml_problem": err.get("problem"), "tab_lines": err.get("tab_lines") or [],
                        "tab_fixes": err.get("tab_fixes") or []})


def _get(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node






def _timing(ctx: CheckContext) -> tuple[dict[str, Any], str]:
    """ttl/loop_wait/retry_timeout as live in the DCS when known, else from bootstrap.dcs."""
    live = ctx.facts.get("dcs.config")
    if isinstance(live, dict) and not live.get("error") and any(k in live for k in TIMING_DEFAULTS):
        return {k: live.get(k, d) for k, d in TIMING_DEFAULTS.items()}, "the DCS /config key"
    boot = ctx.node.get("bootstrap", "dcs") or {}
    boot = boot if isinstance(boot, dict) else {}
    return {k: boot.get(k, d) for k, d in TIMING_DEFAULTS.items()}, "bootstrap.dcs"


def _multi_host(ctx: CheckContext) -> bool:
    """Does the cluster span hosts? Seen from non-loopback etcd endpoints or member addresses."""
    from urllib.parse import urlparse

    for url in ctx.node.etcd_endpoints:
        host = urlparse(url).hostname or ""
        if host and not is_loopback(host):
            return True
    for m in ctx.facts.get("dcs.members") or []:
        host = str((m or {}).get("host") or "")
        if host and not is_loopback(host) and not is_wildcard(host):
            return True
    return False


@check("config.patroni", "patroni.yml is valid for Patroni", playbook="config-invalid",
       profiles=("run", "preflight", "replication"), needs=("config.data",))
def config_valid(ctx: CheckContext) -> list[Verdict] | Verdict:
    config = ctx.facts.get("config.data") or {}
    path = ctx.facts.get("config.path")
    problems: list[str] = []
    warnings: list[str] = []
    for key in REQUIRED:
        if _get(config, key) in (None, ""):
            problems.append(f"{'.'.join(key)} is not set")
    if not any(isinstance(config.get(s), dict) for s in ("etcd3", "etcd")):
        other = [s for s in OTHER_DCS if s in config]
        problems.append("no etcd3: (or etcd:) section" + (f"; found {', '.join(other)}, which pgdoctor does not examine" if other else ""))
    for key in ("scope", "name"):
        if config.get(key) is not None and not isinstance(config.get(key), (str, int)):
            problems.append(f"{key} must be a string, not a {type(config[key]).__name__}")
    for section in ("restapi", "postgresql"):
        if section in config and not isinstance(config[section], dict):
            problems.append(f"{section} must be a mapping, not a {type(config[section]).__name__}")
    for key in (("restapi", "listen"), ("restapi", "connect_address"), ("postgresql", "listen"),
                ("postgresql", "connect_address")):
        value = _get(config, key)
        if value in (None, ""):
            continue
        text = str(value)
        port_text = text.rpartition(":")[2] if ":" in text else ""
        if not port_text.strip().isdigit():
            problems.append(f"{'.'.join(key)} {text!r} has no numeric port (expected host:port)")
        elif not 0 < int(port_text) < 65536:
            problems.append(f"{'.'.join(key)} port {port_text} is out of range")
    multi = _multi_host(ctx)
    for key in (("restapi", "connect_address"), ("postgresql", "connect_address")):
        hosts, _ = split_host_port(_get(config, key))
        for host in hosts:
            if is_wildcard(host):
                problems.append(f"{'.'.join(key)} uses the wildcard address {host}: other members cannot connect to it")
            elif is_loopback(host) and multi:
                problems.append(f"{'.'.join(key)} uses the loopback address {host}, but the cluster spans hosts: "
                                "other members cannot reach it")
    timing, source = _timing(ctx)
    try:
        ttl, loop_wait, retry = (int(timing["ttl"]), int(timing["loop_wait"]), int(timing["retry_timeout"]))
    except (TypeError, ValueError):
        problems.append(f"ttl/loop_wait/retry_timeout in {source} are not numbers: {timing}")
    else:
        if loop_wait + 2 * retry > ttl:
            warnings.append(
                f"loop_wait + 2*retry_timeout <= ttl is violated in {source}: {loop_wait} + 2*{retry} = "
                f"{loop_wait + 2 * retry} > {ttl}; Patroni silently shrinks loop_wait/retry_timeout")
        if ttl < 20:
            warnings.append(f"ttl {ttl} in {source} is below Patroni's minimum of 20")
    sync_count = _get(config, ("bootstrap", "dcs", "synchronous_node_count"))
    live_count = ctx.facts.get("dcs.config.synchronous_node_count")
    for value, where in ((sync_count, "bootstrap.dcs"), (live_count, "the DCS /config key")):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"synchronous_node_count {value!r} in {where} must be an integer >= 1")
    evidence = []
    validate = ctx.facts.get("config.validate") or {}
    if validate.get("problems"):
        evidence.append("patroni --validate-config --ignore-listen-port says:")
        evidence.extend(f"  {line}" for line in validate["problems"][:15])
    elif validate.get("available") and validate.get("exit_code") == 0:
        evidence.append("patroni --validate-config --ignore-listen-port: no problems")
    if problems:
        return fail(f"{path}: " + "; ".join(problems), evidence=evidence + [f"also: {w}" for w in warnings],
                    values={"problems": problems, "ttl": timing.get("ttl"), "loop_wait": timing.get("loop_wait"),
                            "retry_timeout": timing.get("retry_timeout")})
    if warnings:
        return warn(f"{path}: " + "; ".join(warnings), evidence=evidence,
                    values={"problems": warnings, "ttl": timing.get("ttl"), "loop_wait": timing.get("loop_wait"),
                            "retry_timeout": timing.get("retry_timeout")})
    return ok(f"{path} has every key a Patroni node needs", evidence=evidence)
