"""The knowledge base: one Markdown playbook per problem id.

A playbook has YAML front matter (id, title, severity, layer, explains, log
patterns, and ``lab: none — <reason>`` when no lab fault produces it) and the
sections Symptoms, Cause, Fix, Verify. Fix and Verify are
Jinja2 templates rendered with this node's real values, so the operator gets
``chmod 700 /var/lib/postgresql/15/data``, not ``chmod 700 <data_dir>``. Every value is placed by
``doctor.fixquote``: shell-quoted inside code (fenced blocks and inline code), plain text in prose,
so that no value can add a word or a command to a fix.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import jinja2

from doctor.fixquote import mark, place_values, wrap_fragments

SEVERITIES = ("critical", "error", "warning", "info")
LOG_KINDS = ("patroni", "postgres", "etcd", "pg_basebackup", "pg_rewind", "any")
SECTION_RE = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)
CODE_RE = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)
# libyaml's loader where PyYAML has it: the pure-Python one spends ~60 ms on the front matters.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PlaybookError(ValueError):
    """A playbook file is malformed."""


@functools.cache
def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    """(Fix and Verify's environment, a pattern value's), made on first use: a healthy run renders no fix,
    and importing Jinja2 costs ~15 ms.

    Fix and Verify: every output is marked, then placed for where it stands (see doctor.fixquote). A
    pattern's own values are values, not Markdown: rendered plainly, placed later like any other. An
    unknown value renders as ``<name>`` in both, so a gap is visible, never silently empty.
    """
    import jinja2

    class ShowMissing(jinja2.Undefined):
        def __str__(self) -> str:
            return f"<{self._undefined_name}>"

    fixes = jinja2.Environment(undefined=ShowMissing, autoescape=False, keep_trailing_newline=True, finalize=mark)
    values = jinja2.Environment(undefined=ShowMissing, autoescape=False, keep_trailing_newline=True)
    return fixes, values


@dataclass
class LogPattern:
    """One known log message that reveals a problem."""

    id: str
    regex: str
    log: str  # patroni | postgres | etcd | pg_basebackup | pg_rewind | any
    playbook: str
    benign: bool = False  # noise that must not be reported on its own (e.g. during bootstrap)
    event: str | None = None  # a timeline event this line marks (leader-acquired, promoted, ...)
    min_count: int = 1  # how many occurrences before it counts as a problem
    severity: str | None = None
    min_span: float = 0.0  # seconds between first and last occurrence before it counts (transient noise)
    values: dict[str, str] = field(default_factory=dict)  # extra fix values, Jinja over the node's values
    # named group -> node value it must equal (e.g. user: replication_user), else the line is not this problem
    require: dict[str, str] = field(default_factory=dict)
    persist: Persist | None = None  # a problem only when it outlasts a few HA loops without progress


@dataclass(frozen=True)
class Persist:
    """``persist:`` of a pattern: its line is a problem only when it keeps coming back, with no progress
    line between, for more than ``loops`` HA loops; seen briefly and then followed by progress it is a
    transient of a bootstrap, clone or failover, and quiet.

    ``each_loop``: the line is the HA loop's own report (Patroni logs what ``run_cycle`` returns once per
    loop), so each line is one loop; otherwise loops are counted in time, ``loop_wait`` seconds each.
    ``progress``: the event names or pattern ids that end a run of the line (the playbook's ``resolved_by``).
    ``with_pattern``: a pattern id whose line must come in the same log during the run (the loop's
    ``Lock owner: None``), else the run does not count.
    """

    loops: int = 3
    each_loop: bool = False
    progress: frozenset[str] = frozenset()
    with_pattern: str | None = None


@dataclass
class Playbook:
    id: str
    title: str
    severity: str
    layer: int
    explains: list[str]
    sections: dict[str, str]
    patterns: list[LogPattern] = field(default_factory=list)
    source: str = ""
    explained_by: list[str] = field(default_factory=list)  # causes, named from the consequence's side
    # event names or pattern ids (any playbook) whose line, seen after this problem's last line, ends it
    resolved_by: list[str] = field(default_factory=list)
    resolved_across_nodes: bool = False  # a healing line on any node counts (the leader refuses, a replica heals)
    lab: str | None = None  # "none — <reason>" when the lab has no fault that produces this problem

    def section(self, name: str) -> str:
        return self.sections.get(name.lower(), "")

    def render(self, name: str, values: dict[str, Any]) -> str:
        text = self.section(name)
        if not text:
            return ""
        import jinja2

        values = wrap_fragments(values)
        try:
            return place_values(_template(text).render(**values), values).strip()
        except jinja2.TemplateError as exc:
            return f"(fix template error in {self.source}: {exc})\n{text.strip()}"
        except (TypeError, ValueError, ArithmeticError) as exc:
            # a value of another type than the facts hold when pgdoctor collects them (a tampered bundle):
            # the section unfilled, with the reason, rather than no report at all
            return f"(the values for {self.source} do not fit its template: {type(exc).__name__}: {exc})\n{text.strip()}"

    def value_names(self) -> frozenset[str]:
        """The value names the Fix and Verify templates use."""
        return _value_names(self.section("fix") + "\n" + self.section("verify"))

    def fix_commands(self, values: dict[str, Any]) -> list[str]:
        """The shell commands of the Fix section, rendered, one string per code block line group."""
        return [block.strip() for block in CODE_RE.findall(self.render("fix", values)) if block.strip()]


@functools.lru_cache(maxsize=256)
def _template(text: str) -> jinja2.Template:
    """A section's compiled template (sections are rendered once per diagnosis, often the same ones)."""
    return _environments()[0].from_string(text)


@functools.lru_cache(maxsize=256)
def _value_names(text: str) -> frozenset[str]:
    import jinja2
    import jinja2.meta

    try:
        return frozenset(jinja2.meta.find_undeclared_variables(_environments()[0].parse(text)))
    except jinja2.TemplateError:
        return frozenset()


def render_value(template: str, values: dict[str, Any]) -> str:
    """Render one small Jinja template (a pattern's ``values``) with the node's values."""
    import jinja2

    try:
        return _environments()[1].from_string(template).render(**values)
    except jinja2.TemplateError:
        return template


def parse_playbook(text: str, source: str = "", check_regexes: bool = True) -> Playbook:
    """One playbook file. ``check_regexes``: compile every pattern to refuse a bad one here (a team's
    playbooks); the built-in ones are compiled by the test suite and, when logs are read, by the scanner.
    """
    if not text.startswith("---"):
        raise PlaybookError(f"{source}: no YAML front matter (must start with ---)")
    try:
        _, front, body = text.split("---", 2)
        meta = yaml.load(front, Loader=_YAML_LOADER) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise PlaybookError(f"{source}: bad front matter: {exc}") from None
    for key in ("id", "title", "severity"):
        if key not in meta:
            raise PlaybookError(f"{source}: front matter lacks '{key}'")
    if meta["severity"] not in SEVERITIES:
        raise PlaybookError(f"{source}: severity must be one of {SEVERITIES}")
    sections: dict[str, str] = {}
    parts = SECTION_RE.split(body)
    for i in range(1, len(parts) - 1, 2):
        sections[parts[i].strip().lower()] = parts[i + 1]
    patterns = []
    for i, p in enumerate(meta.get("patterns") or []):
        if not isinstance(p, dict) or "regex" not in p:
            raise PlaybookError(f"{source}: pattern #{i + 1} needs a regex")
        try:
            compiled = re.compile(p["regex"]) if check_regexes else None
        except re.error as exc:
            raise PlaybookError(f"{source}: pattern {p.get('id', i + 1)} is not a valid regex: {exc}") from None
        patterns.append(LogPattern(
            id=str(p.get("id") or f"{meta['id']}-{i + 1}"), regex=p["regex"], log=str(p.get("log", "any")),
            playbook=meta["id"], benign=bool(p.get("benign", False)), event=p.get("event"),
            min_count=int(p.get("min_count", 1)), severity=p.get("severity"),
            min_span=float(p.get("min_span", 0) or 0), values={str(k): str(v) for k, v in (p.get("values") or {}).items()},
            require={str(k): str(v) for k, v in (p.get("require") or {}).items()},
            persist=_persist_of(p.get("persist"), meta, source),
        ))
        missing = set(patterns[-1].require) - set(compiled.groupindex) if compiled else set()
        if missing:
            raise PlaybookError(f"{source}: pattern {patterns[-1].id}: require names no group of its regex: "
                                f"{', '.join(sorted(missing))}")
        if patterns[-1].log not in LOG_KINDS:
            raise PlaybookError(f"{source}: pattern {patterns[-1].id}: log must be one of {LOG_KINDS}")
    ids = {q.id for q in patterns}
    for q in patterns:
        if q.persist and q.persist.with_pattern and q.persist.with_pattern not in ids:
            raise PlaybookError(f"{source}: pattern {q.id}: persist: with names no pattern of this playbook: "
                                f"{q.persist.with_pattern}")
    return Playbook(
        id=str(meta["id"]), title=str(meta["title"]), severity=str(meta["severity"]),
        layer=int(meta.get("layer", 50)), explains=list(meta.get("explains") or []),
        sections=sections, patterns=patterns, source=source,
        explained_by=list(meta.get("explained_by") or []),
        resolved_by=[str(x) for x in (meta.get("resolved_by") or [])],
        resolved_across_nodes=bool(meta.get("resolved_across_nodes", False)),
        lab=str(meta["lab"]) if meta.get("lab") else None,
    )


def _persist_of(spec: Any, meta: dict[str, Any], source: str) -> Persist | None:
    """``persist: 3`` or ``persist: {loops: 3, each_loop: true, with: <pattern id>}``; progress is the
    playbook's ``resolved_by``."""
    if spec is None or spec is False:
        return None
    if isinstance(spec, bool) or not isinstance(spec, (int, dict)):
        raise PlaybookError(f"{source}: persist must be a number of loops or a mapping")
    spec = {"loops": spec} if isinstance(spec, int) else spec
    unknown = set(spec) - {"loops", "each_loop", "with"}
    if unknown:
        raise PlaybookError(f"{source}: persist: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    loops = spec.get("loops", 3)
    if isinstance(loops, bool) or not isinstance(loops, int) or loops < 1:
        raise PlaybookError(f"{source}: persist: loops must be a whole number of at least 1")
    return Persist(loops=loops, each_loop=bool(spec.get("each_loop", False)),
                   progress=frozenset(str(x) for x in (meta.get("resolved_by") or [])),
                   with_pattern=str(spec["with"]) if spec.get("with") else None)


def builtin_dir() -> Path:
    return Path(str(resources.files("doctor.playbooks_md")))


def load_playbooks(extra_dirs: list[str] | None = None) -> dict[str, Playbook]:
    """Built-in playbooks, then the team's own (``--playbooks`` / $PGDOCTOR_PLAYBOOKS) on top.

    Parsed once per process and set of directories: a run needs them both for the log patterns
    and for the diagnosis. The built-in patterns are not compiled here (~20 ms that ``run --no-logs``
    does not need); tests/unit/test_catalogue.py parses every built-in playbook as a team's would be.
    """
    env_dirs = [d for d in os.environ.get("PGDOCTOR_PLAYBOOKS", "").split(os.pathsep) if d]
    dirs = (str(builtin_dir()), *tuple(env_dirs + list(extra_dirs or [])))
    return dict(_load_dirs(dirs))


@functools.lru_cache(maxsize=8)
def _load_dirs(dirs: tuple[str, ...]) -> dict[str, Playbook]:
    books: dict[str, Playbook] = {}
    builtin = builtin_dir()
    for d in map(Path, dirs):
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.md")):
            if f.name.lower() == "readme.md":
                continue
            book = parse_playbook(f.read_text(encoding="utf-8"), source=str(f), check_regexes=d != builtin)
            books[book.id] = book
    return books
