"""Benchmark: ``pgdoctor run`` against ``patronictl list`` on a healthy lab, same config, alternated.

* Contenders: ``patronictl -c CONFIG list`` (the lab's Patroni venv), ``pgdoctor run -c CONFIG
  --no-logs --format json`` and ``pgdoctor run -c CONFIG --format json`` (this node's logs read).
  Each writes its output to a file.
* One warm-up round is run and not counted (page cache, and ``.pyc`` files for an editable install:
  ``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment, as a ``pip install`` compiles
  them once). The order of the contenders rotates round after round.
* Figures are medians over rounds: wall time, the ratio ours/patronictl's within each round, CPU time;
  and the largest peak RSS seen (one process, ``ru_maxrss``; whole process tree, psutil).
* The lab must be up and healthy: the bench says so and stops when ``patronictl list`` fails or
  ``pgdoctor run --no-logs`` does not say ``ok``.

    PGDOCTOR_LAB_DIR=... python bench/run_latency.py [--rounds 9] [--config FILE] [--patronictl EXE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure

PEER = "patronictl list"


def default_config() -> str:
    return str(Path(os.environ.get("PGDOCTOR_LAB_DIR", "/var/tmp/pgdoctor-lab")) / "node1" / "patroni.yml")


def default_patronictl() -> str:
    for exe in ("/opt/pgdoctor-lab/venv/bin/patronictl", shutil.which("patronictl")):
        if exe and os.access(exe, os.X_OK):
            return exe
    sys.exit("no patronictl found: give --patronictl")


def contenders(config: str, patronictl: str) -> dict[str, list[str]]:
    pgdoctor = str(Path(sys.executable).with_name("pgdoctor"))
    pgdoctor_argv = [pgdoctor] if os.access(pgdoctor, os.X_OK) else [sys.executable, "-m", "doctor"]
    return {
        PEER: [patronictl, "-c", config, "list"],
        "pgdoctor run --no-logs -f json": [*pgdoctor_argv, "run", "-c", config, "--no-logs", "--format", "json"],
        "pgdoctor run -f json": [*pgdoctor_argv, "run", "-c", config, "--format", "json"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=default_config(), help="a lab node's patroni.yml (default: node1's)")
    ap.add_argument("--patronictl", default=None, help="patronictl to compare with (default: the lab's)")
    ap.add_argument("--rounds", type=int, default=9, help="counted rounds (odd: a real median)")
    args = ap.parse_args()
    if not Path(args.config).is_file():
        sys.exit(f"no config at {args.config}: start the lab (python -m doctor lab up) or give --config")
    runs = contenders(args.config, args.patronictl or default_patronictl())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("NO_COLOR", "1")
    work = Path(tempfile.mkdtemp(prefix="pgdoctor-bench-run-"))
    outs = {name: work / f"out-{i}.txt" for i, name in enumerate(runs)}
    try:
        for name, argv in runs.items():  # warm-up, and the lab must be healthy
            x = measure(argv, outs[name], env)
            if name == PEER and x["exit"] != 0:
                sys.exit(f"patronictl list failed (exit {x['exit']:.0f}): is the lab up?")
            if name != PEER:
                doc = json.loads(outs[name].read_text())
                if doc.get("verdict") != "ok" and "--no-logs" in name:
                    sys.exit(f"{name} says {doc.get('verdict')!r}, not 'ok': the lab is not healthy "
                             f"({[d['id'] for d in doc.get('diagnoses', [])]})")
        results: dict[str, list[dict[str, float]]] = {n: [] for n in runs}
        names = list(runs)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
            for name in order:
                results[name].append(measure(runs[name], outs[name], env))
            print(f"  round {r + 1}: " + ", ".join(f"{n} {results[n][-1]['wall']:.3f} s" for n in names), flush=True)
        report(results, args)
        for name in names[1:]:
            doc = json.loads(outs[name].read_text())
            print(f"  {name}: verdict {doc.get('verdict')}, diagnoses {[d['id'] for d in doc.get('diagnoses', [])]}, "
                  f"counts {doc.get('counts')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    peer = [x["wall"] for x in results[PEER]]
    print(f"\n{args.rounds} rounds, alternated, config {args.config}; {os.cpu_count()} cores, load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; {psutil.virtual_memory().total / 2**30:.0f} GiB RAM")
    for name, xs in results.items():
        wall = statistics.median(x["wall"] for x in xs)
        line = (f"  {name:32} median {wall:6.3f} s wall, cpu {statistics.median(x['cpu'] for x in xs):6.3f} s, "
                f"peak RSS {max(x['rss_one'] for x in xs):5.1f} MB (tree RSS {max(x['rss_tree'] for x in xs):5.1f}, "
                f"PSS {max(x['pss_tree'] for x in xs):5.1f} MB)")
        if name != PEER:
            ratio = statistics.median(x["wall"] / p for x, p in zip(xs, peer, strict=True))
            line += f"  time/patronictl {ratio:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
