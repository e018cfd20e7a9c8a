#!/usr/bin/env python3
"""Build a labelled log corpus from the message catalogue, for ``bench/score_logs.py``.

Every case is a folder with one or more log files and a ``label.yml``::

    expected: replication-slot-problem      # a problem id, or null for a log that shows nothing wrong
    kind: problem | transient | healthy
    format: plain | journal | syslog | json | quoted
    message: the catalogue's format text the case is built around
    source: patroni | python-etcd | urllib3 | postgres | pg_basebackup | pg_rewind
    versions: the releases that print it (from the catalogue)

The cases come from facts, not from pgdoctor's patterns:

* **problem**: each message ``mapping.yml`` maps to a problem, rendered with the mapping's ``args``
  (``doctor.logscan.catalogue.render``), written the way its program writes it (Patroni's
  ``%(asctime)s %(levelname)s:`` lines; PostgreSQL's ``log_line_prefix``; pg_basebackup's and
  pg_rewind's ``name: error:`` on Patroni's stderr; an exception text as a traceback's last line),
  repeated once per HA loop (10 s) for four loops — once when Patroni logs it at CRITICAL, after
  which it exits — between benign lines of the same program drawn from the catalogue. Patroni's
  bootstrap states come after ``Lock owner: None; I am <name>`` in the same loop, as Patroni's
  ``Ha._run_cycle`` prints them for a member with an empty data directory and no leader.
* **transient**: the messages of ``persist`` problems seen once or twice during a start and followed
  by the progress lines the catalogue maps to the ``clone``/``start``/``streaming`` events: expected null.
* **healthy**: benign and event messages only: expected null.

Each case is written in one of the formats logs arrive in: the program's own file (``plain``), the
journal (``journalctl`` short format, ``Dec 01 10:00:05 db1 patroni[1234]: ...``), rsyslog's
high-precision format (``syslog``), JSON (Patroni's ``log.type: json`` and PostgreSQL's ``jsonlog``, as
Spilo and Kubernetes setups ship them), and quoted with ``> `` as in a mail or an issue. Every problem
message is written in every format; which benign lines surround it is drawn with ``--seed``.

    .venv/bin/python bench/make_corpus.py /tmp/pgdoctor-corpus        # the default directory
    .venv/bin/python bench/score_logs.py /tmp/pgdoctor-corpus
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.logscan.catalogue import Mapped, Message, as_log_line, load_catalogue, load_mapping, render  # noqa: E402

FORMATS = ("plain", "journal", "syslog", "json", "quoted")
PATRONI_SIDE = ("patroni", "python-etcd", "urllib3")  # logged through Patroni's logging
TOOLS = ("pg_basebackup", "pg_rewind")
LOOP = 10.0  # Patroni's default loop_wait
LOOPS = 4
TRANSIENTS = 4  # transient cases per persist message and format (each with other surrounding lines)
T0 = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
# Patroni's HA loop, for a member whose data directory is empty, logs the lock owner before the state it returns
# (Ha._run_cycle -> has_lock() -> bootstrap()): these states come with "Lock owner: None; I am <name>".
BOOTSTRAP_STATES = ("waiting for {0}leader to bootstrap", "trying to bootstrap {0}", "failed to acquire initialize lock")
# the progress lines a member prints when a start goes on (catalogue messages mapped to these events)
PROGRESS_EVENTS = ("clone", "start", "streaming")


@dataclass
class Line:
    t: float
    source: str  # patroni | postgres | traceback (after a patroni line) | tool (pg_basebackup, pg_rewind)
    level: str
    text: str


# PostgreSQL names the user a connection was for; a case about replication is the replication user's
# (Patroni's documentation names it "replicator"), not a placeholder word.
REPLICATION_PROBLEMS = ("replication-auth-failed", "pg-hba-replication-missing")


def rendered(row: Message, mapped: Mapped | None) -> str:
    message = row.message
    if mapped is not None and mapped.value in REPLICATION_PROBLEMS and not mapped.args:
        for word in ('user "%s"', 'User "%s"', 'role "%s"'):
            message = message.replace(word, word.replace("%s", "replicator"))
    return render(message, row.style, mapped.args if mapped else ())


def line_of(row: Message, mapped: Mapped | None, t: float) -> list[Line]:
    """The lines a program writes for one catalogue message."""
    text = rendered(row, mapped)
    if row.source in TOOLS:
        return [Line(t, "tool", "", f"{row.source}: error: {text}" if mapped and mapped.target == "problem"
                     else f"{row.source}: {text}")]
    if row.source == "postgres":
        return [Line(t, "postgres", row.level if row.level not in ("-", "") else "LOG", text)]
    if row.kind == "raise":  # an exception's text reaches the log as the last line of a traceback
        return [Line(t, "patroni", "ERROR", "Unexpected exception"),
                Line(t, "traceback", "", "Traceback (most recent call last):"),
                Line(t, "traceback", "", '  File "/usr/lib/python3/dist-packages/patroni/ha.py", line 1, in run_cycle'),
                Line(t, "traceback", "", as_log_line(row, mapped.args if mapped else ()))]
    level = row.level if row.level not in ("-", "") else "ERROR"
    return [Line(t, "patroni", level, text)]


def stamp(t: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=t)


def write(lines: list[Line], fmt: str, case: Path) -> None:
    """Write the lines of one case in one format: one file per program, or one journal."""
    files: dict[str, list[str]] = {}
    for ln in lines:
        ts = stamp(ln.t)
        ms = f"{ts.microsecond // 1000:03d}"
        if ln.source == "postgres":
            plain = f"{ts:%Y-%m-%d %H:%M:%S}.{ms} UTC [4242] {ln.level}:  {ln.text}"
            ident, name = "postgres[4242]", "postgresql.log"
        elif ln.source == "patroni":
            plain = f"{ts:%Y-%m-%d %H:%M:%S},{ms} {ln.level}: {ln.text}"
            ident, name = "patroni[1234]", "patroni.log"
        elif ln.source == "traceback":  # logger.exception(): the traceback follows its line in the same log
            plain = ln.text
            ident, name = "patroni[1234]", "patroni.log"
        else:  # a tool's output, on Patroni's stdout/stderr
            plain = ln.text
            ident, name = "patroni[1234]", "stderr.log"
        if fmt == "plain":
            files.setdefault(name, []).append(plain)
        elif fmt == "quoted":
            files.setdefault(name, []).append("> " + plain)
        elif fmt == "journal":
            files.setdefault("journal.log", []).append(f"{ts:%b %d %H:%M:%S} db1 {ident}: {plain}")
        elif fmt == "syslog":
            files.setdefault("syslog.log", []).append(f"{ts.isoformat(timespec='microseconds')} db1 {ident}: {plain}")
        elif fmt == "json":
            if ln.source == "postgres":
                doc = {"timestamp": f"{ts:%Y-%m-%d %H:%M:%S}.{ms} UTC", "pid": 4242, "error_severity": ln.level,
                       "message": ln.text}
                files.setdefault("postgresql.json", []).append(json.dumps(doc))
            elif ln.source == "patroni":
                doc = {"asctime": f"{ts:%Y-%m-%d %H:%M:%S},{ms}", "levelname": ln.level, "message": ln.text}
                files.setdefault("patroni.json", []).append(json.dumps(doc))
            elif ln.source == "traceback":  # a JSON formatter puts the traceback in the record's exc_info
                docs = files.setdefault("patroni.json", [])
                last = json.loads(docs[-1])
                last["exc_info"] = (last.get("exc_info", "") + "\n" + ln.text).lstrip("\n")
                docs[-1] = json.dumps(last)
            else:  # a container's stderr next to the JSON logs
                files.setdefault("stderr.log", []).append(plain)
    case.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (case / name.replace(".json", ".log") if name.endswith(".json") else case / name).write_text(
            "\n".join(text) + "\n")


def label(case: Path, **fields: object) -> None:
    import yaml

    (case / "label.yml").write_text(yaml.safe_dump(fields, sort_keys=False, allow_unicode=True))


class Corpus:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.rows = load_catalogue()
        self.mapping = {(m.source, m.message): m for m in load_mapping()}
        self.benign: dict[str, list[tuple[Message, Mapped]]] = {}
        self.events: dict[str, list[tuple[Message, Mapped]]] = {}
        self.lock_none = next(r for r in self.rows if r.source == "patroni" and r.message == "Lock owner: %s; I am %s")
        for row in self.rows:
            m = self.mapping.get((row.source, row.message))
            if m is None or row.level == "DEBUG":
                continue
            side = "patroni" if row.source in PATRONI_SIDE else row.source
            if m.target == "benign" and row.kind != "raise":
                self.benign.setdefault(side, []).append((row, m))
            elif m.target == "event":
                self.events.setdefault(side, []).append((row, m))

    def noise(self, side: str, t: float, n: int, steady: bool) -> list[Line]:
        """``n`` benign lines of one program around time ``t``. ``steady``: none of the HA loop's own
        reports (a member repeating a problem is not at the same time reporting that all is well)."""
        pool = [(r, m) for r, m in self.benign.get(side, []) if not (steady and r.kind == "state")]
        out: list[Line] = []
        for i in range(n):
            row, m = self.rnd.choice(pool)
            out += line_of(row, m, t + 0.01 * (i + 1))
        return out

    def problem(self, row: Message, m: Mapped) -> list[Line]:
        side = "patroni" if row.source in PATRONI_SIDE or row.source in TOOLS else row.source
        lines = self.noise(side, 0.0, 3, steady=False)
        loops = 1 if row.level == "CRITICAL" else LOOPS
        for k in range(loops):
            t = 1.0 + k * LOOP
            if row.source == "patroni" and row.message in BOOTSTRAP_STATES:
                lines += line_of(self.lock_none, Mapped("patroni", self.lock_none.message, "benign", "",
                                                        ("None", "node2")), t - 0.05)
            lines += line_of(row, m, t)
            lines += self.noise(side, t, self.rnd.randint(0, 2), steady=True)
        return lines

    def transient(self, row: Message, m: Mapped) -> list[Line]:
        """The message once or twice during a start, then the start goes on."""
        side = "patroni" if row.source in PATRONI_SIDE else row.source
        lines = self.noise(side, 0.0, 2, steady=False)
        for k in range(self.rnd.randint(1, 2)):
            lines += line_of(row, m, 1.0 + k * 3)
        progress = [(r, mm) for r, mm in self.events.get(side, []) if mm.value in PROGRESS_EVENTS]
        for i, (r, mm) in enumerate(self.rnd.sample(progress, min(2, len(progress)))):
            lines += line_of(r, mm, 8.0 + i)
        return lines

    def healthy(self, side: str) -> list[Line]:
        pool = self.benign.get(side, []) + self.events.get(side, [])
        lines: list[Line] = []
        for i in range(self.rnd.randint(8, 20)):
            row, m = self.rnd.choice(pool)
            lines += line_of(row, m, i * 2.5)
        return lines


def build(out: Path, seed: int, healthy: int, formats: tuple[str, ...]) -> dict[str, int]:
    corpus = Corpus(seed)
    counts = {"problem": 0, "transient": 0, "healthy": 0}
    seen: set[tuple[str, str]] = set()
    persist_messages = {("patroni", "waiting for {0}leader to bootstrap"), ("postgres", 'replication slot "%s" does not exist')}
    n = 0
    for row in corpus.rows:
        m = corpus.mapping.get((row.source, row.message))
        if m is None or m.target != "problem" or (row.source, row.message) in seen:
            continue
        seen.add((row.source, row.message))
        for fmt in formats:
            n += 1
            case = out / f"p{n:05d}-{m.value}-{fmt}"
            write(corpus.problem(row, m), fmt, case)
            label(case, expected=m.value, kind="problem", format=fmt, source=row.source, message=row.message,
                  versions=",".join(row.versions))
            counts["problem"] += 1
            for _ in range(TRANSIENTS if (row.source, row.message) in persist_messages else 0):
                n += 1
                case = out / f"t{n:05d}-{m.value}-{fmt}"
                write(corpus.transient(row, m), fmt, case)
                label(case, expected=None, kind="transient", format=fmt, source=row.source, message=row.message,
                      versions=",".join(row.versions))
                counts["transient"] += 1
    for i in range(healthy):
        fmt = formats[i % len(formats)]
        side = ("patroni", "postgres")[i % 2]
        n += 1
        case = out / f"h{n:05d}-{side}-{fmt}"
        write(corpus.healthy(side), fmt, case)
        label(case, expected=None, kind="healthy", format=fmt, source=side, message=None, versions=None)
        counts["healthy"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default="/tmp/pgdoctor-corpus", help="where to write (replaced)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--healthy", type=int, default=200, help="how many healthy cases")
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    args = ap.parse_args(argv)
    formats = tuple(f for f in args.formats.split(",") if f)
    bad = set(formats) - set(FORMATS)
    if bad:
        ap.error(f"unknown format(s): {', '.join(sorted(bad))}")
    out = Path(args.out)
    if out.exists():
        if not (out / ".pgdoctor-corpus").exists():
            ap.error(f"{out} exists and is not a corpus this script wrote; give a new directory")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / ".pgdoctor-corpus").write_text("written by bench/make_corpus.py\n")
    counts = build(out, args.seed, args.healthy, formats)
    print(f"{out}: {sum(counts.values())} cases ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
