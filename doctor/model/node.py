"""What a Patroni config says about one node, derived once and shared.

Collectors use it to know where to look, checks to interpret facts, and playbooks
to fill fix commands with this node's real values. It reads only the config
(redacted or not: it never touches secrets).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

WILDCARDS = ("0.0.0.0", "::", "*", "")  # listen addresses that mean "every address"


def is_wildcard(host: str) -> bool:
    return host in WILDCARDS


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this host only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host_port(value: Any, default_port: int | None = None) -> tuple[list[str], int | None]:
    """Parse Patroni's ``ip[,ip2]:port`` (IPv6 in brackets allowed) into hosts and port."""
    if value is None:
        return [], default_port
    text = str(value).strip()
    port: int | None = default_port
    if text.startswith("[") and "]" in text:  # [::1]:5432
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return [host], port
    if (":" in text and text.count(":") == 1) or (text.count(":") > 1 and "," in text):
        hosts_part, _, port_part = text.rpartition(":")
        if port_part.strip().isdigit():
            port = int(port_part.strip())
            text = hosts_part
        else:
            port = None if port_part else port
            text = hosts_part
    hosts = [h.strip() for h in text.split(",") if h.strip()]
    return hosts, port




def etcd_endpoints(section: dict[str, Any] | None) -> list[str]:
    """Every etcd endpoint URL an ``etcd``/``etcd3`` config section names."""
    if not isinstance(section, dict):
        return []
    protocol = str(section.get("protocol") or "http")
    urls: list[str] = []

    def add_hostport(hp: str) -> None:
        hp = hp.strip()
        if not hp:
            return
        if "://" in hp:
            urls.append(hp.rstrip("/"))
        else:
            urls.append(f"{protocol}://{hp if ':' in hp else hp + ':2379'}")

    hosts = section.get("hosts")
    if isinstance(hosts, list):
        for h in hosts:
            add_hostport(str(h))
    elif isinstance(hosts, str):
        for h in hosts.split(","):
            add_hostport(h)
    if section.get("host"):
        add_hostport(str(section["host"]))
    for key in ("url", "proxy"):
        if section.get(key):
            for u in str(section[key]).split(","):
                add_hostport(u)
    seen: list[str] = []
    for u in urls:
        if u not in seen:
            seen.append(u)
    return seen


@dataclass
class NodeView:
    """This node's identity and addresses as its config declares them."""

    config: dict[str, Any] = field(default_factory=dict)
    config_path: str | None = None
    pg_user: str = "postgres"

    def get(self, *path: str, default: Any = None) -> Any:
        node: Any = self.config
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node

    @property
    def name(self) -> str | None:
        v = self.get("name")
        return str(v) if v is not None else None

    @property
    def scope(self) -> str | None:
        v = self.get("scope")
        return str(v) if v is not None else None

    @property
    def namespace(self) -> str:
        ns = str(self.get("namespace") or "/service")
        return "/" + ns.strip("/")

    @property
    def dcs_prefix(self) -> str:
        """The key prefix of this cluster in the DCS, e.g. ``/service/postgres/``."""
        return f"{self.namespace}/{self.scope or ''}/".replace("//", "/")

    @property
    def loop_wait(self) -> float | None:
        """The HA loop's period as this config sets it (``loop_wait``, else the bootstrap DCS section's);
        None when the config does not say (Patroni's default is 10 s)."""
        for path in (("loop_wait",), ("bootstrap", "dcs", "loop_wait")):
            v = self.get(*path)
            try:
                f = float(v) if v is not None and not isinstance(v, bool) else None
            except (TypeError, ValueError):
                f = None
            if f is not None and 0 < f <= 3600:
                return f
        return None

    @property
    def data_dir(self) -> str | None:
        v = self.get("postgresql", "data_dir")
        return str(v) if v else None

    @property
    def bin_dir(self) -> str | None:
        v = self.get("postgresql", "bin_dir")
        return str(v) if v else None

    @property
    def pg_hosts(self) -> list[str]:
        return split_host_port(self.get("postgresql", "listen"), 5432)[0]

    @property
    def pg_port(self) -> int:
        return split_host_port(self.get("postgresql", "listen"), 5432)[1] or 5432

    @property
    def rest_hosts(self) -> list[str]:
        return split_host_port(self.get("restapi", "listen"), 8008)[0]

    @property
    def rest_port(self) -> int:
        return split_host_port(self.get("restapi", "listen"), 8008)[1] or 8008

    @property
    def rest_connect(self) -> str | None:
        v = self.get("restapi", "connect_address")
        return str(v) if v else None

    @property
    def pg_connect(self) -> str | None:
        v = self.get("postgresql", "connect_address")
        return str(v) if v else None

    @property
    def rest_scheme(self) -> str:
        return "https" if self.get("restapi", "certfile") else "http"

    @property
    def rest_url(self) -> str | None:
        """Where this node's REST API can be reached from here."""
        target = self.rest_connect
        if not target:
            hosts = self.rest_hosts
            host = hosts[0] if hosts else "127.0.0.1"
            if host in ("0.0.0.0", "*", "::", ""):
                host = "127.0.0.1"
            target = f"{host}:{self.rest_port}"
        return f"{self.rest_scheme}://{target}"

    @property
    def dcs_section_name(self) -> str | None:
        for key in ("etcd3", "etcd"):
            if isinstance(self.get(key), dict):
                return key
        return None

    @property
    def etcd_endpoints(self) -> list[str]:
        name = self.dcs_section_name
        return etcd_endpoints(self.get(name)) if name else []

    @property
    def replication_user(self) -> str:
        return str(self.get("postgresql", "authentication", "replication", "username") or "replicator")

    @property
    def superuser(self) -> str:
        return str(self.get("postgresql", "authentication", "superuser", "username") or "postgres")

    @property
    def log_dir(self) -> str | None:
        v = self.get("log", "dir")
        return str(v) if v else None

    @property
    def patronictl(self) -> str:
        from doctor.fixquote import shell_join
        return shell_join("patronictl", "-c", self.config_path or "/etc/patroni/patroni.yml")

    def psql(self, host: str | None, port: int | None) -> str:
        """A psql command line as this node's superuser to another member's PostgreSQL, quoted for a shell."""
        from doctor.fixquote import shell_join
        return shell_join("psql", "-h", host or "<host>", "-p", port or 5432, "-U", self.superuser, "-d", "postgres")

    def template_values(self) -> dict[str, Any]:
        """The values a playbook's fix commands may use."""
        endpoints = self.etcd_endpoints
        return {
            "config_path": self.config_path or "/etc/patroni/patroni.yml",
            "name": self.name or "<member name>",
            "scope": self.scope or "<scope>",
            "namespace": self.namespace,
            # without a scope the cluster's keys are not known: a fix must not name the namespace's root
            "dcs_prefix": self.dcs_prefix if self.scope else f"{self.namespace}/<scope>/",
            "data_dir": self.data_dir or "<data_dir>",
            "bin_dir": self.bin_dir or "",
            "pg_port": self.pg_port,
            "pg_host": (self.pg_hosts or ["127.0.0.1"])[0],
            "rest_port": self.rest_port,
            "rest_host": (self.rest_hosts or ["127.0.0.1"])[0],
            "rest_url": self.rest_url,
            "pg_user": self.pg_user,
            "superuser": self.superuser,
            "replication_user": self.replication_user,
            "etcd_endpoints": ",".join(endpoints) or "http://127.0.0.1:2379",
            "etcd_endpoint": endpoints[0] if endpoints else "http://127.0.0.1:2379",
            "patronictl": self.patronictl,
            "unit": "patroni",
        }
