"""Broken and odd variants of examples/patroni.yml, by category, for the config corpus test.

Each ``Mutant`` is a file to write (its bytes) or a special path (a FIFO, a directory,
/dev/zero). ``base_text`` makes the example independent of this machine: the DCS hosts,
the data directory and the binary directory are the test's own, so that Patroni's
validator objects only to what a mutant changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patroni.yml"

# The server programs Patroni's validator looks for in postgresql.bin_dir.
PG_BINARIES = ("pg_ctl", "initdb", "pg_controldata", "pg_basebackup", "postgres", "pg_isready")


@dataclass(frozen=True)
class Mutant:
    name: str
    category: str
    data: bytes | None = None  # the file's bytes; None for a special kind
    special: str | None = None  # "fifo", "directory", "devzero"
    broken: bool = False  # broken whatever Patroni says (pgdoctor refuses or reports it by design)


def base_text(dcs_port: int, data_dir: str, bin_dir: str) -> str:
    """The example config, pointed at a DCS port that accepts, a data dir that does not exist yet, stub binaries."""
    text = EXAMPLE.read_text()
    text = re.sub(r"  hosts:\n(    - .*\n)+", f"  hosts:\n    - 127.0.0.1:{dcs_port}\n", text)
    text = text.replace("/var/tmp/pgdoctor-example/data", data_dir).replace("/usr/lib/postgresql/15/bin", bin_dir)
    assert f"127.0.0.1:{dcs_port}" in text and data_dir in text and bin_dir in text
    return text


def _sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _drop(text: str, line: str) -> str:
    """Remove a line and every line indented below it (its block)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.rstrip("\n") == line)
    indent = len(line) - len(line.lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return "".join(lines[:start] + lines[end:])


def _add_under(text: str, parent: str, child_lines: str) -> str:
    """Insert lines right after the line ``parent``."""
    return _sub(text, parent + "\n", parent + "\n" + child_lines)


BOMB = (
    "lol1: &l1 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(2, 10))
)


def mutants(base: str) -> list[Mutant]:
    """Every variant of ``base``: the unchanged file first, then syntax, truncation, aliases, encodings,
    types, missing keys, size and kind of file."""
    out: list[Mutant] = [Mutant("unchanged", "baseline", base.encode())]

    def add(name: str, category: str, text: str | bytes, broken: bool = False) -> None:
        out.append(Mutant(name, category, text if isinstance(text, bytes) else text.encode(), broken=broken))

    # --- syntax ----------------------------------------------------------------------------------
    add("tab-indent", "syntax", _sub(base, "  listen: 127.0.0.11:8008", "\tlisten: 127.0.0.11:8008"))
    add("tab-indent-nested", "syntax", _sub(base, "      username: postgres", "\t\tusername: postgres"))
    add("bad-indent-deeper", "syntax", _sub(base, "  connect_address: 127.0.0.11:8008", "   connect_address: 127.0.0.11:8008"))
    add("bad-indent-shallower", "syntax", _sub(base, "    ttl: 30", "   ttl: 30"))
    add("bad-indent-list", "syntax", _sub(base, "  hosts:\n    - ", "  hosts:\n  - "))  # still valid YAML
    add("unclosed-double-quote", "syntax", _sub(base, "scope: postgres", 'scope: "postgres'))
    add("unclosed-single-quote", "syntax", _sub(base, "name: node1", "name: 'node1"))
    add("unclosed-flow-list", "syntax", _sub(base, "      use_pg_rewind: true", "      use_pg_rewind: [true"))
    add("unclosed-flow-map", "syntax", _sub(base, "namespace: /service/", "namespace: {a: 1"))
    add("colon-in-plain-value", "syntax", _sub(base, "name: node1", "name: node: 1"))
    add("at-sign-value", "syntax", _sub(base, "name: node1", "name: @node1"))
    add("backtick-value", "syntax", _sub(base, "name: node1", "name: `node1`"))
    add("stray-dash", "syntax", _sub(base, "    ttl: 30\n", "    ttl: 30\n    - 40\n"))
    add("missing-colon", "syntax", _sub(base, "scope: postgres", "scope postgres"))
    add("missing-space-after-colon", "syntax", _sub(base, "scope: postgres", "scope:postgres"))
    add("duplicate-key", "syntax", base + "scope: other\n")  # YAML 1.1 loaders keep the last; valid
    add("directive-garbage", "syntax", "%YAML 9.9\n---\n" + base)
    add("two-documents", "syntax", base + "---\nscope: second\n")
    add("document-end-early", "syntax", _sub(base, "restapi:\n", "...\nrestapi:\n"))
    add("empty-file", "syntax", "", broken=True)
    add("only-comments", "syntax", "# nothing here\n# at all\n", broken=True)
    add("top-level-list", "syntax", "- scope: postgres\n- name: node1\n", broken=True)
    add("top-level-scalar", "syntax", "just some words\n", broken=True)
    add("crlf-line-ends", "syntax", base.replace("\n", "\r\n"))
    add("no-final-newline", "syntax", base.rstrip("\n"))
    add("undefined-tag", "syntax", _sub(base, "name: node1", "name: !custom node1"))
    add("python-tag", "syntax", _sub(base, "name: node1", "name: !!python/name:os.system"))

    # --- truncation --------------------------------------------------------------------------------
    for fraction in (0.05, 0.1, 0.2, 0.33, 0.5, 0.66, 0.8, 0.9, 0.97):
        cut = int(len(base) * fraction)
        add(f"truncated-{int(fraction * 100)}pct", "truncation", base[:cut])
    for marker in ('scope: postgres', 'restapi:\n  listen: 127', '    - 127.0.0.1', 'password: example-super'):
        add(f"truncated-inside-{marker.split(':')[0].strip().replace(' ', '')}", "truncation",
            base[: base.index(marker) + len(marker) - 3])

    # --- aliases -----------------------------------------------------------------------------------
    add("alias-reuse", "aliases", _sub(_sub(base, "  listen: 127.0.0.11:8008", "  listen: &rest 127.0.0.11:8008"),
                                        "  connect_address: 127.0.0.11:8008", "  connect_address: *rest"))
    add("merge-key", "aliases", _sub(base, "    superuser:\n      username: postgres\n      password: example-superuser-secret\n",
                                     "    superuser: &su\n      username: postgres\n      password: example-superuser-secret\n"
                                     "    rewind:\n      <<: *su\n"))
    add("undefined-alias", "aliases", _sub(base, "name: node1", "name: *nowhere"))
    add("alias-of-mapping-as-scalar", "aliases",
        _sub(_sub(base, "restapi:\n", "restapi: &r\n"), "name: node1", "name: *r"))
    add("billion-laughs", "aliases", base + BOMB, broken=True)
    add("billion-laughs-inside-tags", "aliases", base + "tags:\n  " + BOMB.replace("\n", "\n  ").rstrip() + "\n",
        broken=True)
    add("recursive-alias", "aliases", base + "loop: &loop [1, *loop]\n", broken=True)
    add("recursive-alias-mapping", "aliases", base + "loopmap: &lm {self: *lm}\n", broken=True)

    # --- encodings ---------------------------------------------------------------------------------
    add("latin1-byte-in-value", "encodings", _sub(base, "name: node1", "name: n\u00f6de1").encode("latin-1"))
    add("latin1-byte-in-comment", "encodings", ("# r\u00e9sum\u00e9 of the node\n" + base).encode("latin-1"))
    add("latin1-byte-in-password", "encodings",
        _sub(base, "example-superuser-secret", "s\u00e9cret").encode("latin-1"))
    add("utf16-le-bom", "encodings", base.encode("utf-16"))  # Python writes a BOM, little-endian here
    add("utf16-be-no-bom", "encodings", base.encode("utf-16-be"))
    add("utf8-bom", "encodings", base.encode("utf-8-sig"))  # Patroni reads it (YAML skips the BOM)
    add("utf8-non-ascii-value", "encodings", _sub(base, "name: node1", "name: n\u00f6de1").encode())
    add("nul-byte-middle", "encodings", _sub(base, "name: node1", "name: node\x001").encode())
    add("nul-byte-end", "encodings", base.encode() + b"\x00")
    add("invalid-utf8-continuation", "encodings", base.encode().replace(b"node1", b"node\xc3\x281"))
    add("control-char", "encodings", _sub(base, "name: node1", "name: node\x071"))
    add("utf32", "encodings", base.encode("utf-32"))

    # --- types and values --------------------------------------------------------------------------
    data_dir_line = next(l for l in base.splitlines() if l.startswith("  data_dir: "))
    bin_dir_line = next(l for l in base.splitlines() if l.startswith("  bin_dir: "))
    types = [
        ("data-dir-int", data_dir_line, "  data_dir: 123"),
        ("data-dir-empty", data_dir_line, '  data_dir: ""'),
        ("data-dir-list", data_dir_line, "  data_dir: [a, b]"),
        ("data-dir-null", data_dir_line, "  data_dir:"),
        ("bin-dir-missing-dir", bin_dir_line, "  bin_dir: /nonexistent/pg/bin"),
        ("bin-dir-int", bin_dir_line, "  bin_dir: 15"),
        ("loop-wait-0", "    loop_wait: 10", "    loop_wait: 0"),
        ("loop-wait-string-number", "    loop_wait: 10", '    loop_wait: "10"'),
        ("loop-wait-word", "    loop_wait: 10", "    loop_wait: often"),
        ("loop-wait-float", "    loop_wait: 10", "    loop_wait: 2.5"),
        ("loop-wait-unit", "    loop_wait: 10", "    loop_wait: 10s"),
        ("ttl-inf", "    ttl: 30", "    ttl: .inf"),
        ("ttl-nan", "    ttl: 30", "    ttl: .nan"),
        ("ttl-negative-inf", "    ttl: 30", "    ttl: -.inf"),
        ("ttl-huge", "    ttl: 30", "    ttl: 1e400"),
        ("ttl-below-min", "    ttl: 30", "    ttl: 10"),
        ("ttl-bool", "    ttl: 30", "    ttl: true"),
        ("ttl-timing-rule", "    ttl: 30", "    ttl: 25"),  # valid for Patroni; warns in pgdoctor
        ("retry-timeout-2", "    retry_timeout: 10", "    retry_timeout: 2"),
        ("maximum-lag-negative", "    maximum_lag_on_failover: 1048576", "    maximum_lag_on_failover: -1"),
        ("maximum-lag-word", "    maximum_lag_on_failover: 1048576", "    maximum_lag_on_failover: lots"),
        ("sync-mode-sometimes", "    loop_wait: 10", "    loop_wait: 10\n    synchronous_mode: sometimes"),
        ("sync-mode-quorum", "    loop_wait: 10", "    loop_wait: 10\n    synchronous_mode: quorum"),
        ("sync-mode-on", "    loop_wait: 10", "    loop_wait: 10\n    synchronous_mode: on"),
        ("sync-mode-int", "    loop_wait: 10", "    loop_wait: 10\n    synchronous_mode: 2"),
        ("sync-mode-strict-word", "    loop_wait: 10", "    loop_wait: 10\n    synchronous_mode_strict: maybe"),
        ("sync-node-count-0", "    loop_wait: 10", "    loop_wait: 10\n    synchronous_node_count: 0"),
        ("sync-node-count-word", "    loop_wait: 10", "    loop_wait: 10\n    synchronous_node_count: two"),
        ("use-pg-rewind-word", "      use_pg_rewind: true", "      use_pg_rewind: sometimes"),
        ("use-pg-rewind-string-yes", "      use_pg_rewind: true", '      use_pg_rewind: "yes"'),
        ("dcs-max-connections-0", "      use_pg_rewind: true",
         "      use_pg_rewind: true\n      parameters:\n        max_connections: 0"),
        ("dcs-max-connections-string", "      use_pg_rewind: true",
         "      use_pg_rewind: true\n      parameters:\n        max_connections: '100'"),
        ("dcs-pg-hba-string", "      use_pg_rewind: true", "      use_pg_rewind: true\n      pg_hba: host all all 0/0 md5"),
        ("superuser-password-list", "      password: example-superuser-secret",
         "      password: [example-superuser-secret]"),
        ("replication-password-list", "      password: example-replication-secret",
         "      password:\n        - example-replication-secret\n        - second"),
        ("superuser-password-int", "      password: example-superuser-secret", "      password: 123456"),
        ("superuser-password-null", "      password: example-superuser-secret", "      password:"),
        ("superuser-password-map", "      password: example-superuser-secret", "      password: {value: x}"),
        ("superuser-username-int", "      username: postgres", "      username: 42"),
        ("superuser-username-empty", "      username: postgres", '      username: ""'),
        ("scope-int", "scope: postgres", "scope: 123"),
        ("scope-bool", "scope: postgres", "scope: yes"),
        ("scope-empty", "scope: postgres", "scope:"),
        ("scope-list", "scope: postgres", "scope: [a]"),
        ("name-float", "name: node1", "name: 1.5"),
        ("namespace-int", "namespace: /service/", "namespace: 5"),
        ("etcd3-hosts-empty-list", "  hosts:\n    - 127.0.0.1", "  hosts: []\n  unused:\n    - 127.0.0.1"),
        ("etcd3-hosts-empty-string", "  hosts:\n    - 127.0.0.1", "  hosts: ''\n  unused:\n    - 127.0.0.1"),
        ("etcd3-hosts-int", "  hosts:\n    - 127.0.0.1", "  hosts: 2379\n  unused:\n    - 127.0.0.1"),
        ("etcd3-hosts-no-port", "    - 127.0.0.1:", "    - 127.0.0.1\n    - 127.0.0.1:"),
        ("etcd3-hosts-url-credentials", "    - 127.0.0.1:", "    - http://root:hunter2secret@127.0.0.1:"),
        ("etcd3-hosts-map", "  hosts:\n    - 127.0.0.1", "  hosts:\n    a: 127.0.0.1"),
        ("etcd3-url-credentials", "  hosts:\n", "  url: http://root:hunter2secret@127.0.0.1:2379\n  hosts:\n"),
        ("etcd3-protocol-int", "  hosts:\n", "  protocol: 3\n  hosts:\n"),
        ("etcd3-password-int", "  hosts:\n", "  username: root\n  password: 1234\n  hosts:\n"),
        ("etcd3-empty-section", "etcd3:\n  hosts:\n", "etcd3: {}\nunused:\n  hosts:\n"),
        ("etcd3-null-section", "etcd3:\n  hosts:\n", "etcd3:\nunused:\n  hosts:\n"),
        ("etcd3-list-section", "etcd3:\n  hosts:\n", "etcd3: []\nunused:\n  hosts:\n"),
        ("restapi-listen-int", "  listen: 127.0.0.11:8008", "  listen: 8008"),
        ("restapi-listen-no-port", "  listen: 127.0.0.11:8008", "  listen: 127.0.0.11"),
        ("restapi-listen-bad-port", "  listen: 127.0.0.11:8008", "  listen: 127.0.0.11:http"),
        ("restapi-listen-port-range", "  listen: 127.0.0.11:8008", "  listen: 127.0.0.11:99999"),
        ("restapi-connect-localhost", "  connect_address: 127.0.0.11:8008", "  connect_address: 127.0.0.1:8008"),
        ("restapi-connect-wildcard", "  connect_address: 127.0.0.11:8008", "  connect_address: 0.0.0.0:8008"),
        ("restapi-connect-list", "  connect_address: 127.0.0.11:8008", "  connect_address: [127.0.0.11:8008]"),
        ("restapi-auth-username-only", "  connect_address: 127.0.0.11:8008",
         "  connect_address: 127.0.0.11:8008\n  authentication:\n    username: admin"),
        ("restapi-verify-client-word", "  connect_address: 127.0.0.11:8008",
         "  connect_address: 127.0.0.11:8008\n  verify_client: always"),
        ("restapi-list", "restapi:\n  listen: 127.0.0.11:8008\n  connect_address: 127.0.0.11:8008",
         "restapi:\n  - 127.0.0.11:8008"),
        ("postgresql-listen-wildcard", "  listen: 127.0.0.11:5432", "  listen: '*:5432'"),
        ("postgresql-listen-multi", "  listen: 127.0.0.11:5432", "  listen: 127.0.0.11,127.0.0.1:5432"),
        ("postgresql-connect-localhost", "  connect_address: 127.0.0.11:5432", "  connect_address: localhost:5432"),
        ("postgresql-connect-port-word", "  connect_address: 127.0.0.11:5432", "  connect_address: 127.0.0.11:pg"),
        ("postgresql-pg-hba-empty", data_dir_line, data_dir_line + "\n  pg_hba: []"),
        ("postgresql-pg-hba-ints", data_dir_line, data_dir_line + "\n  pg_hba: [1, 2]"),
        ("postgresql-pg-ctl-timeout-negative", data_dir_line, data_dir_line + "\n  pg_ctl_timeout: -5"),
        ("postgresql-parameters-list", data_dir_line, data_dir_line + "\n  parameters: [a]"),
        ("postgresql-socket-dirs-list", data_dir_line,
         data_dir_line + "\n  parameters:\n    unix_socket_directories: [/tmp]"),
        ("postgresql-bin-name-missing", bin_dir_line, bin_dir_line + "\n  bin_name:\n    pg_ctl: pg_ctl_nowhere"),
        ("postgresql-proxy-localhost", data_dir_line, data_dir_line + "\n  proxy_address: 127.0.0.1:6432"),
        ("log-level-verbose", "scope: postgres", "scope: postgres\nlog:\n  level: VERBOSE"),
        ("log-level-lowercase", "scope: postgres", "scope: postgres\nlog:\n  level: info"),
        ("log-format-empty-list", "scope: postgres", "scope: postgres\nlog:\n  format: []"),
        ("log-mode-too-big", "scope: postgres", "scope: postgres\nlog:\n  mode: 1000"),
        ("log-dir-int", "scope: postgres", "scope: postgres\nlog:\n  dir: 7"),
        ("watchdog-mode-sometimes", "scope: postgres", "scope: postgres\nwatchdog:\n  mode: sometimes"),
        ("watchdog-mode-off-bool", "scope: postgres", "scope: postgres\nwatchdog:\n  mode: off"),
        ("watchdog-safety-margin-word", "scope: postgres", "scope: postgres\nwatchdog:\n  safety_margin: wide"),
        ("tags-nofailover-and-priority", "scope: postgres",
         "scope: postgres\ntags:\n  nofailover: true\n  failover_priority: 1"),
        ("tags-nofailover-string", "scope: postgres", "scope: postgres\ntags:\n  nofailover: 'yes'"),
        ("tags-priority-negative", "scope: postgres", "scope: postgres\ntags:\n  failover_priority: -1"),
        ("tags-nosync-and-priority", "scope: postgres", "scope: postgres\ntags:\n  nosync: false\n  sync_priority: 2"),
        ("tags-list", "scope: postgres", "scope: postgres\ntags: [a]"),
        ("thread-pool-size-2", "scope: postgres", "scope: postgres\nthread_pool_size: 2"),
        ("ctl-insecure-word", "scope: postgres", "scope: postgres\nctl:\n  insecure: sure"),
        ("bootstrap-dcs-missing", "bootstrap:\n  dcs:\n", "bootstrap:\n  method: initdb\n  notdcs:\n"),
        ("bootstrap-initdb-string", "bootstrap:\n", "bootstrap:\n  initdb: data-checksums\n"),
        ("bootstrap-initdb-list-int", "bootstrap:\n", "bootstrap:\n  initdb: [1]\n"),
        ("bootstrap-list", "bootstrap:\n  dcs:\n", "bootstrap: []\nunused:\n  dcs:\n"),
        ("standby-cluster-port-word", "    loop_wait: 10",
         "    loop_wait: 10\n    standby_cluster:\n      host: 127.0.0.1\n      port: fivefour"),
        ("unknown-top-key", "scope: postgres", "scope: postgres\nsurprise: 1"),  # Patroni ignores it
        ("date-value", "name: node1", "name: 2024-01-01"),
        ("date-key", "scope: postgres", "scope: postgres\ntags:\n  2024-01-01: x\n  nofailover: false"),
        ("binary-value", "scope: postgres", "scope: !!binary aGVsbG8="),
        ("set-value", "scope: postgres", "scope: postgres\ntags: !!set {a, b}"),
        ("timestamp-password", "      password: example-superuser-secret", "      password: 2001-12-14t21:59:43.10-05:00"),
        ("citus-group-negative", "scope: postgres", "scope: postgres\ncitus:\n  database: db\n  group: -1"),
        ("second-dcs-consul", "scope: postgres", "scope: postgres\nconsul:\n  host: 127.0.0.1"),
    ]
    for name, old, new in types:
        add(name, "types", _sub(base, old, new))

    # --- missing keys ------------------------------------------------------------------------------
    for line in ("scope: postgres", "name: node1", "restapi:", "  listen: 127.0.0.11:8008",
                 "  connect_address: 127.0.0.11:8008", "etcd3:", "postgresql:", data_dir_line,
                 "  listen: 127.0.0.11:5432", "  connect_address: 127.0.0.11:5432", "  authentication:",
                 "    superuser:", "    replication:", "      username: postgres", "      username: replicator",
                 "bootstrap:", "  dcs:", "namespace: /service/", bin_dir_line):
        add("missing-" + line.strip().rstrip(":").split(":")[0].replace("_", "-") + f"-L{base.splitlines().index(line) + 1}",
            "missing keys", _drop(base, line))
    add("missing-both-passwords", "missing keys",
        base.replace("      password: example-superuser-secret\n", "").replace(
            "      password: example-replication-secret\n", ""))

    # --- size, depth, kind of file -----------------------------------------------------------------
    add("deep-nesting-flow-10000", "depth", base + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n", broken=True)
    add("deep-nesting-flow-150", "depth", base + "deep: " + "[" * 150 + "]" * 150 + "\n", broken=True)
    add("deep-nesting-block-400", "depth",
        base + "deep:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)) + " " * 400 + "k: v\n", broken=True)
    filler = "".join(f"    key{i}: some value that fills the file {i}\n" for i in range(450_000))
    add("size-20mb", "size", base + "tags:\n  filler:\n" + filler, broken=True)
    out.append(Mutant("fifo", "kind of file", special="fifo", broken=True))
    out.append(Mutant("directory", "kind of file", special="directory", broken=True))
    out.append(Mutant("dev-zero", "kind of file", special="devzero", broken=True))
    return out
