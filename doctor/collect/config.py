"""Find, read and parse patroni.yml the way Patroni and patronictl do.

This module is special among collectors: the parsed config (with its secrets) is
needed by the other collectors, so it runs first and feeds the ``CollectContext``.
Only a redacted copy goes into the facts.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import stat
from dataclasses import dataclass
from typing import Any

import yaml

from doctor.collect.command import run_command
from doctor.collect.deadline import Deadline
from doctor.errors import UsageError
from doctor.filekind import kind_of

DEFAULT_PATHS = ("/etc/patroni/patroni.yml", "/etc/patroni.yml")

# PATRONI_* environment overrides that matter for diagnosis: env name -> config path.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "PATRONI_NAME": ("name",),
    "PATRONI_SCOPE": ("scope",),
    "PATRONI_NAMESPACE": ("namespace",),
    "PATRONI_RESTAPI_LISTEN": ("restapi", "listen"),
    "PATRONI_RESTAPI_CONNECT_ADDRESS": ("restapi", "connect_address"),
    "PATRONI_RESTAPI_USERNAME": ("restapi", "authentication", "username"),
    "PATRONI_RESTAPI_PASSWORD": ("restapi", "authentication", "password"),
    "PATRONI_POSTGRESQL_LISTEN": ("postgresql", "listen"),
    "PATRONI_POSTGRESQL_CONNECT_ADDRESS": ("postgresql", "connect_address"),
    "PATRONI_POSTGRESQL_DATA_DIR": ("postgresql", "data_dir"),
    "PATRONI_POSTGRESQL_BIN_DIR": ("postgresql", "bin_dir"),
    "PATRONI_POSTGRESQL_PGPASS": ("postgresql", "pgpass"),
    "PATRONI_SUPERUSER_USERNAME": ("postgresql", "authentication", "superuser", "username"),
    "PATRONI_SUPERUSER_PASSWORD": ("postgresql", "authentication", "superuser", "password"),
    "PATRONI_REPLICATION_USERNAME": ("postgresql", "authentication", "replication", "username"),
    "PATRONI_REPLICATION_PASSWORD": ("postgresql", "authentication", "replication", "password"),
    "PATRONI_REWIND_USERNAME": ("postgresql", "authentication", "rewind", "username"),
    "PATRONI_REWIND_PASSWORD": ("postgresql", "authentication", "rewind", "password"),
    "PATRONI_LOG_DIR": ("log", "dir"),
}
for _section in ("ETCD", "ETCD3"):
    for _key in ("HOST", "HOSTS", "URL", "PROXY", "PROTOCOL", "USERNAME", "PASSWORD", "CACERT", "CERT", "KEY"):
        ENV_OVERRIDES[f"PATRONI_{_section}_{_key}"] = (_section.lower(), _key.lower())


def discover_config_path(explicit: str | None, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Return (path, how it was found), in patronictl's order of precedence.

    Raises UsageError when nothing can be found, naming every place it looked.
    """
    env = os.environ if env is None else env
    if explicit:
        return explicit, "--config-file"
    if env.get("PATRONICTL_CONFIG_FILE"):
        return env["PATRONICTL_CONFIG_FILE"], "PATRONICTL_CONFIG_FILE"
    for candidate in DEFAULT_PATHS:
        if os.path.exists(candidate):
            return candidate, "default location"
    raise UsageError(
        "no Patroni config found: looked at -c/--config-file, $PATRONICTL_CONFIG_FILE, "
        + ", ".join(DEFAULT_PATHS)
        + ". Point pgdoctor at it with -c /path/to/patroni.yml"
    )


MAX_CONFIG_BYTES = 1024 * 1024  # a Patroni config is a few KB; beyond this it is not one (and would take seconds)
MAX_DEPTH = 100  # nesting levels; Patroni's own keys go 6 deep
LINE_TEXT_CHARS = 200  # of the offending line, in the facts
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add to what is written (a "billion laughs" adds billions)


def _too_big(path: str, size: int) -> UsageError:
    return UsageError(f"config file {path} is {size / 1024 / 1024:.1f} MB; a Patroni config is a few KB and "
                      f"pgdoctor reads at most {MAX_CONFIG_BYTES // 1024 // 1024} MB; check the path")


def _unreadable(path: str, exc: OSError) -> UsageError:
    if isinstance(exc, FileNotFoundError):
        return UsageError(f"config file {path} does not exist; check the path or pass -c")
    if isinstance(exc, PermissionError):
        return UsageError(f"config file {path} is not readable by this user; run pgdoctor as root or as postgres")
    return UsageError(f"config file {path} cannot be read: {exc.strerror or exc}")


def _not_a_file(path: str, mode: int) -> UsageError | None:
    if stat.S_ISDIR(mode):
        return UsageError(f"config {path} is a directory; give the patroni.yml file itself")
    if not stat.S_ISREG(mode):
        return UsageError(f"config {path} is {kind_of(mode)}, not a regular file; give the patroni.yml file itself")
    return None


def read_config_bytes(path: str) -> bytes:
    """The config file's bytes. Anything but a readable regular file of at most MAX_CONFIG_BYTES is a
    usage error (exit 3): a FIFO would block the open, /dev/zero would never end."""
    try:
        st = os.stat(path)
        refusal = _not_a_file(path, st.st_mode) or (_too_big(path, st.st_size) if st.st_size > MAX_CONFIG_BYTES else None)
        if refusal:
            raise refusal
        # O_NONBLOCK: should a FIFO have replaced the file since the stat, the open does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            refusal = _not_a_file(path, os.fstat(fh.fileno()).st_mode)
            if refusal:
                raise refusal
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _too_big(path, len(raw))
    return raw


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
              (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"))


def _where(raw: bytes, offset: int) -> tuple[int, int]:
    """(line, column), both from 1, of a byte offset."""
    return raw.count(b"\n", 0, offset) + 1, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def _utf16_without_bom(raw: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the NUL bytes say the (mostly ASCII) text is UTF-16 without a BOM."""
    if len(raw) < 4 or len(raw) % 2:
        return None
    even, odd = raw[0::2], raw[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def decode_config(raw: bytes, path: str) -> tuple[str, dict[str, Any] | None]:
    """The text to parse and, when the bytes are not what Patroni can read (UTF-8, a UTF-8 BOM allowed),
    what is wrong and where (byte offset, line, column). The text is then decoded as well as it can be,
    so that the rest of the diagnosis still knows the node. A binary file is a usage error (exit 3)."""
    for bom, codec, name in _WIDE_BOMS:
        if raw.startswith(bom):
            return raw.decode(codec, "replace"), {
                "offset": 0, "byte": f"0x{raw[0]:02x}", "line": 1, "column": 1, "encoding": name,
                "problem": f"the file is {name} (it starts with a {name} byte order mark); Patroni reads UTF-8 only"}
    if b"\x00" in raw:
        wide = _utf16_without_bom(raw)
        if wide:
            return raw.decode(wide, "replace"), {
                "offset": 0, "byte": f"0x{raw[0]:02x}", "line": 1, "column": 1, "encoding": "UTF-16LE" if wide == "utf-16-le" else "UTF-16BE",
                "problem": "the file is UTF-16 (every other byte is NUL); Patroni reads UTF-8 only"}
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"config file {path} is binary, not YAML; check the path") from None
        if raw.count(0) > max(8, len(raw) // 100):
            raise UsageError(f"config file {path} is binary, not YAML; check the path")
        # A stray NUL in a text file: the YAML reader reports it with its position.
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        line, column = _where(raw, exc.start)
        latin1 = all(b >= 0xA0 or b < 0x80 for b in raw)
        return raw.decode("utf-8", "replace"), {
            "offset": exc.start, "byte": f"0x{bad:02x}", "line": line, "column": column,
            "encoding": "Latin-1" if latin1 else None,
            "problem": f"byte 0x{bad:02x} at offset {exc.start} (line {line}, column {column}) is not UTF-8"
                       + ("; the file looks like Latin-1 (ISO-8859-1)" if latin1 else "")
                       + "; Patroni reads UTF-8 only and stops with UnicodeDecodeError"}


def read_config_text(path: str) -> str:
    """The config as text, for those who only need its words (bytes that are not UTF-8 are replaced)."""
    return decode_config(read_config_bytes(path), path)[0]


def yaml_error_facts(text: str, exc: yaml.YAMLError) -> dict[str, Any]:
    """Describe a YAML error: line, column, problem and the usual human cause."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    position = getattr(exc, "position", None)  # a ReaderError (a character YAML does not allow) has only this
    if mark is None and isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
    lines = text.splitlines()
    line_text = lines[line - 1][:LINE_TEXT_CHARS] if line and 0 < line <= len(lines) else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    hints: list[str] = []
    if isinstance(exc, ConfigShapeError):  # a shape, not a typo: no hint about tabs or quoting applies
        return {"line": line, "column": column, "problem": exc.problem, "context": None,
                "line_text": line_text, "tab_lines": [],
                "tab_fixes": [], "hints": [], "message": exc.problem}
    tab_lines = [i + 1 for i, l in enumerate(lines) if "\t" in l[: len(l) - len(l.lstrip())]]
    if "\t" in (problem or "") or re.search(r"\btabs?\b", (problem or "").lower()) or tab_lines:
        hints.append(
            "tab character used for indentation"
            + (f" on line {', '.join(map(str, tab_lines[:5]))}" if tab_lines else "")
            + "; YAML allows spaces only"
        )
    if problem and ("mapping values are not allowed" in problem or "did not find expected key" in problem
                    or "expected <block end>" in problem):
        hints.append("indentation does not line up with the keys around it")
    if line and 0 < line <= len(lines) and not tab_lines:
        bad = lines[line - 1]
        if re.search(r":\s*[@`%&*!|>]", bad) or re.search(r":\s+[^'\"\s].*:\s", bad) or "found character" in (problem or ""):
            hints.append("a value starts with or contains a YAML special character; quote it")
    return {
        "line": line,
        "column": column,
        "problem": problem,
        "context": context,
        "line_text": line_text,
        "tab_lines": tab_lines,
        "tab_fixes": [{"line": n, "indent": _indent_for(lines, n - 1)} for n in tab_lines[:20]],
        "hints": hints,
        "message": f"{problem}" + (f" ({context})" if context else ""),
    }


def _indent_for(lines: list[str], index: int) -> int:
    """The number of spaces a tab-indented line should have, judged from its neighbours.

    After a ``key:`` that opens a mapping, the line is its first child: as deep as the next
    space-indented line when that one is deeper, else two more than the parent. Otherwise it is
    a sibling of the line before it.
    """
    def usable(text: str) -> bool:
        return bool(text.strip()) and not text.lstrip().startswith("#") and "\t" not in text[: len(text) - len(text.lstrip())]

    def indent(text: str) -> int:
        return len(text) - len(text.lstrip(" "))

    prev = next((lines[i] for i in range(index - 1, -1, -1) if usable(lines[i])), None)
    nxt = next((lines[i] for i in range(index + 1, len(lines)) if usable(lines[i])), None)
    if prev is None:
        return 0
    if prev.rstrip().endswith(":"):
        if nxt is not None and indent(nxt) > indent(prev):
            return indent(nxt)
        return indent(prev) + 2
    return indent(prev)


class ConfigShapeError(yaml.YAMLError):
    """A document nested too deep, aliased into too many nodes, or aliased into itself."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value)


def check_shape(root: yaml.Node) -> None:
    """Refuse a node graph that would be too deep, or too large once its aliases are expanded, for
    anything that walks the loaded config (the redactor, the checks, JSON output).

    Aliases are shared nodes in the graph: sizes are counted once per node (memoised), so a
    billion-laughs bomb is measured in microseconds, not expanded. Only collections are visited;
    a scalar counts as one node where it is used.
    """
    if isinstance(root, yaml.ScalarNode):
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    written = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = [k for k in _children(node) if not isinstance(k, yaml.ScalarNode)]
            size[key] = 1 + len(node.value) * (2 if isinstance(node, yaml.MappingNode) else 1) - len(kids) \
                + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_nodes.discard(key)
            if depth[key] > MAX_DEPTH:
                raise ConfigShapeError(f"the document is nested more than {MAX_DEPTH} levels deep", node.start_mark)
            if size[key] > written + MAX_ALIAS_NODES:
                raise ConfigShapeError(f"aliases expand the document by more than {MAX_ALIAS_NODES:,} nodes "
                                       f"beyond the {written:,} written (an alias bomb)", node.start_mark)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise ConfigShapeError("an alias refers to a node that contains it (a recursive alias)", node.start_mark)
        open_nodes.add(key)
        kids = _children(node)
        written += 1 + len(kids)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if not isinstance(k, yaml.ScalarNode) and id(k) not in size)


class _BoundedLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml's safe loader (libyaml's when present), refusing a too deep or too aliased document before
    building it."""

    def construct_document(self, node: yaml.Node) -> Any:
        check_shape(node)
        return super().construct_document(node)


class _PureBoundedLoader(yaml.SafeLoader):
    """The pure-Python fallback for a yaml without libyaml."""

    def construct_document(self, node: yaml.Node) -> Any:
        check_shape(node)
        return super().construct_document(node)


def load_yaml(text: str) -> Any:
    """yaml.safe_load with bounds: depth, alias expansion, no recursive aliases (ConfigShapeError)."""
    loader = _BoundedLoader if getattr(yaml, "__with_libyaml__", False) else _PureBoundedLoader
    try:
        return yaml.load(text, Loader=loader)
    except RecursionError:
        # The pure-Python composer recurses per level and gives up before MAX_DEPTH can be judged.
        raise ConfigShapeError(f"the document is nested more than {MAX_DEPTH} levels deep", None) from None


_JSON_KEYS = (str, int, float, bool, type(None))


def _plain_keys(data: Any) -> None:
    """Give keys JSON cannot hold (a date, bytes) their text, in place: the config goes into facts.json.
    Patroni knows no such key, so nothing it would read changes."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            if not all(isinstance(k, _JSON_KEYS) for k in node):
                items = list(node.items())
                node.clear()
                node.update((k if isinstance(k, _JSON_KEYS) else str(k), v) for k, v in items)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _no_mapping_facts(problem: str, message: str, line: int | None) -> dict[str, Any]:
    return {"line": line, "column": 1 if line else None, "problem": problem, "hints": [], "message": message,
            "tab_lines": [], "context": None, "line_text": None}


def parse_config(text: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Parse YAML text; return (config, yaml_error_facts). Never raises for what the text holds."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        return None, yaml_error_facts(text, exc)
    if data is None:
        return None, _no_mapping_facts("the file is empty", "the file is empty", None)
    if not isinstance(data, dict):
        return None, _no_mapping_facts(f"the top level is a {type(data).__name__}, not a mapping of keys",
                                       "the top level is not a mapping", 1)
    _plain_keys(data)
    return data, None


@dataclass
class LoadedConfig:
    """patroni.yml as read: its text, the parsed mapping (None when it does not parse) and what is wrong."""

    text: str
    config: dict[str, Any] | None
    yaml_error: dict[str, Any] | None
    encoding_error: dict[str, Any] | None
    size: int


def load_config(path: str) -> LoadedConfig:
    """Read, decode and parse the config; refuse (UsageError) what is not a config file at all."""
    raw = read_config_bytes(path)
    text, encoding_error = decode_config(raw, path)
    config, yaml_error = parse_config(text)
    return LoadedConfig(text=text, config=config, yaml_error=yaml_error, encoding_error=encoding_error, size=len(raw))


PATRONI_TOP_KEYS = ("scope", "name", "namespace", "restapi", "postgresql", "etcd", "etcd3", "bootstrap", "consul",
                    "zookeeper", "kubernetes", "raft", "exhibitor", "tags", "watchdog", "ctl", "log")


def require_patroni_config(config: dict[str, Any], path: str) -> None:
    """Refuse a YAML file that is plainly not a Patroni config (a compose file, an Ansible vars file).

    Judging one would make every check speak of defaults and of other clusters' processes.
    """
    if any(key in config for key in PATRONI_TOP_KEYS):
        return
    found = ", ".join(list(map(str, config))[:6]) or "nothing"
    raise UsageError(f"{path} does not look like a Patroni config: it has none of scope, name, restapi, postgresql, "
                     f"etcd3 at its top level (it has {found}); point -c at the node's patroni.yml")


def apply_env_overrides(config: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    """Merge PATRONI_* variables over the file, as Patroni does; return the names applied."""
    env = os.environ if env is None else env
    applied = []
    for name, path in ENV_OVERRIDES.items():
        if name in env:
            node = config
            for part in path[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[path[-1]] = env[name]
            applied.append(name)
    return applied


PATRONI_GLOBS = ("/opt/*/venv/bin/patroni", "/opt/*/bin/patroni", "/opt/*/*/venv/bin/patroni",
                 "/usr/local/bin/patroni", "/usr/bin/patroni", "/var/lib/postgresql/*/bin/patroni")


def patroni_candidates() -> list[str]:
    """Every distinct Patroni executable on this host: $PATH first, then the usual venvs and packages."""
    import glob

    found: list[str] = []
    which = shutil.which("patroni")
    for path in ([which] if which else []) + [p for g in PATRONI_GLOBS for p in sorted(glob.glob(g))]:
        real = os.path.realpath(path)
        if os.access(path, os.X_OK) and real not in [os.path.realpath(f) for f in found]:
            found.append(path)
    return found


def find_patroni() -> str | None:
    candidates = patroni_candidates()
    return candidates[0] if candidates else None


def run_validate_config(path: str, deadline: Deadline) -> dict[str, Any]:
    """Run ``patroni --validate-config --ignore-listen-port`` and keep what it says as evidence."""
    exe = find_patroni()
    if not exe:
        return {"available": False}
    res = run_command([exe, "--validate-config", "--ignore-listen-port", path], deadline, "slow-command")
    if res.get("error"):
        return {"available": True, "error": res["error"]}
    lines = [l for l in (res["stdout"] + "\n" + res["stderr"]).splitlines() if l.strip()]
    return {"available": True, "executable": exe, "exit_code": res["exit_code"], "problems": lines[:50]}
