"""The collection's time budget and order: Deadline shares, declared dependencies, the command runner,
resolved paths as facts."""

from __future__ import annotations

import graphlib
import os
import sys
import threading
import time

import pytest

import doctor.collect as collect
from doctor.bundle import host as bundle_host
from doctor.bundle import logs as bundle_logs
from doctor.collect import CollectContext, CollectOptions, Collector, _worker, run_collectors
from doctor.collect.command import run_command
from doctor.collect.deadline import Deadline
from doctor.facts import Facts
from doctor.model.node import NodeView
from doctor.model.processes import node_patroni, node_postmasters
from doctor.model.resolved import as_resolved, node_data_dir
from doctor.redact import Redactor


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- Deadline


def test_command_budget_is_twice_the_timeout_plus_two_and_bundle_adds_its_own_share():
    clock = FakeClock()
    assert Deadline.for_command(5, "run", clock=clock).remaining() == 12
    assert Deadline.for_command(1, "preflight", clock=clock).remaining() == 4
    assert Deadline.for_command(5, "bundle", clock=clock).remaining() == 12 + 10
    assert Deadline.for_command(20, "bundle", clock=clock).remaining() == 42 + 20


def test_shares_are_named_and_capped_by_what_is_left():
    clock = FakeClock()
    d = Deadline.for_command(5, clock=clock)
    assert d.share("call") == 5 and d.share("member") == 2 and d.share("dcs") == 7
    assert d.share("slow-command") == 10 and d.share("logs") == 11
    clock.now += 9  # 3 s left
    assert d.share("call") == 3 and d.share("member") == 2 and d.share("slow-command") == 3
    clock.now += 10  # spent: a call still gets a moment to fail as a timeout, never a negative timeout
    assert d.expired() and d.remaining() == 0 and 0 < d.share("call") < 0.5
    with pytest.raises(KeyError):
        d.share("no-such-share")


def test_a_phase_never_ends_after_its_parent():
    clock = FakeClock()
    run = Deadline.for_command(5, clock=clock).sub("collect")
    dcs = run.sub("dcs")
    assert dcs.end == clock.now + 7 and dcs.name == "dcs"
    clock.now += 10  # 2 s left of the run: the DCS phase gets those, not 7
    assert run.sub("dcs").end == run.end
    assert "--timeout 5s" in dcs.timeout_error("the DCS read")["message"]


# --------------------------------------------------------------------------- the runner


@pytest.fixture
def registry(monkeypatch):
    """An empty collector registry the tests fill."""
    reg: dict[str, Collector] = {}
    monkeypatch.setattr(collect, "_COLLECTORS", reg)
    monkeypatch.setattr(collect, "_import_builtin_collectors", lambda: None)

    def add(domain, fn, after=(), share=None, isolate=False):
        reg[domain] = Collector(domain, fn, ("run",), tuple(after), share, isolate)

    return add


def _ctx(timeout: float) -> CollectContext:
    return CollectContext(options=CollectOptions(timeout=timeout))


def test_a_dependant_reads_its_dependency_result(registry):
    registry("dcs", lambda ctx: {"leader": "node1"}, share="dcs")
    registry("api", lambda ctx: {"saw": ctx.upstream.result("dcs")["leader"]}, after=("dcs",))
    out = run_collectors(_ctx(1.0))
    assert out["api"] == {"saw": "node1"} and out["dcs"] == {"leader": "node1"}
    assert set(out["_timings"]) == {"dcs", "api"}


def test_a_hung_dependency_reaches_its_dependants_as_a_timeout_within_its_share(registry):
    release = threading.Event()

    def hung(ctx):
        release.wait(30)
        return {"late": True}

    registry("dcs", hung, share="member")  # its share: min(T, 2) = 0.5 s
    registry("api", lambda ctx: {"dcs": ctx.upstream.result("dcs"), "own": "local facts"}, after=("dcs",))
    t0 = time.monotonic()
    out = run_collectors(_ctx(0.5))  # the whole run: 2 * 0.5 + 2 = 3 s
    took = time.monotonic() - t0
    release.set()
    assert out["api"]["own"] == "local facts"
    assert out["api"]["dcs"]["error"]["kind"] == "timeout"
    assert out["dcs"]["error"]["kind"] == "timeout" and "did not finish within 3s" in out["dcs"]["error"]["message"]
    # the dependant gave up after the dependency's share (0.5 s + grace), the run at its 3 s deadline
    assert out["_timings"]["api"] < 1.5
    assert took < 3.5


def test_a_failed_dependency_is_data_for_its_dependants(registry):
    def broken(ctx):
        raise RuntimeError("etcd client bug")

    registry("dcs", broken)
    registry("api", lambda ctx: {"dcs": ctx.upstream.result("dcs")}, after=("dcs",))
    out = run_collectors(_ctx(1.0))
    assert out["dcs"]["error"]["message"] == "etcd client bug"
    assert out["api"]["dcs"] == out["dcs"]


def test_reading_an_undeclared_dependency_is_an_error_of_the_reader(registry):
    registry("dcs", lambda ctx: {"leader": "node1"})
    registry("api", lambda ctx: {"dcs": ctx.upstream.result("dcs")})  # no after=("dcs",)
    out = run_collectors(_ctx(1.0))
    assert "without declaring after=('dcs',)" in out["api"]["error"]["message"]
    assert out["dcs"] == {"leader": "node1"}


def test_unknown_and_cyclic_dependencies_are_refused_before_anything_runs(registry):
    ran = []
    registry("a", lambda ctx: ran.append("a") or {}, after=("b",))
    registry("b", lambda ctx: ran.append("b") or {}, after=("a",))
    with pytest.raises(graphlib.CycleError):
        run_collectors(_ctx(1.0))
    registry("b", lambda ctx: {}, after=("nowhere",))
    with pytest.raises(ValueError, match="nowhere"):
        run_collectors(_ctx(1.0))
    assert ran == []


def test_each_collector_gets_its_own_deadline_inside_the_run(registry):
    seen = {}
    registry("dcs", lambda ctx: seen.setdefault("dcs", ctx.deadline) and {}, share="dcs")
    registry("logs", lambda ctx: seen.setdefault("logs", ctx.deadline) and {})
    ctx = _ctx(2.0)
    run_collectors(ctx)
    assert seen["dcs"].name == "dcs" and seen["logs"].name == "collect"
    assert seen["dcs"].end < seen["logs"].end <= ctx.deadline.end


# --------------------------------------------------------------------------- the worker process


def test_isolated_collectors_run_in_a_forked_worker_and_read_their_upstream_from_here(registry, monkeypatch):
    monkeypatch.delenv("PGDOCTOR_NO_FORK", raising=False)
    assert _worker.can_fork(), "the runner forks only with one thread alive; the test process must have one"
    here = os.getpid()
    registry("dcs", lambda ctx: {"leader": "node1", "pid": os.getpid()}, share="dcs")
    registry("postgres", lambda ctx: {"pid": os.getpid(), "leader": ctx.upstream.result("dcs")["leader"],
                                      "set_there": _mark()}, after=("dcs",), isolate=True)
    out = run_collectors(_ctx(2.0))
    assert out["dcs"]["pid"] == here
    assert out["postgres"]["pid"] != here and out["postgres"]["leader"] == "node1"
    assert "postgres" in out["_timings"]
    assert not MARKS, "the worker's work left a trace in this process"
    with pytest.raises(ChildProcessError):  # the worker was reaped
        os.waitpid(out["postgres"]["pid"], os.WNOHANG)


MARKS: list[int] = []


def _mark() -> bool:
    MARKS.append(1)
    return True


def test_a_worker_that_dies_costs_its_domains_an_error_record_and_nothing_else(registry, monkeypatch):
    monkeypatch.delenv("PGDOCTOR_NO_FORK", raising=False)
    registry("system", lambda ctx: {"ok": True})
    registry("postgres", lambda ctx: os._exit(7), isolate=True)
    registry("replication", lambda ctx: time.sleep(0.5) or {"late": True}, isolate=True)
    out = run_collectors(_ctx(2.0))
    assert out["system"] == {"ok": True}
    assert out["postgres"]["error"]["kind"] == "worker-failed"
    assert out["replication"]["error"]["kind"] == "worker-failed"


def test_a_hung_worker_collector_is_a_timeout_at_the_deadline_and_the_worker_is_killed(registry, monkeypatch):
    monkeypatch.delenv("PGDOCTOR_NO_FORK", raising=False)
    pids: list[int] = []
    registry("postgres", lambda ctx: time.sleep(60) or {}, isolate=True)
    registry("system", lambda ctx: {"ok": True})
    real_start = _worker.Worker.start

    def start(self, child_main):
        ok = real_start(self, child_main)
        pids.append(self.pid)
        return ok

    monkeypatch.setattr(_worker.Worker, "start", start)
    t0 = time.monotonic()
    out = run_collectors(_ctx(0.2))  # the run: 2 * 0.2 + 2 = 2.4 s
    assert time.monotonic() - t0 < 4
    assert out["postgres"]["error"]["kind"] == "timeout" and out["system"] == {"ok": True}
    with pytest.raises(ChildProcessError):
        os.waitpid(pids[0], os.WNOHANG)


@pytest.mark.parametrize("why", ["PGDOCTOR_NO_FORK", "another thread"])
def test_isolated_collectors_run_here_when_forking_is_not_safe(registry, monkeypatch, why):
    monkeypatch.delenv("PGDOCTOR_NO_FORK", raising=False)
    registry("postgres", lambda ctx: {"pid": os.getpid()}, isolate=True)
    stop = threading.Event()
    if why == "PGDOCTOR_NO_FORK":
        monkeypatch.setenv("PGDOCTOR_NO_FORK", "1")
    else:
        threading.Thread(target=stop.wait, args=(5,), daemon=True).start()
    try:
        out = run_collectors(_ctx(1.0))
    finally:
        stop.set()
    assert out["postgres"]["pid"] == os.getpid()


def test_every_builtin_dependency_is_declared():
    """No built-in collector reaches another's result except through a declared ``after``."""
    found = collect.registered_collectors()
    assert found["patroni_api"].after == ("dcs", "system") and found["postgres"].after == ("dcs",)
    assert found["replication"].after == ("dcs",) and found["preflight"].after == ("dcs",)
    assert found["dcs"].share == "dcs"
    # the collectors that need PostgreSQL's driver share its worker process; none of the others imports it
    assert {d for d, c in found.items() if c.isolate} == {"postgres", "replication", "roundtrip"}


def test_no_collector_module_imports_psycopg_when_it_is_imported():
    """The run's own process never pays for the driver: only the worker's connections import it."""
    import subprocess

    code = "import sys, doctor.collect as c; c._import_builtin_collectors(); print('psycopg' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stdout + done.stderr


# --------------------------------------------------------------------------- the command runner


def test_run_command_records_output_and_exit_code():
    d = Deadline.for_command(5)
    res = run_command([sys.executable, "-c", "import os, sys; print(os.environ['LC_ALL']); sys.exit(3)"], d)
    assert res["exit_code"] == 3 and res["stdout"].strip() == "C" and res["argv"][0] == sys.executable


def test_run_command_stops_at_its_share_and_says_timeout():
    d = Deadline.for_command(0.3)
    t0 = time.monotonic()
    res = run_command([sys.executable, "-c", "import time; time.sleep(20)"], d)
    assert time.monotonic() - t0 < 5
    assert res["error"]["kind"] == "timeout"


def test_run_command_missing_program_and_tail_are_data():
    d = Deadline.for_command(5)
    assert run_command(["/nonexistent/pgdoctor-tool"], d)["error"]["kind"] == "not-found"
    res = run_command([sys.executable, "-c", "print('a' * 50 + 'END')"], d, limit=10, keep_tail=True)
    assert res["stdout"] == "aaaaaaEND\n"


# --------------------------------------------------------------------------- resolved paths as facts


def test_analyze_uses_the_recorded_realpath_and_never_the_local_disk(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    node = NodeView({"postgresql": {"data_dir": str(link) + "/"}}, "/etc/patroni/patroni.yml")
    # A snapshot from the node: the node resolved the link to /srv/pg/main (not this machine's tmp dir).
    fresh = Facts({"version": 1, "system": {"datadir": {"realpath": "/srv/pg/main"}}})
    assert node_data_dir(fresh, node) == "/srv/pg/main"
    # An older snapshot without the fact: the path as text, not resolved on this machine.
    old = Facts({"version": 1, "system": {"datadir": {"path": str(link)}}})
    assert node_data_dir(old, node) == str(link)
    assert as_resolved(None, None) is None and as_resolved("/a/./b", None) == "/a/b"


def test_process_judgement_matches_on_the_node_resolved_paths():
    node = NodeView({"postgresql": {"data_dir": "/var/lib/pg/data"}}, "/etc/patroni.yml")
    pm = {"pid": 7, "data_dir": "/srv/pg/data"}
    patroni = {"pid": 8, "config": "/opt/patroni/patroni.yml"}
    facts = Facts({"version": 1, "config": {"realpath": "/opt/patroni/patroni.yml"},
                   "system": {"datadir": {"realpath": "/srv/pg/data"},
                              "processes": {"postmasters": [pm], "patroni": [patroni, {"pid": 9, "config": "/x.yml"}]}}})
    assert node_postmasters(facts, node) == [pm]
    assert node_patroni(facts, node) == [patroni]
    older = Facts({"version": 1, "system": {"processes": {"postmasters": [pm], "patroni": [patroni]}}})
    assert node_postmasters(older, node) == []  # no record: the configured path, as text


def test_collectors_record_the_resolved_paths(tmp_path):
    from doctor.collect.preflight.install import debian_clusters
    from doctor.collect.system import datadir_facts

    real = tmp_path / "data"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert datadir_facts(str(tmp_path / "link"))["realpath"] == str(real)
    for c in debian_clusters():  # only on hosts with Debian's layout; each resolved on this node
        if c.get("data_directory"):
            assert c["data_directory_realpath"] == os.path.realpath(c["data_directory"])


# --------------------------------------------------------------------------- the bundle inside the budget


def test_a_spent_budget_leaves_the_bundle_logs_and_host_files_out_with_the_reason(tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    (logdir / "patroni.log").write_text("2024-05-01 12:00:00 INFO: hello\n")
    facts = Facts({"version": 1, "config": {"data": {"log": {"dir": str(logdir)}}}})
    clock = FakeClock()
    spent = Deadline.for_command(1.0, "bundle", clock=clock)
    clock.now += 60
    got = bundle_logs.harvest(facts, Redactor(), since_seconds=10 ** 9, max_bytes=20_000, deadline=spent)
    assert got.excerpts == []
    assert any(x["file"].endswith("patroni.log") and "--timeout" in x["reason"] for x in got.left_out)
    files, problems = bundle_host.gather({"processes": {"patroni": [{"pid": os.getpid()}]}}, Redactor(), spent)
    assert "system/host.json" not in files and {p["what"] for p in problems} >= {"system/host.json",
                                                                                  "system/mounts.json"}
    assert files["system/environment.json"]["processes"][0]["error"]["kind"] == "timeout"
    fresh = Deadline.for_command(5.0, "bundle")
    got = bundle_logs.harvest(facts, Redactor(), since_seconds=10 ** 9, max_bytes=20_000, deadline=fresh)
    assert [e.source for e in got.excerpts] == [str(logdir / "patroni.log")]
