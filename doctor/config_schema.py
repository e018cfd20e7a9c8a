"""What Patroni accepts in patroni.yml, as a table: keys, types, ranges, enums, required keys.

The constraints are those of Patroni 4.1's ``patroni --validate-config`` (its schema of types,
enums, required keys and host:port forms); the code is pgdoctor's own. ``config_problems``
judges a loaded config against the table and returns every objection as a path and a
sentence. It runs on the real config, before redaction, when the config is loaded (a secret
that is a list must not be judged after it became a redaction token); its result is a fact.

What the table does not judge, on purpose: whether DCS hosts answer and what the data
directory holds (the dcs.* and datadir.* checks do, from the facts of this moment), and
whether a listen port is taken (the ports.* checks).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Problem = tuple[str, str]  # (dotted path, what is wrong)

DCS_SECTIONS = ("consul", "etcd", "etcd3", "exhibitor", "kubernetes", "raft", "zookeeper")
# Connect addresses other members cannot use (Patroni refuses them by these exact spellings).
FORBIDDEN_CONNECT_HOSTS = ("127.0.0.1", "0.0.0.0", "*", "::1", "localhost")
# The server programs Patroni looks for in postgresql.bin_dir (pg_rewind is optional).
PG_BINARIES = ("pg_ctl", "initdb", "pg_controldata", "pg_basebackup", "postgres", "pg_isready")
_TIME_UNITS_IN_SECONDS = {"d": 86400.0, "h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                          r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$")
_SECRET_LEAF_RE = re.compile(r"(?:password|token|key_password|keyfile_password)$")


@dataclass
class Host:
    """Where the config is judged: the lookups that depend on this machine (None: judge the text only)."""

    which: Callable[[str, str | None], str | None] = lambda name, path: shutil.which(name, path=path)
    exists: Callable[[str], bool] = os.path.exists
    isdir: Callable[[str], bool] = os.path.isdir


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", type(None): "empty (null)"}.get(type(value), type(value).__name__)


def _shown(path: str, value: Any) -> str:
    """How a value appears in a problem: its type for secrets and collections, else a short repr."""
    if _SECRET_LEAF_RE.search(path.rsplit(".", 1)[-1]) or value is None or isinstance(value, (list, dict)):
        return _type_name(value)
    text = repr(value) if isinstance(value, (str, int, float, bool)) else f"a {type(value).__name__}: {value}"
    return text if len(text) <= 60 else text[:57] + "..."


# -- Patroni's number parsing (a config may say "10", 10.4 or "30min" where an integer is due) -------
_HEX_RE = re.compile(r"^[-+]?0x[0-9a-fA-F]+")
_OCT_RE = re.compile(r"^[-+]?0[0-7]*")
_DEC_RE = re.compile(r"^[-+]?(0|[1-9][0-9]*)")
_DBL_RE = re.compile(r"^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?")


def parse_int(value: Any, base_unit: str | None = None) -> int | None:
    """An integer the way Patroni reads one: 0x/0 prefixes, a decimal part rounded, a time unit when
    ``base_unit`` is "s"; None when it is not a finite number (a boolean is not one)."""
    text = str(value).strip()
    number: float | None = None
    rest = text
    for regex, base in ((_HEX_RE, 16), (_OCT_RE, 8), (_DEC_RE, 10)):
        m = regex.match(text)
        if m:
            number, rest = int(text[: m.end()], base), text[m.end():]
            break
    if (number is None and rest.startswith(".")) or (rest and rest[0] in ".eE"):
        m = _DBL_RE.match(text)
        number, rest = (float(text[: m.end()]), text[m.end():]) if m else (None, text)
    if number is None or (isinstance(number, float) and not math.isfinite(number)):
        return None
    unit = rest.strip()
    if unit:
        if base_unit != "s" or unit not in _TIME_UNITS_IN_SECONDS:
            return None
        number = number * _TIME_UNITS_IN_SECONDS[unit]
    return round(number)


def parse_bool(value: Any) -> bool | None:
    """on/true/yes/1 and off/false/no/0 in any case, as Patroni reads a boolean-ish setting."""
    text = str(value).lower()
    return True if text in ("on", "true", "yes", "1") else False if text in ("off", "false", "no", "0") else None


# -- rules --------------------------------------------------------------------------------------
class Rule:
    """One constraint on a value; ``judge`` yields the problems under ``path``."""

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        raise NotImplementedError


@dataclass
class Str(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, str):
            yield path, f"must be a string (it is {_shown(path, value)})"


@dataclass
class Bool(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, bool):
            yield path, f"must be true or false (it is {_shown(path, value)})"


@dataclass
class Int(Rule):
    """An integer within [min, max]; ``strict``: the YAML value itself must be an integer, not "10"."""

    min: int | None = None
    max: int | None = None
    strict: bool = False
    base_unit: str | None = None
    aligned: int | None = None

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if self.strict and not isinstance(value, int):
            yield path, f"must be an integer (it is {_shown(path, value)})"
            return
        number = parse_int(value, self.base_unit)
        bounds = " and ".join(b for b in (f">= {self.min}" if self.min is not None else "",
                                          f"<= {self.max}" if self.max is not None else "") if b)
        wanted = "an integer" + (f" {bounds}" if bounds else "")
        wanted += f", a multiple of {self.aligned}" if self.aligned else ""
        if number is None or (self.min is not None and number < self.min) \
                or (self.max is not None and number > self.max) or (self.aligned and number % self.aligned):
            yield path, f"must be {wanted} (it is {_shown(path, value)})"


@dataclass
class Enum(Rule):
    values: tuple[str, ...]
    case_sensitive: bool = True

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        allowed = self.values if self.case_sensitive else tuple(v.lower() for v in self.values)
        probe = value if self.case_sensitive or not isinstance(value, str) else value.lower()
        if not isinstance(value, str) or probe not in allowed:
            yield path, f"must be one of {', '.join(self.values)} (it is {_shown(path, value)})"


@dataclass
class ListOf(Rule):
    """A list (non-empty unless ``allow_empty``) whose items each follow ``item``."""

    item: Rule
    allow_empty: bool = False

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, list):
            yield path, f"must be a list (it is {_shown(path, value)})"
            return
        if not value and not self.allow_empty:
            yield path, "is an empty list"
        for i, item in enumerate(value):
            yield from self.item.judge(item, f"{path}.{i}", ctx)


@dataclass
class AnyOf(Rule):
    """Any one of ``rules``; when none fits, the problems of the one the value's type is meant for."""

    rules: tuple[Rule, ...]
    wanted: str

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        results = [list(rule.judge(value, path, ctx)) for rule in self.rules]
        if any(not r for r in results):
            return
        typed = [r for r in results if not _is_type_miss(r, path)]
        yield from typed[0] if typed else [(path, f"must be {self.wanted} (it is {_shown(path, value)})")]


def _is_type_miss(problems: list[Problem], path: str) -> bool:
    """Whether a rule objected only to the value's type (it was meant for another kind of value)."""
    return len(problems) == 1 and problems[0][0] == path and problems[0][1].startswith("must be a ")


@dataclass
class Key:
    """A mapping key: ``required`` keys must be present; ``default`` is judged when one is absent."""

    name: str
    required: bool = True
    default: Any = None


@dataclass
class Map(Rule):
    """A mapping: its keys' rules, groups of which at least one must be present, groups of which at
    most one may be. Keys the table does not know are left alone, as Patroni does."""

    fields: dict[str, tuple[Key, Rule]]
    one_of: tuple[tuple[str, ...], ...] = ()
    at_most_one: tuple[tuple[str, ...], ...] = ()

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, dict):
            yield path, f"must be a mapping of keys (it is {_shown(path, value)})"
            return
        for name, (key, rule) in self.fields.items():
            where = f"{path}.{name}" if path else name
            if name in value:
                yield from rule.judge(value[name], where, ctx)
            elif key.required:
                yield where, "is not set"
            elif key.default is not None:
                yield from rule.judge(key.default, where, ctx)
        for group in self.one_of:
            present = [n for n in group if n in value]
            if not present:
                yield (path or "(top level)"), f"needs one of {', '.join(group)}"
        for group in self.at_most_one:
            present = [n for n in group if n in value]
            if len(present) > 1:
                yield (path or "(top level)"), \
                    f"may set only one of {' and '.join(group)} (it sets {', '.join(present)})"


def fields(**rules: Rule | tuple[Key, Rule]) -> dict[str, tuple[Key, Rule]]:
    """Required keys: ``name=Rule``; optional ones: ``name=opt(Rule)``."""
    return {name: r if isinstance(r, tuple) else (Key(name), r) for name, r in rules.items()}


def opt(rule: Rule, default: Any = None) -> tuple[Key, Rule]:
    return Key("", required=False, default=default), rule


# -- addresses ----------------------------------------------------------------------------------
def _split_host_port(value: str) -> tuple[str, int] | None:
    """host(s) and port as Patroni splits them (a missing port defaults to 1); None when the port is not a number."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, "1"
    if ":" in host:
        host = ",".join(h.strip().strip("[]") for h in host.split(","))
    try:
        return host, int(port)
    except ValueError:
        return None


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be a host name or address, judged from its spelling alone (no lookup)."""
    if not host:
        return "names no host"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return None
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):
        try:
            socket.inet_aton(host)  # 127.1 and friends: legal, if unusual
            return None
        except OSError:
            return f"{host!r} is not an IP address"
    if not _HOSTNAME_RE.match(host):
        return f"{host!r} is not a host name or address"
    return None


@dataclass
class HostPort(Rule):
    """host:port (``multiple``: hosts may be a comma-separated list, or * alone). ``connect``: an address
    Patroni connects to; its validator tries port 1 when none is given, so one must be."""

    multiple: bool = False
    connect: bool = False

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, str):
            yield path, f"must be a string host:port (it is {_shown(path, value)})"
            return
        if not value.strip():
            yield path, "is empty (expected host:port)"
            return
        split = _split_host_port(value)
        if split is None:
            yield path, f"must be host:port with a numeric port (it is {_shown(path, value)})"
            return
        hosts_text, port = split
        if self.connect and ":" not in value.strip().rpartition("]")[2]:
            yield path, f"has no port (it is {_shown(path, value)}); Patroni's validator tries port 1 then"
            return
        hosts = hosts_text.split(",") if self.multiple else [hosts_text]
        if "*" in hosts:
            if len(hosts) != 1:
                yield path, f"may use * only alone (it is {_shown(path, value)})"
            hosts = []
        if not 0 <= port <= 65535:
            yield path, f"port {port} is out of range 0-65535"
        for host in hosts:
            why = host_problem(host)
            if why:
                yield path, why
                return


@dataclass
class ConnectAddress(Rule):
    """host:port other members connect to: never a loopback or wildcard spelling."""

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, str):
            yield path, f"must be a string host:port (it is {_shown(path, value)})"
            return
        split = _split_host_port(value)
        if split is None:
            yield path, f"must be host:port with a numeric port (it is {_shown(path, value)})"
        elif split[0] in FORBIDDEN_CONNECT_HOSTS:
            yield path, (f"must not use {split[0]}: other members cannot connect to it "
                         f"(Patroni refuses {', '.join(FORBIDDEN_CONNECT_HOSTS)})")


class HostList(AnyOf):
    """host:port items, as a comma-separated string or a list."""

    def __init__(self) -> None:
        super().__init__((_CommaHosts(), ListOf(HostPort(connect=True))),
                         "a host:port list or a comma-separated string")


class _CommaHosts(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, str):
            yield path, f"must be a string (it is {_shown(path, value)})"
            return
        for item in value.split(","):
            yield from HostPort(connect=True).judge(item.strip(), path, ctx)


# -- values with a rule of their own ------------------------------------------------------------
class SyncMode(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not (isinstance(value, str) and value.lower() == "quorum") and parse_bool(value) is None:
            yield path, f"must be on, off or quorum (it is {_shown(path, value)})"


class WatchdogMode(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, (str, bool)) or value not in (False, "off", "automatic", "required"):
            yield path, f"must be off, automatic or required (it is {_shown(path, value)})"


class LogFormat(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if isinstance(value, str):
            return
        if not isinstance(value, list):
            yield path, f"must be a string or a list (it is {_shown(path, value)})"
        elif not value:
            yield path, "must name at least one field"
        elif not all(isinstance(f, str) or (isinstance(f, dict) and len(f) == 1
                                            and isinstance(next(iter(f.values())), str)) for f in value):
            yield path, "each item must be a string or a one-key mapping with a string value"


class DataDir(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, str):
            yield path, f"must be a string path (it is {_shown(path, value)})"
        elif not value:
            yield path, "is an empty string"


class BinDir(Rule):
    """The server programs must be in bin_dir (or on $PATH when it is empty); judged only on the host."""

    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, str) or ctx.host is None:
            return  # Patroni does not judge a bin_dir that is not a string either
        if value and not ctx.host.exists(value):
            yield path, f"directory {value} does not exist"
            return
        if value and not ctx.host.isdir(value):
            yield path, f"{value} is not a directory"
            return
        missing = [b for b in ctx.binaries() if not ctx.host.which(b, value or None)]
        if missing:
            yield path, f"{value or '$PATH'} lacks {', '.join(missing)}"


class BinName(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        if not isinstance(value, str):
            yield path, f"must be a string (it is {_shown(path, value)})"
        elif not value:
            yield path, "is an empty string"
        elif ctx.host is not None and not ctx.host.which(value, ctx.bin_dir() or None):
            yield path, f"{value} is not in {ctx.bin_dir() or '$PATH'}"


@dataclass
class IpAddress(Rule):
    def judge(self, value: Any, path: str, ctx: _Context) -> Iterator[Problem]:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            yield path, f"must be an IP address (it is {_shown(path, value)})"


@dataclass
class _Context:
    config: dict[str, Any]
    host: Host | None

    def bin_dir(self) -> str:
        pg = self.config.get("postgresql")
        value = pg.get("bin_dir") if isinstance(pg, dict) else None
        return value if isinstance(value, str) else ""

    def binaries(self) -> list[str]:
        pg = self.config.get("postgresql")
        names = pg.get("bin_name") if isinstance(pg, dict) else None
        names = names if isinstance(names, dict) else {}
        return [names.get(b) if isinstance(names.get(b), str) and names.get(b) else b for b in PG_BINARIES]


# -- the table ----------------------------------------------------------------------------------
STR, BOOL = Str(), Bool()
USER = Map(fields(username=STR, password=opt(STR)))
PORT = Int(max=65535, strict=True)
ETCD = Map(fields(host=opt(HostPort(connect=True)), hosts=opt(HostList()), srv=opt(STR), srv_suffix=opt(STR),
                  url=opt(STR), proxy=opt(STR), protocol=opt(STR), username=opt(STR), password=opt(STR), cacert=opt(STR),
                  cert=opt(STR), key=opt(STR)),
           one_of=(("host", "hosts", "srv", "srv_suffix", "url", "proxy"),))
PG_LIMIT = 262143

SCHEMA = Map(
    fields(
        name=STR,
        scope=STR,
        thread_pool_size=opt(Int(min=5, strict=True)),
        thread_stack_size=opt(Int(min=65536, strict=True, aligned=65536)),
        log=opt(Map(fields(
            type=opt(Enum(("plain", "json"))),
            level=opt(Enum(("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"))),
            traceback_level=opt(Enum(("DEBUG", "ERROR"), case_sensitive=False)),
            format=opt(LogFormat()), dateformat=opt(STR), static_fields=opt(Map({})),
            max_queue_size=opt(Int(strict=True)),
            dir=opt(STR), file_num=opt(Int(strict=True)), file_size=opt(Int(strict=True)),
            mode=opt(Int(min=0, max=511, strict=True)), loggers=opt(Map({})), deduplicate_heartbeat_logs=opt(BOOL)))),
        ctl=opt(Map(fields(insecure=opt(BOOL), cacert=opt(STR), certfile=opt(STR), keyfile=opt(STR),
                           keyfile_password=opt(STR)))),
        restapi=Map(fields(
            thread_pool_size=opt(Int(min=5, strict=True)),
            listen=HostPort(),
            connect_address=ConnectAddress(),
            authentication=opt(Map(fields(username=STR, password=STR))),
            certfile=opt(STR), keyfile=opt(STR), keyfile_password=opt(STR), cafile=opt(STR), ciphers=opt(STR),
            verify_client=opt(Enum(("none", "optional", "required"))),
            allowlist=opt(ListOf(STR)), allowlist_include_members=opt(BOOL),
            http_extra_headers=opt(Map({})), https_extra_headers=opt(Map({})),
            request_queue_size=opt(Int(min=0, max=4096, strict=True)),
            server_tokens=opt(Enum(("minimal", "productonly", "original"), case_sensitive=False)))),
        bootstrap=opt(Map(fields(
            dcs=Map(fields(
                ttl=opt(Int(min=20)), loop_wait=opt(Int(min=1)), retry_timeout=opt(Int(min=3)),
                maximum_lag_on_failover=opt(Int(min=0)), maximum_lag_on_syncnode=opt(Int(min=-1)),
                member_slots_ttl=opt(Int(min=0, base_unit="s")),
                postgresql=opt(Map(fields(
                    parameters=opt(Map(fields(
                        max_connections=opt(Int(min=1, max=PG_LIMIT)),
                        max_locks_per_transaction=opt(Int(min=10, max=2147483647)),
                        max_prepared_transactions=opt(Int(min=0, max=PG_LIMIT)),
                        max_replication_slots=opt(Int(min=0, max=PG_LIMIT)),
                        max_wal_senders=opt(Int(min=0, max=PG_LIMIT)),
                        max_worker_processes=opt(Int(min=0, max=PG_LIMIT))))),
                    use_pg_rewind=opt(BOOL), pg_hba=opt(ListOf(STR)), pg_ident=opt(ListOf(STR)),
                    pg_ctl_timeout=opt(Int(min=0)), use_slots=opt(BOOL)))),
                primary_start_timeout=opt(Int(min=0)), primary_stop_timeout=opt(Int(min=0)),
                standby_cluster=opt(Map(fields(host=opt(STR), port=opt(PORT), restore_command=opt(STR),
                                               primary_slot_name=opt(STR), create_replica_methods=opt(ListOf(STR)),
                                               archive_cleanup_command=opt(STR), recovery_min_apply_delay=opt(STR)),
                                        one_of=(("host", "port", "restore_command"),))),
                synchronous_mode=opt(SyncMode()), synchronous_mode_strict=opt(BOOL),
                synchronous_node_count=opt(Int(min=1)))),
            initdb=opt(ListOf(AnyOf((STR, Map({})), "a string or a mapping"))),
            method=opt(STR)))),
        consul=opt(Map(fields(host=opt(HostPort(connect=True)), url=opt(STR), port=opt(PORT), scheme=opt(STR),
                              token=opt(STR),
                              verify=opt(BOOL), cacert=opt(STR), cert=opt(STR), key=opt(STR), dc=opt(STR),
                              checks=opt(ListOf(STR)), register_service=opt(BOOL), service_tags=opt(ListOf(STR)),
                              service_check_interval=opt(STR), service_check_tls_server_name=opt(STR),
                              consistency=opt(Enum(("default", "consistent", "stale")))),
                       one_of=(("host", "url"),))),
        etcd=opt(ETCD),
        etcd3=opt(ETCD),
        exhibitor=opt(Map(fields(hosts=ListOf(STR), port=PORT, poll_interval=opt(Int(min=1, strict=True))))),
        raft=opt(Map(fields(self_addr=ConnectAddress(), bind_addr=opt(HostPort()),
                            partner_addrs=ListOf(HostPort(connect=True), allow_empty=True),
                            data_dir=opt(STR), password=opt(STR)))),
        zookeeper=opt(Map(fields(hosts=HostList(), use_ssl=opt(BOOL), cacert=opt(STR), cert=opt(STR), key=opt(STR),
                                 key_password=opt(STR), verify=opt(BOOL), set_acls=opt(Map({})),
                                 auth_data=opt(Map({}))))),
        kubernetes=opt(Map(fields(labels=Map({}), bypass_api_service=opt(BOOL), namespace=opt(STR),
                                  scope_label=opt(STR), role_label=opt(STR), leader_label_value=opt(STR),
                                  follower_label_value=opt(STR), standby_leader_label_value=opt(STR),
                                  tmp_role_label=opt(STR), use_endpoints=opt(BOOL), pod_ip=opt(IpAddress()),
                                  ports=opt(ListOf(Map(fields(name=STR, port=PORT)))), cacert=opt(STR),
                                  retriable_http_codes=opt(AnyOf((Int(strict=True), ListOf(Int(strict=True))),
                                                                 "an integer or a list of them")),
                                  bootstrap_labels=opt(Map({}))))),
        citus=opt(Map(fields(database=STR, group=Int(min=0, strict=True)))),
        postgresql=Map(fields(
            listen=HostPort(multiple=True),
            connect_address=ConnectAddress(),
            proxy_address=opt(ConnectAddress()),
            authentication=Map(fields(replication=USER, superuser=USER, rewind=opt(USER))),
            data_dir=DataDir(),
            bin_name=opt(Map(fields(**{b: opt(BinName()) for b in (*PG_BINARIES, "pg_rewind")}))),
            bin_dir=opt(BinDir(), default=""),
            parameters=opt(Map(fields(unix_socket_directories=opt(STR)))),
            pg_hba=opt(ListOf(STR)), pg_ident=opt(ListOf(STR)),
            pg_ctl_timeout=opt(Int(min=0)), use_pg_rewind=opt(BOOL))),
        watchdog=opt(Map(fields(mode=opt(WatchdogMode()), device=opt(STR),
                                safety_margin=opt(Int(min=-1, strict=True))))),
        tags=opt(Map(fields(nofailover=opt(BOOL), failover_priority=opt(Int(min=0, strict=True)), clonefrom=opt(BOOL),
                            noloadbalance=opt(BOOL), replicatefrom=opt(STR), nosync=opt(BOOL),
                            sync_priority=opt(Int(min=0, strict=True)), nostream=opt(BOOL)),
                     at_most_one=(("nofailover", "failover_priority"), ("nosync", "sync_priority")))),
    ),
    one_of=(DCS_SECTIONS,),
)


def config_problems(config: dict[str, Any], host: Host | None = None) -> list[dict[str, str]]:
    """Every objection Patroni's schema has to ``config`` (with PATRONI_* overrides applied), as
    ``{"path", "problem", "text"}``. ``host``: judge bin_dir/bin_name against this machine too.

    Top-level keys set to nothing (``scope:``) count as absent, as Patroni merges the file that way.
    """
    present = {k: v for k, v in config.items() if v is not None}
    ctx = _Context(present, host)
    out = []
    for path, problem in SCHEMA.judge(present, "", ctx):
        if path == "(top level)" and problem.startswith("needs one of consul"):
            problem = "names no DCS: Patroni needs one of " + ", ".join(DCS_SECTIONS)
        text = f"{path} {problem}" if path != "(top level)" else problem
        out.append({"path": path, "problem": problem, "text": text})
    return out
