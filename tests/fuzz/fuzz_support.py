"""What the fuzz tests (tests/fuzz) and the longer run (bench/fuzz.py) share: the hostile-input
strategies, the command line run in-process, and the promises every outcome must keep.

In-process, not a subprocess per input: an example costs milliseconds instead of the interpreter's
start-up, which is what lets hundreds of examples stay in the fast suite. ``main()`` is the real
entry point (exit codes, one-line errors), run with stdout and stderr captured.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import io
import json
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from shell_words import active, code_lines, words

from doctor.facts import FACTS_VERSION
from tests.unit.conftest import read_fixture as read_fixture_at

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = (REPO / "examples" / "patroni.yml").read_text()
FIXTURES = REPO / "tests" / "unit" / "fixtures"


def fuzz_settings(max_examples: int) -> settings:
    """Seeded (the same examples every run) and bounded, so the fast suite stays quick and repeatable."""
    return settings(derandomize=True, max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# --- running the command line ---------------------------------------------------------------------

@dataclass
class Outcome:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str


def invoke(*argv: str) -> Outcome:
    """``pgdoctor ARGV`` through ``doctor.cli.main`` in this process, stdout and stderr captured."""
    from doctor.cli import main
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["pgdoctor", *argv]
    code: Any = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
    finally:
        sys.argv = saved
    return Outcome(argv, code if isinstance(code, int) else 3, out.getvalue(), err.getvalue())


def assert_clean(res: Outcome, fmt: str = "json", check_errors_ok: bool = False) -> dict[str, Any] | None:
    """The promises on bad input: exit 0-3, no traceback, no internal error, a refusal in one line,
    valid JSON for ``--format json``. Returns the JSON report when there is one.

    ``check_errors_ok``: a snapshot whose facts were tampered with (a value of another type where
    pgdoctor wrote a number, a list, a map) may leave a check unable to judge; the engine contains
    that as the check's ``error`` finding ("check raised …") and the rest of the report stands."""
    where = (res.argv, res.code, res.err[-2000:])
    assert res.code in (0, 1, 2, 3), where
    assert "Traceback" not in res.out + res.err and "internal error" not in res.err, where
    if res.code == 3 and not res.out:
        assert len([ln for ln in res.err.splitlines() if ln.strip()]) == 1, where
        return None
    if fmt == "json":
        report = json.loads(res.out)
        assert report["exit_code"] == res.code, where
        if not check_errors_ok:
            assert not [f for f in report["findings"] if f["status"] == "error"], where
        return report
    return None


# --- hostile values -------------------------------------------------------------------------------

SHELL_BITS = ["; rm -rf /", "| sh", "&& id", "`id`", "$(id)", "${IFS}", "' ; id ; '", '" ; id ; "', "\n",
              "\r\nrm -rf /", "-rf /", "--", "\\", "~root", "*", "\x1b[2J", "\u202e", "\x00", "\udcff"]
hostile_text = st.one_of(
    st.sampled_from(SHELL_BITS),
    st.text(max_size=40),
    st.builds(lambda a, b: a + b, st.sampled_from(["/var/lib/pg", "pg1", "postgres", "127.0.0.1"]),
              st.sampled_from(SHELL_BITS)),
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), hostile_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                           max_leaves=30)


# --- configs --------------------------------------------------------------------------------------

def _replace_line_value(text: str, line_no: int, value: str) -> str:
    lines = text.splitlines(keepends=True)
    i = line_no % len(lines)
    key, sep, _ = lines[i].partition(":")
    lines[i] = f"{key}{sep} {value}\n" if sep else value + "\n"
    return "".join(lines)


def _yaml_scalar(value: Any) -> str:
    return json.dumps(value, allow_nan=True)  # JSON is YAML: any value, quoted where it must be


@st.composite
def config_bytes(draw, base: str = EXAMPLE_CONFIG) -> bytes:
    """patroni.yml mutated the ways the corpus does by hand: a value swapped for any value, a cut,
    bytes spliced in, an alias nest, a deep nest, another encoding, or a document of its own."""
    kind = draw(st.sampled_from(["value", "cut", "splice", "aliases", "nest", "encoding", "document"]))
    if kind == "value":
        return _replace_line_value(base, draw(st.integers(0, 10_000)), _yaml_scalar(draw(json_values))).encode(
            "utf-8", "surrogatepass")
    if kind == "cut":
        raw = base.encode()
        return raw[:draw(st.integers(0, len(raw)))]
    if kind == "splice":
        raw = base.encode()
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(max_size=40)) + raw[at + draw(st.integers(0, 40)):]
    if kind == "aliases":
        levels, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        doc = ["a0: &a0 [lol]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
        return (base + "\n".join(doc) + f"\nbomb: *a{levels - 1}\n").encode()
    if kind == "nest":
        depth = draw(st.integers(1, 20_000))
        return (base + "deep: " + "[" * depth + "]" * depth + "\n").encode()
    if kind == "encoding":
        enc = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"]))
        return (base + f"# {draw(hostile_text)}\n").encode(enc, "replace")
    return json.dumps(draw(json_values), allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def judge_config(path: str) -> dict[str, Any] | None:
    """The config loading of every command and the two config checks, rendered as JSON (the way
    tests/unit/test_config_corpus.py judges a file, without the network a whole ``run`` would use).
    None for a one-line refusal; a UsageError message must be one line."""
    from doctor.collect import CollectOptions
    from doctor.errors import UsageError
    from doctor.facts import Facts
    from doctor.pipeline import analyze, load_config_into
    from doctor.redact import Redactor
    from doctor.render.emit import render_document

    facts = Facts({"version": 1})
    try:
        load_config_into(facts, CollectOptions(config_path=path), Redactor())
    except UsageError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
        return None
    report = analyze(facts, only=["config.yaml", "config.patroni"])
    assert report.exit_code in (0, 1, 2, 3)
    doc = json.loads(render_document(report.as_dict(), facts, "json"))
    render_document(report.as_dict(), facts, "text")
    return doc


# --- facts snapshots and bundles ------------------------------------------------------------------

def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.json"))


def read_fixture(name: str) -> dict[str, Any]:
    """A facts fixture by file name, its ``{"base", "set"}`` form resolved as the unit tests resolve it."""
    return read_fixture_at(FIXTURES / name)


def leaf_paths(value: Any, trail: tuple = ()) -> list[tuple]:
    """Paths to every scalar in a JSON document."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*trail, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*trail, i))]
    return [trail]


def set_path(doc: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for step in path[:-1]:
        node = node[step]
    if path:
        node[path[-1]] = value
        return out
    return value


@st.composite
def facts_mutations(draw) -> tuple[dict[str, Any], tuple, Any]:
    """A facts fixture (each makes some check fail), one of its leaves and a hostile value for it."""
    doc = read_fixture(draw(st.sampled_from(fixture_names())))
    paths = leaf_paths(doc)
    # Most draws go where fix commands take their values from: the node's config and the members' names.
    feeding = [p for p in paths if p[:2] == ("config", "data") or (p[:2] == ("dcs", "members") and p[-1] == "name")
               or p[:2] == ("dcs", "leader")]
    if feeding and draw(st.integers(0, 9)) < 7:
        return doc, draw(st.sampled_from(feeding)), draw(hostile_text)
    return doc, draw(st.sampled_from(paths)), draw(st.one_of(hostile_text, json_values))


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if data is not None and info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if data is not None and info.isfile() else None)
    return buf.getvalue()


def bundle_of(facts_raw: bytes, extra: list[tuple[tarfile.TarInfo, bytes | None]] = (), good_sum: bool = True,
              prefix: str = "pgdoctor-bundle/") -> bytes:
    """A bundle as `pgdoctor bundle` lays one out (manifest with facts.json's sha256), plus extra members."""
    digest = hashlib.sha256(facts_raw).hexdigest() if good_sum else "0" * 64
    manifest = json.dumps({"format": "pgdoctor-bundle", "facts_version": FACTS_VERSION,
                           "files": [{"name": "facts.json", "size": len(facts_raw), "sha256": digest}]}).encode()
    members = [(tarfile.TarInfo(prefix + "manifest.json"), manifest), (tarfile.TarInfo(prefix + "facts.json"), facts_raw),
               *extra]
    return tar_gz(members)


def _member(draw) -> tuple[tarfile.TarInfo, bytes | None]:
    name = draw(st.sampled_from(["../escape", "/etc/passwd", "pgdoctor-bundle/logs/x.log", "a/" * 60 + "x",
                                 "pgdoctor-bundle/facts.json", "pgdoctor-bundle/" + "\x1b[2J", "."]))
    info = tarfile.TarInfo(name)
    info.type = draw(st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                      tarfile.FIFOTYPE, tarfile.DIRTYPE]))
    info.linkname = draw(st.sampled_from(["/etc/shadow", "../../x", "pgdoctor-bundle/facts.json"]))
    return info, draw(st.binary(max_size=200))


@st.composite
def bundle_bytes(draw) -> bytes:
    """Bundles a stranger might send: the real layout with odd facts and odd members, broken
    archives, compression bombs, and plain garbage."""
    kind = draw(st.sampled_from(["facts", "members", "bomb", "cut", "garbage", "sum"]))
    facts = read_fixture(draw(st.sampled_from(fixture_names())))
    if kind == "facts":
        mutated = set_path(facts, draw(st.sampled_from(leaf_paths(facts))), draw(json_values))
        return bundle_of(json.dumps(mutated, allow_nan=True).encode("utf-8", "surrogatepass"))
    if kind == "members":
        extra = [_member(draw) for _ in range(draw(st.integers(1, 4)))]
        return bundle_of(json.dumps(facts).encode(), extra)
    if kind == "bomb":  # a few KB that expand to tens of MB
        size = draw(st.sampled_from([1, 8, 40])) * 1024 * 1024
        return bundle_of(b"{" + b" " * size + b"}")
    if kind == "cut":
        whole = bundle_of(json.dumps(facts).encode())
        return whole[:draw(st.integers(0, len(whole)))]
    if kind == "sum":
        return bundle_of(json.dumps(facts).encode(), good_sum=False)
    return draw(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(gzip.compress)))


# --- the fix-safety invariant, end to end -------------------------------------------------------

def command_lines(report: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Every command line of every diagnosis: fenced fix blocks and inline code of the fix text."""
    return {d["id"]: [("fence", ln) for block in d["fix"] for ln in block.splitlines()]
            + [c for c in code_lines(d["fix_text"]) if c[0] == "inline"] for d in report["diagnoses"]}


def assert_fix_safe(plain: dict[str, Any], hostile: dict[str, Any]) -> None:
    """The same facts with one value plain and one value hostile: every command the hostile report
    shows splits into words (balanced quotes) and carries exactly the shell operators and expansions
    of the plain report's command in its place (or, where the value took a template down another
    branch, of some command the plain report shows)."""
    want, got = command_lines(plain), command_lines(hostile)
    for diag, lines in got.items():
        before = want.get(diag)
        for i, (_, line) in enumerate(lines):
            words(line)  # unbalanced quotes raise
            if before is not None and len(before) == len(lines):
                assert active(line) == active(before[i][1]), (diag, line, before[i][1])
            else:
                known = {tuple(active(ln)) for ls in want.values() for _, ln in ls}
                assert tuple(active(line)) in known | {()}, (diag, line)
