"""The report as a Prometheus text exposition, for node_exporter's textfile collector.

Written from the same report and facts every other format uses: one gauge per check (its worst
status), replication lag per member (bytes and seconds, from the cluster model), the round trip's
milliseconds per replica when one ran, the diagnoses by severity, and the verdict. Write it with
``-o`` into the textfile directory; the file is replaced whole, so a scrape never sees half of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doctor.facts import Facts

STATUS_VALUE = {"ok": 0, "warn": 1, "fail": 2, "error": 3, "skip": -1}
SEVERITIES = ("critical", "error", "warning", "info")


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw: Any) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in kw.items()) + "}" if kw else ""


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, help_text: str, samples: list[tuple[dict[str, Any], float | int]]) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        self.lines += [f"{name}{_labels(**labels)} {value}" for labels, value in samples]


def render_prometheus(report: dict[str, Any], facts: Facts) -> str:
    from doctor.model import model_of

    node = report.get("node") or {}
    base = {"cluster": node.get("scope") or "", "node": node.get("name") or ""}
    out = _Out()
    out.family("pgdoctor_verdict_exit_code", "pgdoctor's exit code: 0 healthy, 1 warnings, 2 failures, 3 could not judge",
               [(base, report.get("exit_code", 3))])
    worst: dict[str, tuple[int, str]] = {}
    for f in report.get("findings") or []:
        v = STATUS_VALUE.get(f.get("status"), 3)
        if f["check"] not in worst or v > worst[f["check"]][0]:
            worst[f["check"]] = (v, f.get("playbook") or "")
    out.family("pgdoctor_check_status", "Worst status of each check: 0 ok, 1 warn, 2 fail, 3 error, -1 skipped",
               [({**base, "check": c, "problem": p}, v) for c, (v, p) in sorted(worst.items())])
    by_sev = {s: 0 for s in SEVERITIES}
    for d in report.get("diagnoses") or []:
        by_sev[d.get("severity", "error")] = by_sev.get(d.get("severity", "error"), 0) + 1
    out.family("pgdoctor_diagnoses", "Current diagnoses by severity",
               [({**base, "severity": s}, n) for s, n in by_sev.items()])
    model = model_of(facts)
    lag_b, lag_s = [], []
    for r in model.replication.members:
        if r.role == "Leader":
            continue
        b, s = r.replay_lag_bytes, r.replay_lag_seconds
        if b is not None:
            lag_b.append(({**base, "member": r.name}, b))
        if s is not None:
            lag_s.append(({**base, "member": r.name}, s))
    out.family("pgdoctor_replication_lag_bytes", "Replay lag of each replica behind the leader, bytes", lag_b)
    out.family("pgdoctor_replication_lag_seconds", "Replay lag of each replica, seconds", lag_s)
    rt = facts.dict_at("roundtrip") or {}
    replicas = rt.get("replicas") or {}
    out.family("pgdoctor_round_trip_milliseconds", "Milliseconds until the replica replayed the round trip's WAL record",
               [({**base, "member": n}, r["ms"]) for n, r in sorted(replicas.items()) if r.get("ms") is not None])
    out.family("pgdoctor_round_trip_arrived", "1 when the round trip's WAL record was replayed within the timeout",
               [({**base, "member": n}, int(bool(r.get("arrived")))) for n, r in sorted(replicas.items())])
    return "\n".join(out.lines) + "\n"
