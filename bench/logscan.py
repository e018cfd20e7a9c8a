"""Benchmark: ``pgdoctor logs`` against ``grep -E -c -f`` on the same realistic log and the same patterns.

* The log (default 256 MiB and 1 GiB) is made from the real lines of sample_logs/ mixed with
  ordinary Patroni heartbeats (about one sample line in twenty). It is generated once into
  /var/tmp/pgdoctor-bench/ and deleted at the end (``--keep`` keeps it for the next run, ``--clean``
  removes a kept one); it is never part of the repository.
* The pattern set is the playbooks' own, exported as POSIX ERE (``doctor.logscan.regex.to_ere``).
  A pattern that ERE cannot express is dropped from BOTH sides: pgdoctor then reads a copy of the
  playbooks without it (``PGDOCTOR_PLAYBOOKS`` cannot remove built-ins, so the bench says so and
  stops instead of comparing different sets). The count is printed.
* grep runs with ``LC_ALL=C`` and writes its output to a file: with stdout on /dev/null GNU grep
  stops at the first match.
* pgdoctor runs as the real command, ``pgdoctor logs FILE --format json > file``, once with the
  default engine (``auto``: Hyperscan, where installed, for inputs past 4 MiB) and once with
  ``--engine re`` (the pure-Python path).
* Contenders alternate, round after round; the figures are medians over rounds: wall time, the
  ratio pgdoctor/grep within each round, CPU time, and peak memory: the largest single process
  (``ru_maxrss``), and over the process tree (psutil, polled every 10 ms) the sum of RSS (shared pages
  counted once per process) and the sum of PSS (shared pages divided among the processes).

    python bench/logscan.py [--sizes 256,1024] [--rounds 3] [--engines auto,re] [--keep | --clean]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _measure import measure  # noqa: E402

DATA = Path("/var/tmp/pgdoctor-bench")

HEARTBEATS = [
    "2026-11-@D @H:{m:02d}:{s:02d},{ms:03d} INFO: no action. I am (node{n}), a secondary, and following a leader (node1)",
    "2026-11-@D @H:{m:02d}:{s:02d},{ms:03d} INFO: no action. I am (node1), the leader with the lock",
    "2026-11-@D @H:{m:02d}:{s:02d},{ms:03d} INFO: Lock owner: node1; I am node{n}",
    "2026-11-@D @H:{m:02d}:{s:02d},{ms:03d} INFO: Lock owner: node1; I am node1",
]


def _hour_template(rnd: random.Random, samples: list[str]) -> str:
    """One hour of log (about 1.3 MB); @D/@H are filled per hour with str.replace (C speed)."""
    lines = []
    for i in range(3600 * 5):
        if rnd.random() < 0.05:
            lines.append(rnd.choice(samples))
        else:
            sec = i // 5
            lines.append(rnd.choice(HEARTBEATS).format(m=sec // 60, s=sec % 60, ms=(i % 5) * 200,
                                                       n=rnd.choice((2, 3))))
    return "\n".join(lines) + "\n"


def realistic_log(size_mb: int, seed: int = 7) -> Path:
    """The bench log of ``size_mb`` MiB, generated on first use."""
    path = DATA / f"patroni-{size_mb}m-s{seed}.log"
    if path.exists() and path.stat().st_size >= size_mb * 2**20:
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    samples = [ln for f in sorted((ROOT / "sample_logs").glob("*.log"))
               for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
    templates = [_hour_template(rnd, samples) for _ in range(8)]
    tmp = path.with_suffix(".tmp")
    written, hour = 0, 0
    with open(tmp, "w", encoding="utf-8") as out:
        while written < size_mb * 2**20:
            text = templates[hour % len(templates)].replace("@D", f"{1 + (hour // 24) % 28:02d}") \
                .replace("@H", f"{hour % 24:02d}")
            out.write(text)
            written += len(text.encode())
            hour += 1
    tmp.rename(path)
    return path


def export_ere(dest: Path) -> tuple[int, list[str]]:
    """Write the playbooks' patterns as ERE, one a line; (how many written, ids that ERE cannot express)."""
    from doctor.logscan import patterns_from
    from doctor.logscan.regex import to_ere

    lines, dropped = [], []
    for p in patterns_from():
        try:
            lines.append(to_ere(p.regex))
        except ValueError:
            dropped.append(p.id)
    dest.write_text("\n".join(lines) + "\n")
    return len(lines), dropped


def bench_size(size_mb: int, rounds: int, engines: list[str], ere: Path) -> None:
    log = realistic_log(size_mb)
    subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    env = {**os.environ, "LC_ALL": "C"}
    pgdoctor = [sys.executable, "-c", "from doctor.cli import main; main()", "logs"]
    contenders = {"grep -E -c -f": ["grep", "-E", "-c", "-f", str(ere), str(log)]}
    for engine in engines:
        name = "pgdoctor logs" + ("" if engine == "auto" else f" --engine {engine}")
        contenders[name] = [*pgdoctor, str(log), "--format", "json", "--engine", engine, "--deadline", "3600"]
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in contenders}
    outs = {n: DATA / f"out-{i}.txt" for i, n in enumerate(contenders)}
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))  # alternate who goes first
        for name in order:
            runs[name].append(measure(contenders[name], outs[name], env))
            x = runs[name][-1]
            print(f"  round {r + 1}: {name:34} {x['wall']:7.2f} s wall, {x['cpu']:6.2f} s cpu, "
                  f"RSS {x['rss_one']:.0f}/{x['rss_tree']:.0f} MB, PSS {x['pss_tree']:.0f} MB", flush=True)
    grep_count = outs["grep -E -c -f"].read_text().strip()
    print(f"\n{size_mb} MiB log {log}: {rounds} round(s), alternated; load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"  grep counted {grep_count} matching lines")
    grep_walls = [x["wall"] for x in runs["grep -E -c -f"]]
    for name, xs in runs.items():
        wall = statistics.median(x["wall"] for x in xs)
        ratio = statistics.median(x["wall"] / g for x, g in zip(xs, grep_walls, strict=False))
        line = (f"  {name:34} median {wall:7.2f} s ({size_mb * 1.048576 / wall:6.1f} MB/s)  "
                f"cpu {statistics.median(x['cpu'] for x in xs):6.2f} s  "
                f"peak RSS one process {max(x['rss_one'] for x in xs):4.0f} MB, "
                f"process tree {max(x['rss_tree'] for x in xs):4.0f} MB (PSS {max(x['pss_tree'] for x in xs):4.0f} MB)")
        if name != "grep -E -c -f":
            line += f"  time/grep {ratio:.2f}x"
            if outs[name].exists():
                import json
                doc = json.loads(outs[name].read_text())
                logs = doc.get("logs") or {}
                line += (f"  [engine {logs.get('engine')}, {sum(m['count'] for m in logs.get('matches', []))} "
                         f"matches in {len(logs.get('matches', []))} aggregates]")
        print(line)
        walls = ", ".join(f"{x['wall']:.2f}" for x in xs)
        print(f"  {'':34} walls: {walls}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,1024", help="log sizes in MiB, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--engines", default="auto,re", help="pgdoctor engines to time: auto, hyperscan, re")
    ap.add_argument("--clean", action="store_true", help="delete the generated logs and exit")
    ap.add_argument("--keep", action="store_true", help="keep the generated logs for the next run (default: deleted)")
    args = ap.parse_args()
    if args.clean:
        shutil.rmtree(DATA, ignore_errors=True)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    ere = DATA / "patterns.ere"
    n, dropped = export_ere(ere)
    print(f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; "
          f"{subprocess.run(['grep', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
    print(f"patterns: {n} exported from the playbooks as POSIX ERE to {ere}; "
          f"{len(dropped)} not expressible in ERE{': ' + ', '.join(dropped) if dropped else ''}")
    if dropped:
        sys.exit("refusing to compare different pattern sets: make these patterns ERE-expressible first")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            bench_size(size, args.rounds, [e for e in args.engines.split(",") if e], ere)
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
