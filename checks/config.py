"""patroni.yml: does it parse, and is it something Patroni can run with.

``config.patroni`` is at least as strict as ``patroni --validate-config``: the schema table
(doctor/config_schema.py) judged the real config when it was loaded, and whatever Patroni's own
validator objected to (its output is a fact) fails the check too, quoted. A few rules are
pgdoctor's own and stricter; they are listed in docs/architecture.md.
"""

from __future__ import annotations

import re
from typing import Any

from doctor.config_schema import config_problems, parse_int
from doctor.engine import CheckContext, Verdict, check, fail, ok, warn
from doctor.model.node import is_loopback, is_wildcard, split_host_port

OTHER_DCS = ("consul", "zookeeper", "exhibitor", "kubernetes", "raft")
TIMING_DEFAULTS = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
# Keys that must name something: Patroni takes an empty string, but nothing works with one.
NON_EMPTY = (("scope",), ("name",), ("postgresql", "authentication", "superuser", "username"),
             ("postgresql", "authentication", "replication", "username"))
# Patroni's REST API refuses a listen without a port at start; members reach a connect_address
# without one on port 80.
NEEDS_PORT = (("restapi", "listen"), ("restapi", "connect_address"))
# What Patroni's validator says about this machine at this moment rather than about the file:
# pgdoctor's own checks judge it from the facts (and name the real cause).
HOST_OBJECTIONS = (
    (re.compile(r" is not reachable$"), "whether the DCS answers is judged by the dcs checks"),
    (re.compile(r"Port \d+ is already in use"), "a taken port is judged by the ports checks"),
    (re.compile(r"Temporary failure in name resolution"), "name resolution failed for the moment"),
    (re.compile(r"^postgresql\.data_dir .*(doesn't look like a valid data directory|is not a directory"
                r"|data dir for the cluster is not empty|doesn't match with 'postgres --version')"),
     "what the data directory holds is judged by the datadir checks"),
)
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b")


@check("config.yaml", "patroni.yml parses as YAML", playbook="config-invalid-yaml",
       profiles=("run", "preflight", "replication"), needs=("config",))
def yaml_parses(ctx: CheckContext) -> Verdict:
    cfg = ctx.facts.get("config") or {}
    err = cfg.get("yaml_error")
    enc = cfg.get("encoding_error")
    if not err and not enc:
        return ok(f"{cfg.get('path')} parses as YAML")
    if enc and not err:
        return fail(f"{cfg.get('path')} is not UTF-8: {enc.get('problem')}",
                    evidence=[f"byte offset {enc.get('offset')}: {enc.get('byte')}",
                              "Patroni opens the file as UTF-8 and exits with UnicodeDecodeError"],
                    values={"line": enc.get("line") or 1, "column": enc.get("column") or 1,
                            "yaml_problem": enc.get("problem"), "encoding": enc.get("encoding") or "",
                            "iconv_from": {"Latin-1": "LATIN1"}.get(enc.get("encoding"), enc.get("encoding") or ""),
                            "byte_offset": enc.get("offset"), "tab_lines": [], "tab_fixes": []})
    where = f"line {err['line']}, column {err['column']}" if err.get("line") else "the file"
    hints = err.get("hints") or []
    summary = f"{cfg.get('path')} does not parse: {where}: {err.get('problem')}"
    if hints:
        summary += f" — {hints[0]}"
    evidence = [f"{where}: {err.get('message')}"]
    if err.get("line_text") is not None:
        evidence.append(f"line {err['line']}: {err['line_text']!r}")
    evidence += [f"hint: {h}" for h in hints[1:]]
    if enc:
        evidence.append(f"also: {enc.get('problem')}")
    return fail(summary, evidence=evidence,
                values={"line": err.get("line") or 1, "column": err.get("column") or 1,
                        "yaml_problem": err.get("problem"), "tab_lines": err.get("tab_lines") or [],
                        "tab_fixes": err.get("tab_fixes") or [], "encoding": (enc or {}).get("encoding") or ""})


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


def _url_host(url: str) -> str:
    """The host of an endpoint URL, without its user:password@ part (which may be a redaction token)."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2]
    hosts, _ = split_host_port(netloc)
    return hosts[0] if hosts else ""


def _multi_host(ctx: CheckContext) -> bool:
    """Does the cluster span hosts? Seen from non-loopback etcd endpoints or member addresses."""
    for url in ctx.node.etcd_endpoints:
        host = _url_host(url)
        if host and not is_loopback(host):
            return True
    for m in ctx.facts.get("dcs.members") or []:
        host = str((m or {}).get("host") or "")
        if host and not is_loopback(host) and not is_wildcard(host):
            return True
    return False


def patroni_objections(validate: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What ``patroni --validate-config`` objected to: (about the config, about this host right now).

    Its output is one objection per line, or a traceback when Patroni could not even load the file
    (then the exception's lines are the objection).
    """
    if not validate.get("available") or validate.get("exit_code") in (0, None):
        return [], []
    lines = [str(line).rstrip() for line in validate.get("problems") or [] if str(line).strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        start = max((i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)), default=len(lines) - 1)
        return [" ".join(line.strip() for line in lines[start:])], []
    about_config: list[str] = []
    about_host: list[str] = []
    for line in lines:
        (about_host if any(rx.search(line) for rx, _why in HOST_OBJECTIONS) else about_config).append(line)
    if not about_config and not about_host:
        about_config.append(f"exit code {validate.get('exit_code')} without a word")
    return about_config, about_host


def own_rules(config: dict[str, Any], ctx: CheckContext, judged: set[str]) -> list[str]:
    """pgdoctor's rules beyond Patroni's schema: an etcd DCS, names that are not empty, REST ports, and
    connect addresses other hosts can reach. ``judged``: paths the schema objected to already."""
    problems: list[str] = []
    if not any(isinstance(config.get(s), dict) for s in ("etcd3", "etcd")):
        other = [s for s in OTHER_DCS if s in config]
        problems.append("no etcd3: (or etcd:) section" + (f"; found {', '.join(other)}, which pgdoctor does not examine" if other else ""))
    for key in NON_EMPTY:
        if _get(config, key) == "":
            problems.append(f"{'.'.join(key)} is an empty string")
    for key in NEEDS_PORT:
        value = _get(config, key)
        if isinstance(value, str) and value.strip() and ".".join(key) not in judged \
                and split_host_port(value)[1] is None:
            problems.append(f"{'.'.join(key)} {value!r} has no port (expected host:port)")
    multi = _multi_host(ctx)
    for key in (("restapi", "connect_address"), ("postgresql", "connect_address")):
        value = _get(config, key)
        if not isinstance(value, str):
            continue
        hosts, _ = split_host_port(value)
        for host in hosts:
            if is_wildcard(host) and host not in ("0.0.0.0", "*"):  # those two the schema names already
                problems.append(f"{'.'.join(key)} uses the wildcard address {host}: other members cannot connect to it")
            elif is_loopback(host) and multi and host not in ("127.0.0.1", "::1", "localhost"):
                problems.append(f"{'.'.join(key)} uses the loopback address {host}, but the cluster spans hosts: "
                                "other members cannot reach it")
    return problems


def _live_dcs_problems(ctx: CheckContext, timing: dict[str, Any], source: str) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the timing rule and synchronous_node_count; bootstrap.dcs types are the schema's."""
    problems: list[str] = []
    warnings: list[str] = []
    ttl, loop_wait, retry = (parse_int(timing[k]) for k in ("ttl", "loop_wait", "retry_timeout"))
    if ttl is None or loop_wait is None or retry is None:
        if source != "bootstrap.dcs":
            problems.append(f"ttl/loop_wait/retry_timeout in {source} are not numbers: {timing}")
    else:
        if loop_wait + 2 * retry > ttl:
            warnings.append(
                f"loop_wait + 2*retry_timeout <= ttl is violated in {source}: {loop_wait} + 2*{retry} = "
                f"{loop_wait + 2 * retry} > {ttl}; Patroni silently shrinks loop_wait/retry_timeout")
        if ttl < 20 and source != "bootstrap.dcs":
            warnings.append(f"ttl {ttl} in {source} is below Patroni's minimum of 20")
    live_count = ctx.facts.get("dcs.config.synchronous_node_count")
    if live_count is not None and (not isinstance(live_count, int) or isinstance(live_count, bool) or live_count < 1):
        problems.append(f"synchronous_node_count {live_count!r} in the DCS /config key must be an integer >= 1")
    return problems, warnings


@check("config.patroni", "patroni.yml is valid for Patroni", playbook="config-invalid",
       profiles=("run", "preflight", "replication"), needs=("config.data",))
def config_valid(ctx: CheckContext) -> list[Verdict] | Verdict:
    config = ctx.facts.get("config.data") or {}
    path = ctx.facts.get("config.path")
    schema = ctx.facts.get("config.schema")
    if not isinstance(schema, list):  # a snapshot from before the schema was a fact: judge the copy it has
        schema = config_problems(config)
    schema = [p for p in schema if isinstance(p, dict)]
    problems = [str(p.get("text")) for p in schema] + own_rules(config, ctx, {str(p.get("path")) for p in schema})
    timing, source = _timing(ctx)
    live_problems, warnings = _live_dcs_problems(ctx, timing, source)
    problems += live_problems
    validate = ctx.facts.get("config.validate") or {}
    patroni_says, host_says = patroni_objections(validate)
    evidence = []
    if validate.get("problems"):
        evidence.append("patroni --validate-config --ignore-listen-port says:")
        evidence.extend(f"  {line}" for line in validate["problems"][:15])
    elif validate.get("available") and validate.get("exit_code") == 0:
        evidence.append("patroni --validate-config --ignore-listen-port: no problems")
    elif validate.get("skipped") and validate.get("reason"):
        evidence.append(f"patroni --validate-config: not run: {validate['reason']}")
    for line in host_says:
        why = next(w for rx, w in HOST_OBJECTIONS if rx.search(line))
        evidence.append(f"not a config problem ({why}): {line}")
    values = {"problems": problems, "patroni_objections": patroni_says, "ttl": timing.get("ttl"),
              "loop_wait": timing.get("loop_wait"), "retry_timeout": timing.get("retry_timeout")}
    if patroni_says:
        quoted = "; ".join(" ".join(line.split()) for line in patroni_says[:3])
        summary = f"{path}: " + ("; ".join(problems) + f" (Patroni's validator: {quoted})" if problems
                                 else f"Patroni's validator rejects it: {quoted}")
        return fail(summary, evidence=evidence + [f"also: {w}" for w in warnings], values=values)
    if problems:
        return fail(f"{path}: " + "; ".join(problems), evidence=evidence + [f"also: {w}" for w in warnings], values=values)
    if warnings:
        return warn(f"{path}: " + "; ".join(warnings), evidence=evidence, values={**values, "problems": warnings})
    return ok(f"{path} has every key a Patroni node needs", evidence=evidence)
