"""patroni.yml for each lab node, written the way an operator writes one by hand.

The text is produced from a template (not ``yaml.dump``) so that it looks like a real
``/etc/patroni/patroni.yml`` and faults can damage it the way people do (a tab in the indentation,
a wrong password, ``etcd:`` instead of ``etcd3:``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from . import layout as L
from .layout import Layout, Node

TTL = 20
LOOP_WAIT = 2
RETRY_TIMEOUT = 5
assert LOOP_WAIT + 2 * RETRY_TIMEOUT <= TTL


def default_pg_hba(lay: Layout) -> list[str]:
    return [
        "local all all trust",
        "host replication replicator 127.0.0.0/8 scram-sha-256",
        "host all all 127.0.0.0/8 scram-sha-256",
    ]


@dataclass
class NodeOptions:
    """What may differ from the healthy default in one node's config."""

    dcs_section: str = "etcd3"            # "etcd" switches to the v2 API (dcs-api-mismatch)
    replication_password: str = L.REPLICATION_PASSWORD
    pg_hba: list[str] | None = None       # None = default_pg_hba()
    tags: dict = field(default_factory=dict)
    use_pg_rewind: bool | None = None     # None = not set locally (the DCS value applies)
    rewind_user: tuple[str, str] | None = None  # (username, password) of authentication.rewind
    parameters: dict = field(default_factory=dict)  # extra postgresql.parameters
    extra_local_postgresql: dict = field(default_factory=dict)


def render(lay: Layout, node: Node, opts: NodeOptions | None = None) -> str:
    opts = opts or NodeOptions()
    hba = opts.pg_hba if opts.pg_hba is not None else default_pg_hba(lay)
    hosts = "\n".join(f"    - {h}" for h in lay.etcd_hosts)
    hba_lines = "\n".join(f"    - {line}" for line in hba)
    tags = ""
    if opts.tags:
        tags = "\ntags:\n" + "\n".join(f"  {k}: {yaml.safe_dump(v).splitlines()[0]}"
                                       for k, v in opts.tags.items()) + "\n"
    rewind = ""
    if opts.use_pg_rewind is not None:
        rewind = f"  use_pg_rewind: {'true' if opts.use_pg_rewind else 'false'}\n"
    rewind_auth = ""
    if opts.rewind_user:
        rewind_auth = (f"    rewind:\n      username: {opts.rewind_user[0]}\n"
                       f"      password: {opts.rewind_user[1]}\n")
    params = "".join(f"    {k}: {yaml.safe_dump(v).splitlines()[0]}\n" for k, v in opts.parameters.items())
    extra = ""
    for k, v in opts.extra_local_postgresql.items():
        extra += f"  {k}: {yaml.safe_dump(v).splitlines()[0]}\n"
    return f"""\
# Patroni configuration of lab member {node.name} (pgdoctor lab, base {lay.base_dir})
scope: {lay.scope}
namespace: {lay.namespace}
name: {node.name}

log:
  level: INFO
  dir: {node.patroni_log_dir}
  file_num: 4
  file_size: 26214400

restapi:
  listen: {node.address}:{node.rest_port}
  connect_address: {node.address}:{node.rest_port}

{opts.dcs_section}:
  hosts:
{hosts}

bootstrap:
  dcs:
    ttl: {TTL}
    loop_wait: {LOOP_WAIT}
    retry_timeout: {RETRY_TIMEOUT}
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 128MB
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8

postgresql:
  listen: {node.address}:{node.pg_port}
  connect_address: {node.address}:{node.pg_port}
  data_dir: {node.data_dir}
  bin_dir: {lay.bins.pg_bin}
  pgpass: {node.patroni_pgpass}
{rewind}{extra}  authentication:
    superuser:
      username: {L.SUPERUSER}
      password: {L.SUPERUSER_PASSWORD}
    replication:
      username: {L.REPLICATION_USER}
      password: {opts.replication_password}
{rewind_auth}  parameters:
    unix_socket_directories: '{node.socket_dir}'
    logging_collector: "on"
    log_directory: log
    log_filename: postgresql.log
    log_file_mode: "0640"
    log_line_prefix: '%m [%p] %q%u@%d '
    log_connections: "on"
    log_disconnections: "off"
{params}  pg_hba:
{hba_lines}
{tags}"""


def write(lay: Layout, node: Node, opts: NodeOptions | None = None, text: str | None = None) -> None:
    """Write ``node``'s patroni.yml (owned by postgres, mode 0600)."""
    body = text if text is not None else render(lay, node, opts)
    tmp = node.config.with_name(node.config.name + ".tmp")
    tmp.write_text(body)
    os.chmod(tmp, 0o600)
    _chown_postgres(tmp)
    os.replace(tmp, node.config)


def write_pgpass(lay: Layout, node: Node) -> None:
    lines = []
    for n in lay.nodes:
        lines.append(f"{n.address}:{n.pg_port}:*:{L.SUPERUSER}:{L.SUPERUSER_PASSWORD}")
        lines.append(f"{n.address}:{n.pg_port}:*:{L.REPLICATION_USER}:{L.REPLICATION_PASSWORD}")
    node.pgpass.write_text("\n".join(lines) + "\n")
    os.chmod(node.pgpass, 0o600)
    _chown_postgres(node.pgpass)


def _chown_postgres(path) -> None:
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam(L.OS_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def baseline_dynamic_config() -> dict:
    """The dynamic (DCS /config) values a healthy lab has; ``heal`` patches them back."""
    return {
        "ttl": TTL,
        "loop_wait": LOOP_WAIT,
        "retry_timeout": RETRY_TIMEOUT,
        "maximum_lag_on_failover": 1048576,
        "synchronous_mode": False,
        "synchronous_mode_strict": False,
        "synchronous_node_count": 1,
        "postgresql": {
            "use_pg_rewind": True,
            "remove_data_directory_on_rewind_failure": None,
            "remove_data_directory_on_diverged_timelines": None,
        },
    }
