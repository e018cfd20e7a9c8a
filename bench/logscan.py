"""Benchmark: pgdoctor's log scanner against ``grep -E -c -f`` on a 1 GiB realistic log.

Builds the log in /var/tmp from the real lines of sample_logs/ mixed with ordinary Patroni
heartbeat lines (about one sample line in twenty), exports the playbooks' patterns as POSIX
ERE, then times in the same run: grep, pgdoctor with Hyperscan, and (optionally) pgdoctor's
pure-``re`` fallback, each in its own process so peak RSS is its own. Prints MB/s, the ratio to
grep and the peak RSS. The log is deleted at the end.

    python bench/logscan.py [--size-mb 1024] [--fallback] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEARTBEATS = [
    "{t} INFO: no action. I am (node{n}), a secondary, and following a leader (node1)",
    "{t} INFO: no action. I am (node1), the leader with the lock",
    "{t} INFO: Lock owner: node1; I am node{n}",
    "{t} INFO: Lock owner: node1; I am node1",
]


def build_log(path: Path, size: int, seed: int = 7) -> int:
    rnd = random.Random(seed)
    samples: list[str] = []
    for f in sorted((ROOT / "sample_logs").glob("*.log")):
        samples += [ln for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
    written = 0
    sec = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < size:
            chunk = []
            for _ in range(20000):
                sec += 1
                t = f"2026-11-{1 + (sec // 86400) % 28:02d} {(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d},{sec % 1000:03d}"
                if rnd.random() < 0.05:
                    chunk.append(rnd.choice(samples))
                else:
                    chunk.append(rnd.choice(HEARTBEATS).format(t=t, n=rnd.choice((2, 3))))
            text = "\n".join(chunk) + "\n"
            out.write(text)
            written += len(text.encode())
    return written


def run_pgdoctor(path: str, engine: str) -> dict:
    """Child process: scan the file, report time, matches and peak RSS."""
    from doctor.logscan import patterns_from
    from doctor.logscan.scan import Scanner
    from doctor.logscan.sources import FileSource

    patterns = patterns_from()
    t0 = time.perf_counter()
    scanner = Scanner(patterns, engine=engine)
    compile_s = time.perf_counter() - t0
    scanner.scan([FileSource(path)])
    elapsed = time.perf_counter() - t0
    matches = scanner.matches()
    return {"engine": scanner.engine.name, "seconds": elapsed, "compile_seconds": compile_s,
            "lines_matched": sum(m["count"] for m in matches), "aggregates": len(matches),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--fallback", action="store_true", help="also time the pure-re fallback (slow)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("PATH", "ENGINE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_pgdoctor(*args.child)))
        return

    from doctor.logscan import patterns_from
    from doctor.logscan.regex import to_ere

    tmpdir = Path(tempfile.mkdtemp(prefix="pgdoctor-bench-", dir="/var/tmp"))
    log, ere = tmpdir / "bench.log", tmpdir / "patterns.ere"
    try:
        t0 = time.perf_counter()
        size = build_log(log, args.size_mb * 1024 * 1024)
        print(f"built {log} ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s")
        patterns = patterns_from()
        ere.write_text("\n".join(to_ere(p.regex) for p in patterns) + "\n")
        print(f"{len(patterns)} patterns exported as POSIX ERE to {ere}")
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        mb = size / 1e6

        t0 = time.perf_counter()
        grep = subprocess.run(["grep", "-E", "-c", "-f", str(ere), str(log)], capture_output=True, text=True,
                              env={**os.environ, "LC_ALL": "C"})
        grep_s = time.perf_counter() - t0
        grep_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"grep -E -c -f:        {grep_s:7.2f} s  {mb / grep_s:8.1f} MB/s  "
              f"({grep.stdout.strip()} matching lines, peak RSS {grep_rss:.0f} MB)")

        engines = ["hyperscan"] + (["re"] if args.fallback else [])
        for engine in engines:
            proc = subprocess.run([sys.executable, __file__, "--child", str(log), engine], capture_output=True,
                                  text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(f"pgdoctor ({engine}) failed: {proc.stderr.strip()[-500:]}")
                continue
            r = json.loads(proc.stdout)
            print(f"pgdoctor ({r['engine']:9}): {r['seconds']:7.2f} s  {mb / r['seconds']:8.1f} MB/s  "
                  f"ratio to grep {grep_s / r['seconds']:.2f}x  peak RSS {r['peak_rss_mb']:.0f} MB  "
                  f"({r['lines_matched']} matches in {r['aggregates']} counted aggregates; "
                  f"compile {r['compile_seconds']:.2f} s)")
    finally:
        if not args.keep:
            for f in (log, ere):
                f.unlink(missing_ok=True)
            tmpdir.rmdir()


if __name__ == "__main__":
    main()
