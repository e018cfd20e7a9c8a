"""Where the lab's pieces live: node names, loopback addresses, ports, paths and binaries.

Everything is derived from two environment variables so that two labs can run side by side:

``PGDOCTOR_LAB_ADDRS``  three loopback addresses, comma separated
                        (default ``127.0.0.11,127.0.0.12,127.0.0.13``)
``PGDOCTOR_LAB_DIR``    the base directory (default ``/var/tmp/pgdoctor-lab``)

Binaries are found through ``PGDOCTOR_LAB_ETCD``, ``PGDOCTOR_LAB_ETCDCTL``, ``PGDOCTOR_LAB_PG_BIN``,
``PGDOCTOR_LAB_VENV`` (Patroni's venv), ``PGDOCTOR_LAB_PATRONI`` and ``PGDOCTOR_LAB_PATRONICTL``, with
the defaults that ``scripts/install-lab.sh`` installs; which Patroni venv and PostgreSQL bin dir are the
defaults depends on the lab's :class:`~doctor.lab.versions.Versions` (``lab up --patroni V --postgres M``).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import versions as V
from .versions import Versions

DEFAULT_ADDRS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
DEFAULT_BASE_DIR = "/var/tmp/pgdoctor-lab"
DEFAULT_VENV = V.DEFAULT_VENV
DEFAULT_PG_BIN = V.DEFAULT_PG15_BIN

SCOPE = "postgres"
NAMESPACE = "/service"
PG_PORT = 5432
REST_PORT = 8008
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380

SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
# Lab-only credentials: the lab listens on loopback only.
SUPERUSER_PASSWORD = "lab-super-7d41"
REPLICATION_PASSWORD = "lab-repl-93c2"
OS_USER = "postgres"
UP_TIMEOUT = 90.0  # seconds a fresh or restarted lab may take to become healthy


class LabError(Exception):
    """A lab operation could not be done; the message is one line meant for a person."""


@dataclass(frozen=True)
class Node:
    name: str
    index: int  # 1-based
    address: str
    base_dir: Path
    pg_port: int = PG_PORT
    rest_port: int = REST_PORT
    etcd_client_port: int = ETCD_CLIENT_PORT
    etcd_peer_port: int = ETCD_PEER_PORT

    # --- Patroni / PostgreSQL --------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return self.base_dir / self.name

    @property
    def config(self) -> Path:
        return self.dir / "patroni.yml"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def patroni_log_dir(self) -> Path:
        return self.dir / "log"

    @property
    def patroni_log(self) -> Path:
        return self.patroni_log_dir / "patroni.log"

    @property
    def patroni_stdout(self) -> Path:
        """Patroni's own stdout/stderr: what it prints before its logging is set up
        (e.g. a YAML error) and tracebacks."""
        return self.dir / "patroni.stdout.log"

    @property
    def patroni_pidfile(self) -> Path:
        return self.dir / "patroni.pid"

    @property
    def postgres_log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    @property
    def pgpass(self) -> Path:
        """A pgpass for people and tests (superuser and replicator on every node)."""
        return self.dir / ".pgpass"

    @property
    def patroni_pgpass(self) -> Path:
        """The pgpass file Patroni itself writes and uses (``postgresql.pgpass``)."""
        return self.dir / "pgpass.patroni"

    @property
    def rest_url(self) -> str:
        return f"http://{self.address}:{self.rest_port}"

    # --- etcd ------------------------------------------------------------------------------
    @property
    def etcd_name(self) -> str:
        return f"etcd{self.index}"

    @property
    def etcd_dir(self) -> Path:
        return self.base_dir / self.etcd_name

    @property
    def etcd_data_dir(self) -> Path:
        return self.etcd_dir / "data"

    @property
    def etcd_log(self) -> Path:
        return self.etcd_dir / "etcd.log"

    @property
    def etcd_pidfile(self) -> Path:
        return self.etcd_dir / "etcd.pid"

    @property
    def etcd_client_url(self) -> str:
        return f"http://{self.address}:{self.etcd_client_port}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{self.address}:{self.etcd_peer_port}"

    def dsn(self, user: str = SUPERUSER, dbname: str = "postgres", connect_timeout: int = 3) -> str:
        password = SUPERUSER_PASSWORD if user == SUPERUSER else REPLICATION_PASSWORD
        return (f"host={self.address} port={self.pg_port} user={user} password={password} "
                f"dbname={dbname} connect_timeout={connect_timeout}")


def _which(name: str, fallback: str) -> str:
    return shutil.which(name) or fallback


@dataclass(frozen=True)
class Binaries:
    etcd: str
    etcdctl: str
    pg_bin: str
    patroni: str
    patronictl: str

    @classmethod
    def from_env(cls, versions: Versions | None = None) -> Binaries:
        v = versions or Versions()
        venv = V.patroni_venv(v.patroni)
        return cls(
            etcd=os.environ.get("PGDOCTOR_LAB_ETCD") or _which("etcd", "/usr/bin/etcd"),
            etcdctl=os.environ.get("PGDOCTOR_LAB_ETCDCTL") or _which("etcdctl", "/usr/bin/etcdctl"),
            pg_bin=V.pg_bin(v.postgres),
            patroni=os.environ.get("PGDOCTOR_LAB_PATRONI", f"{venv}/bin/patroni"),
            patronictl=os.environ.get("PGDOCTOR_LAB_PATRONICTL", f"{venv}/bin/patronictl"),
        )

    def missing(self) -> list[str]:
        wanted = {
            "etcd": self.etcd,
            "etcdctl": self.etcdctl,
            "postgres": os.path.join(self.pg_bin, "postgres"),
            "pg_ctl": os.path.join(self.pg_bin, "pg_ctl"),
            "patroni": self.patroni,
            "patronictl": self.patronictl,
        }
        return [f"{k} ({v})" for k, v in wanted.items() if not os.access(v, os.X_OK)]


def parse_addrs(value: str | None) -> tuple[str, str, str]:
    if not value:
        return DEFAULT_ADDRS
    addrs = tuple(a.strip() for a in value.split(",") if a.strip())
    if len(addrs) != 3:
        raise LabError(f"PGDOCTOR_LAB_ADDRS must list exactly three addresses, got {value!r}")
    for a in addrs:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            raise LabError(f"PGDOCTOR_LAB_ADDRS: {a!r} is not an IP address") from None
        if not ip.is_loopback or ip.version != 4:
            raise LabError(f"PGDOCTOR_LAB_ADDRS: {a} is not an IPv4 loopback address (127.0.0.0/8)")
    if len(set(addrs)) != 3:
        raise LabError(f"PGDOCTOR_LAB_ADDRS: the three addresses must differ, got {value!r}")
    return addrs  # type: ignore[return-value]


@dataclass(frozen=True)
class Layout:
    base_dir: Path
    addrs: tuple[str, str, str]
    bins: Binaries = field(default_factory=Binaries.from_env)
    scope: str = SCOPE
    namespace: str = NAMESPACE
    versions: Versions = field(default_factory=Versions)

    @classmethod
    def from_env(cls, patroni: str | None = None, postgres: str | None = None) -> Layout:
        """The lab named by the environment, with the versions chosen here, in the environment, or stored
        by the lab (``<base>/versions.json``), in that order."""
        base = Path(os.environ.get("PGDOCTOR_LAB_DIR") or DEFAULT_BASE_DIR)
        if not base.is_absolute():
            raise LabError(f"PGDOCTOR_LAB_DIR must be an absolute path, got {str(base)!r}")
        try:
            v = V.from_env(base, patroni, postgres)
        except V.VersionError as exc:
            raise LabError(str(exc)) from None
        return cls(base_dir=base, addrs=parse_addrs(os.environ.get("PGDOCTOR_LAB_ADDRS")),
                   bins=Binaries.from_env(v), versions=v)

    def with_versions(self, v: Versions) -> Layout:
        """The same lab run with other Patroni / PostgreSQL binaries."""
        return replace(self, bins=Binaries.from_env(v), versions=v)

    @property
    def nodes(self) -> list[Node]:
        return [Node(name=f"node{i}", index=i, address=a, base_dir=self.base_dir)
                for i, a in enumerate(self.addrs, start=1)]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise LabError(f"no lab node named {name!r} (nodes: node1, node2, node3)")

    @property
    def etcd_endpoints(self) -> list[str]:
        return [n.etcd_client_url for n in self.nodes]

    @property
    def etcd_hosts(self) -> list[str]:
        return [f"{n.address}:{n.etcd_client_port}" for n in self.nodes]

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{n.etcd_name}={n.etcd_peer_url}" for n in self.nodes)

    @property
    def cluster_token(self) -> str:
        # distinct per lab so two labs side by side never join each other
        return "pgdoctor-lab-" + self.addrs[0].replace(".", "-")

    @property
    def state_file(self) -> Path:
        return self.base_dir / "fault.json"

    @property
    def dcs_prefix(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.scope}/"

    def patronictl_argv(self, node: Node | None = None) -> list[str]:
        node = node or self.nodes[0]
        return [self.bins.patronictl, "-c", str(node.config)]
