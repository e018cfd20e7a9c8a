"""Find, read and parse patroni.yml the way Patroni and patronictl do.

This module is special among collectors: the parsed config (with its secrets) is
needed by the other collectors, so it runs first and feeds the ``CollectContext``.
Only a redacted copy goes into the facts.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from doctor.collect.command import run_command
from doctor.collect.deadline import Deadline
from doctor.errors import UsageError

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


def read_config_text(path: str) -> str:
    """Read the config file; a missing or unreadable file is a usage error (exit 3)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"config {path} is a directory; give the patroni.yml file itself")
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist; check the path or pass -c") from None
    except PermissionError:
        raise UsageError(f"config file {path} is not readable by this user; run pgdoctor as root or as postgres") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        raise UsageError(f"config file {path} is binary, not YAML; check the path")
    return raw.decode("utf-8", errors="replace")


def yaml_error_facts(text: str, exc: yaml.YAMLError) -> dict[str, Any]:
    """Describe a YAML error: line, column, problem and the usual human cause."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    lines = text.splitlines()
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    hints: list[str] = []
    tab_lines = [i + 1 for i, l in enumerate(lines) if "\t" in l[: len(l) - len(l.lstrip())]]
    if "\t" in (problem or "") or "tab" in (problem or "").lower() or tab_lines:
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
        "line_text": lines[line - 1] if line and 0 < line <= len(lines) else None,
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


def parse_config(text: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Parse YAML text; return (config, yaml_error_facts)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, yaml_error_facts(text, exc)
    if data is None:
        return None, {"line": None, "column": None, "problem": "the file is empty", "hints": [], "message": "the file is empty",
                      "tab_lines": [], "context": None, "line_text": None}
    if not isinstance(data, dict):
        return None, {"line": 1, "column": 1, "problem": f"the top level is a {type(data).__name__}, not a mapping of keys",
                      "hints": [], "message": "the top level is not a mapping", "tab_lines": [], "context": None,
                      "line_text": None}
    return data, None


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
