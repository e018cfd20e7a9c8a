"""Fuzz run: the hostile-input categories of the hardening work, regenerated, with figures.

Four targets, each fed the named reproducers and then many inputs drawn from the strategies the
fast suite uses (tests/fuzz/fuzz_support.py, tests/fuzz/test_log_parser_fuzz.py), without their
example cap:

* ``config``  patroni.yml: the corpus mutants (tests/unit/config_mutants.py: syntax, truncation,
              aliases, encodings, types, missing keys, a FIFO, a directory, /dev/zero) and
              generated ones; judged by the config loading of every command and the config checks.
* ``logs``    ``pgdoctor logs``: a JSON line nested 30,000 deep, ``"ts": 1e20``, 100k untimed
              matching lines, 200k distinct user names (18 MB), /dev/urandom, a FIFO nobody
              writes, the fix-command reproducers, and generated lines.
* ``bundle``  ``pgdoctor analyze``: a small archive whose facts.json expands to 500 MB, members
              that escape, links and devices, cut and garbage archives, generated ones.
* ``fix``     ``pgdoctor analyze`` of facts fixtures with one value made hostile; every fix
              command must carry the shell operators of the same report with a plain value.

Every input runs in a child forked from this warmed-up process, so the figures are per input:
wall time and the child's peak RSS (``ru_maxrss``, which includes the ~baseline the parent
brings). A child still running after ``--hang`` seconds is killed and counted as a hang.
A crash is an exit code outside 0-3, a traceback or "internal error" in its output, a broken
promise (invalid JSON, a refusal longer than one line, a fix gaining an operator). A leak is a
file left in the child's own TMPDIR or a process it left running. For tampered facts (``bundle``,
``fix``) the inputs on which some check could not judge (its ``error`` finding) are counted too. Nothing here asserts on time:
the figures are printed.

    python bench/fuzz.py [--examples 500] [--targets config,logs,bundle,fix] [--hang 120]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests", ROOT / "tests" / "fuzz", ROOT / "tests" / "unit"):
    sys.path.insert(0, str(p))

import fuzz_support as fz  # noqa: E402
import psutil  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

RSS_LIMIT_MB = 300  # the bound, printed next to the figure


@dataclass
class Figures:
    inputs: int = 0
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    max_seconds: tuple[float, str] = (0.0, "")
    max_rss_mb: tuple[float, str] = (0.0, "")
    over_rss: list[str] = field(default_factory=list)
    check_errors: int = 0  # inputs where a check could not judge tampered facts (its "error" finding)

    def add(self, name: str, seconds: float, rss_mb: float) -> None:
        self.inputs += 1
        if seconds > self.max_seconds[0]:
            self.max_seconds = (seconds, name)
        if rss_mb > self.max_rss_mb[0]:
            self.max_rss_mb = (rss_mb, name)
        if rss_mb > RSS_LIMIT_MB:
            self.over_rss.append(f"{name}: {rss_mb:.0f} MB")


def run_forked(fig: Figures, name: str, job: Callable[[], None], hang: float) -> None:
    """Run ``job`` in a forked child with its own TMPDIR; record time, peak RSS, crash, hang, leak."""
    tmp = Path(tempfile.mkdtemp(prefix="pgdoctor-fuzz-"))
    out_path = tmp.parent / (tmp.name + ".out")
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: run, report through its exit code and the output file
        code = 0
        with open(out_path, "w") as out:
            os.setpgid(0, 0)
            os.environ["TMPDIR"] = str(tmp)
            tempfile.tempdir = None
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    job()
            except AssertionError:
                out.write("BROKEN PROMISE\n" + traceback.format_exc())
                code = 90
            except BaseException:
                out.write("Traceback\n" + traceback.format_exc())
                code = 91
        os._exit(code)
    status, rusage = None, None
    while True:
        got, status, rusage = os.wait4(pid, os.WNOHANG)
        if got:
            break
        if time.monotonic() - started > hang:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
            fig.hangs.append(name)
            break
        time.sleep(0.01)
    seconds = time.monotonic() - started
    fig.add(name, seconds, rusage.ru_maxrss / 1024)
    text = out_path.read_text(errors="replace") if out_path.exists() else ""
    code = os.waitstatus_to_exitcode(status)
    if name not in fig.hangs and (code != 0 or "Traceback" in text or "internal error" in text):
        fig.crashes.append(f"{name}: exit {code}: {text.strip().splitlines()[-1] if text.strip() else ''}")
    fig.check_errors += "CHECK-ERRORS" in text
    left = [str(p.relative_to(tmp)) for p in tmp.rglob("*")]
    if left:
        fig.leaks.append(f"{name}: left {left[:3]} in TMPDIR")
    stray = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == pid]
    if stray:
        fig.leaks.append(f"{name}: processes {stray} still running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(tmp, ignore_errors=True)
    out_path.unlink(missing_ok=True)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def cli_job(*argv: str, fmt: str = "json") -> Callable[[], None]:
    """A job that runs pgdoctor ARGV in-process and checks the promises on its outcome."""
    def job() -> None:
        report = fz.assert_clean(fz.invoke(*argv), fmt, check_errors_ok=argv[0] == "analyze")
        _count_check_errors(report)
    return job


def _count_check_errors(report: dict | None) -> None:
    if report and any(f["status"] == "error" for f in report["findings"]):
        print("CHECK-ERRORS")


def config_job(path: str) -> Callable[[], None]:
    return lambda: fz.judge_config(path)


def fix_job(case: tuple) -> Callable[[], None]:
    def job() -> None:
        from doctor.facts import Facts, FactsVersionError
        from doctor.pipeline import FULL_PROFILES, analyze
        doc, path, value = case

        def report(d: dict) -> dict:
            return json.loads(json.dumps(analyze(Facts(d), command="analyze", profiles=FULL_PROFILES).as_dict(),
                                         default=str))
        try:
            hostile = report(fz.set_path(doc, path, value))
        except FactsVersionError:
            return
        fz.assert_fix_safe(report(fz.set_path(doc, path, "zzplainzz")), hostile)
        _count_check_errors(hostile)
    return job


# --- the named reproducers ---------------------------------------------------------------------------

def _lines(path: Path, lines) -> str:
    with path.open("w", encoding="utf-8", errors="surrogateescape") as fh:
        for ln in lines:
            fh.write(ln + "\n")
    return str(path)


def named_logs(work: Path) -> dict[str, tuple[str, ...]]:
    ts = "2026-11-26 06:40:01.100 UTC [812] "
    fifo = work / "nobody-writes.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    rnd = random.Random(7)
    files = {
        "deep-json-30000": _lines(work / "deep.json.log", ['{"msg": ' + "[" * 30000 + "]" * 30000 + ', "ts": 1}']),
        "ts-1e20": _lines(work / "ts.json.log", ['{"level": "warn", "ts": 1e20, "msg": "failed to update leader lock"}']),
        "untimed-100k": _lines(work / "untimed.log", ["FATAL:  password authentication failed for user \"app\""]
                               * 100_000),
        "users-200k": _lines(work / "users.log", (f"{ts}FATAL:  password authentication failed for user "
                                                  f"\"u{rnd.getrandbits(64):016x}\"" for _ in range(200_000))),
        "fix-user-as-datadir": _lines(work / "fix1.log", [f"{ts}FATAL:  password authentication failed for user "
                                                          "\"data directory \"/ /etc\" has invalid permissions\""]),
        "fix-rename-root": _lines(work / "fix2.log", ["2026-11-26 06:40:01,000 INFO: renaming data directory to /"]),
        "fix-curl-sh": _lines(work / "fix3.log", [f"{ts}FATAL:  lock file \"/x; curl http://127.0.0.1/x | sh; "
                                                  "/postmaster.pid\" already exists"]),
    }
    cases = {name: (path, "--format", "json") for name, path in files.items()}
    cases["dev-urandom"] = ("/dev/urandom", "--format", "json", "--deadline", "5")
    cases["fifo-unwritten"] = (str(fifo), "--format", "json", "--deadline", "5")
    return cases


def named_bundles(work: Path) -> dict[str, str]:
    import gzip
    import tarfile
    out = {}
    big = work / "expands-500mb.tar.gz"
    if not big.exists():  # streamed: the 500 MB never sit in memory here
        with gzip.open(big, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
            info = tarfile.TarInfo("pgdoctor-bundle/facts.json")
            info.size = 500 * 1024 * 1024

            class Spaces(io.RawIOBase):
                left = info.size

                def readable(self) -> bool:
                    return True

                def readinto(self, b):  # type: ignore[override]
                    n = min(len(b), self.left)
                    b[:n] = b" " * n
                    self.left -= n
                    return n
            tar.addfile(info, io.BufferedReader(Spaces()))
    out["facts-expands-500mb"] = str(big)
    for name, data in {
        "traversal": fz.bundle_of(b"{}", [(tarfile.TarInfo("../../etc/x"), b"x")]),
        "absolute": fz.bundle_of(b"{}", [(tarfile.TarInfo("/etc/cron.d/x"), b"x")]),
        "facts-deep": fz.bundle_of(b'{"version": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "not-gzip": b"PK\x03\x04 not a tar",
    }.items():
        (work / f"{name}.tar.gz").write_bytes(data)
        out[name] = str(work / f"{name}.tar.gz")
    return out


# --- the runs -----------------------------------------------------------------------------------------

def generated(strategy, examples: int, each: Callable) -> None:
    """Draw ``examples`` inputs from ``strategy`` (seeded) and hand each to ``each``."""
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(value) -> None:
        each(value)
    draw()


def run_target(target: str, examples: int, hang: float, work: Path) -> Figures:
    fig = Figures()
    n = [0]

    def named(prefix: str) -> str:
        n[0] += 1
        return f"{prefix}#{n[0]}"

    if target == "config":
        from config_mutants import PG_BINARIES, base_text, mutants
        bin_dir = work / "bin"
        bin_dir.mkdir(exist_ok=True)
        for b in PG_BINARIES:
            (bin_dir / b).write_text("#!/bin/sh\nexit 0\n")
            (bin_dir / b).chmod(0o755)
        saved_path = os.environ["PATH"]
        os.environ["PATH"] = str(bin_dir)  # the programs only where bin_dir says (as the corpus test does)
        for m in mutants(base_text(9, str(work / "data"), str(bin_dir))):
            if m.special == "fifo":
                path = work / "config.fifo"
                if not path.exists():
                    os.mkfifo(path)
            elif m.special == "directory":
                path = work / "conf.d"
                path.mkdir(exist_ok=True)
            elif m.special == "devzero":
                path = Path("/dev/zero")
            else:
                path = work / f"mutant-{m.name}.yml"
                path.write_bytes(m.data or b"")
            run_forked(fig, f"mutant:{m.name}", config_job(str(path)), hang)

        def one(data: bytes) -> None:
            path = work / "generated.yml"
            path.write_bytes(data)
            run_forked(fig, named("config"), config_job(str(path)), hang)
        generated(fz.config_bytes(), examples, one)
        os.environ["PATH"] = saved_path
    elif target == "logs":
        for name, argv in named_logs(work).items():
            run_forked(fig, f"log:{name}", cli_job("logs", *argv), hang)
        from test_log_parser_fuzz import lines

        def one_log(batch: list[str]) -> None:
            path = work / "generated.log"
            path.write_bytes("\n".join(batch).encode("utf-8", "surrogateescape") + b"\n")
            run_forked(fig, named("log"), cli_job("logs", str(path), "--format", "json"), hang)
        generated(st.lists(lines, min_size=1, max_size=60), examples, one_log)
    elif target == "bundle":
        for name, path in named_bundles(work).items():
            run_forked(fig, f"bundle:{name}", cli_job("analyze", path, "--format", "json"), hang)

        def one_bundle(data: bytes) -> None:
            path = work / "generated.tar.gz"
            path.write_bytes(data)
            run_forked(fig, named("bundle"), cli_job("analyze", str(path), "--format", "json"), hang)
        generated(fz.bundle_bytes(), examples, one_bundle)
    elif target == "fix":
        generated(fz.facts_mutations(), examples, lambda case: run_forked(fig, named("fix"), fix_job(case), hang))
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=500, help="generated inputs per target (named ones come on top)")
    ap.add_argument("--targets", default="config,logs,bundle,fix")
    ap.add_argument("--hang", type=float, default=120.0, help="seconds after which an input counts as a hang")
    args = ap.parse_args()
    import doctor.cli
    import doctor.pipeline  # noqa: F401
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fuzz: {args.examples} generated inputs per target, hang after {args.hang:.0f} s; "
          f"parent peak RSS before the children {baseline:.0f} MB (each child starts from it)")
    work = Path(tempfile.mkdtemp(prefix="pgdoctor-fuzz-work-"))
    totals = Figures()
    try:
        for target in args.targets.split(","):
            t0 = time.monotonic()
            fig = run_target(target, args.examples, args.hang, work)
            print(f"{target:7} inputs {fig.inputs:5}  tracebacks/crashes {len(fig.crashes):3}  hangs {len(fig.hangs):2}  "
                  f"leaks {len(fig.leaks):2}  max time {fig.max_seconds[0]:6.2f} s ({fig.max_seconds[1]})  "
                  f"max peak RSS {fig.max_rss_mb[0]:5.0f} MB ({fig.max_rss_mb[1]})  "
                  f"over {RSS_LIMIT_MB} MB: {len(fig.over_rss)}  inputs with a check error {fig.check_errors}  "
                  f"[{time.monotonic() - t0:.0f} s]")
            for kind in ("crashes", "hangs", "leaks", "over_rss"):
                for item in getattr(fig, kind)[:10]:
                    print(f"    {kind}: {item}")
            totals.inputs += fig.inputs
            for kind in ("crashes", "hangs", "leaks", "over_rss"):
                getattr(totals, kind).extend(getattr(fig, kind))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"total   inputs {totals.inputs:5}  tracebacks/crashes {len(totals.crashes)}  hangs {len(totals.hangs)}  "
          f"leaks {len(totals.leaks)}  over {RSS_LIMIT_MB} MB {len(totals.over_rss)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
