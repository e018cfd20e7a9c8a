"""The preflight checklist on facts fixtures: a prepared node passes, each broken item fails with its fix.

The base fixture ``preflight/prepared-node.json`` is a real snapshot of a prepared node (empty 0700
data dir, etcd up, nothing running for it); each test breaks one fact the way the system would show it.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from doctor.facts import Facts
from doctor.model.node import NodeView
from doctor.pipeline import analyze
from doctor.playbooks import load_playbooks
from doctor.render.checklist import render_checklist
from doctor.views.preflight import checklist

BASE = json.loads((Path(__file__).parent / "fixtures" / "preflight" / "healthy.prepared-node.json").read_text())
DATA_DIR = BASE["system"]["datadir"]["path"]
CONFIG = BASE["config"]["path"]


def facts(**changes) -> dict:
    """A deep copy of the prepared node; ``changes`` maps dotted paths to new values."""
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = data
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return data


def judge(data: dict, ignore: tuple[str, ...] = ()):
    return analyze(Facts(data), command="preflight", profiles=("preflight",), ignore=ignore)


def items_of(report, check: str) -> list:
    return [f for f in report.findings if f.check == check]


def fixes(report, check: str, status: str = "fail") -> list[str]:
    """Rendered fix commands of the first finding of ``check`` with ``status``."""
    node = NodeView(report.facts.get("config.data") or {}, report.facts.get("config.path"))
    f = next(f for f in report.findings if f.check == check and f.status == status)
    return checklist([f], load_playbooks(), node.template_values())[0]["fix"]


def test_prepared_node_has_no_failure():
    report = judge(facts())
    failing = [(f.check, f.summary) for f in report.findings if f.status in ("fail", "error")]
    assert failing == []
    for check in ("preflight.pg-binaries", "preflight.patroni-installed", "preflight.patroni-etcd3",
                  "preflight.config-readable", "datadir.permissions", "datadir.empty", "dcs.reachable"):
        assert {f.status for f in items_of(report, check)} == {"ok"}, check
    plan = items_of(report, "preflight.datadir-plan")[0]
    assert plan.status == "ok" and "may bootstrap" in plan.summary and DATA_DIR in plan.summary
    assert report.exit_code in (0, 1)


def test_pg_binaries_missing_fails_with_install_fix():
    report = judge(facts(**{"preflight.pg_binaries": {"bin_dir": None, "found": False,
                                                      "searched": ["/usr/lib/postgresql/*/bin"]}}))
    f = items_of(report, "preflight.pg-binaries")[0]
    assert f.status == "fail" and "/usr/lib/postgresql/*/bin" in f.summary
    assert any("apt-get install -y postgresql-15" in c for c in fixes(report, "preflight.pg-binaries"))


def test_pg_binaries_of_another_major_than_the_data_dir():
    report = judge(facts(**{"system.datadir.pg_version": "14"}))
    f = items_of(report, "preflight.pg-binaries")[0]
    assert f.status == "fail" and "PostgreSQL 15" in f.summary and "PostgreSQL 14" in f.summary


def _service(**kw) -> dict:
    base = {"name": "postgresql", "installed": True, "systemd_booted": False, "active": None, "enabled": True,
            "enabled_source": "start links in /etc/rc?.d", "rc_start_links": ["/etc/rc2.d/S01postgresql"],
            "clusters": [{"version": "15", "name": "main", "port": 5432, "listen_addresses": "localhost",
                          "data_directory": "/var/lib/postgresql/15/main", "start": "auto"}]}
    base.update(kw)
    return base


def test_pg_service_enabled_and_colliding_fails_systemd_fix():
    svc = _service(systemd_booted=True, enabled_source="systemctl is-enabled", active=False,
                   clusters=[{"version": "15", "name": "main", "port": 5432, "listen_addresses": "*",
                              "data_directory": "/var/lib/postgresql/15/main", "start": "auto"}])
    report = judge(facts(**{"preflight.pg_service": svc}))
    f = items_of(report, "preflight.pg-service")[0]
    assert f.status == "fail" and "15/main" in f.summary and "*:5432" in f.summary
    cmds = "\n".join(fixes(report, "preflight.pg-service"))
    assert "sudo systemctl disable --now postgresql" in cmds
    assert "echo manual | sudo tee /etc/postgresql/15/main/start.conf" in cmds


def test_pg_service_without_systemd_says_cannot_tell_and_uses_update_rc_d():
    report = judge(facts(**{"preflight.pg_service": _service()}))
    f = items_of(report, "preflight.pg-service")[0]
    assert f.status == "warn" and "cannot be told" in f.summary
    assert "sudo update-rc.d postgresql disable" in "\n".join(fixes(report, "preflight.pg-service", "warn"))


def test_pg_service_running_fails():
    data = facts(**{"preflight.pg_service": _service()})
    data["system"]["processes"]["postmasters"] = [{"pid": 900, "data_dir": "/var/lib/postgresql/15/main",
                                                   "cmdline": ["postgres"], "patroni_style_args": False}]
    f = items_of(judge(data), "preflight.pg-service")[0]
    assert f.status == "fail" and "pid 900" in f.summary


def test_pg_service_disabled_is_ok():
    f = items_of(judge(facts(**{"preflight.pg_service": _service(enabled=False)})), "preflight.pg-service")[0]
    assert f.status == "ok"


def test_patroni_missing_old_and_unusable():
    r = judge(facts(**{"preflight.patroni": {"found": False, "searched": ["$PATH", "/opt/*/venv/bin/patroni"]}}))
    assert items_of(r, "preflight.patroni-installed")[0].status == "fail"
    assert items_of(r, "preflight.patroni-etcd3")[0].status == "skip"
    p = copy.deepcopy(BASE["preflight"]["patroni"])
    p["version"] = "2.1.4"
    assert items_of(judge(facts(**{"preflight.patroni": p})), "preflight.patroni-installed")[0].status == "warn"
    p = copy.deepcopy(BASE["preflight"]["patroni"])
    p["python_usable_by_pg_user"] = {"user": "postgres", "ok": False, "blocked_at": "/root"}
    r = judge(facts(**{"preflight.patroni": p}))
    f = items_of(r, "preflight.patroni-installed")[0]
    assert f.status == "fail" and "/root" in f.summary
    assert any("/usr/bin/python3 -m venv /opt/pgdoctor-lab/venv" in c for c in fixes(r, "preflight.patroni-installed"))


def test_patroni_etcd3_import_error_fails_with_pip_fix():
    p = copy.deepcopy(BASE["preflight"]["patroni"])
    p["etcd3"] = {"ok": False, "detail": "ModuleNotFoundError: No module named 'etcd'"}
    r = judge(facts(**{"preflight.patroni": p}))
    f = items_of(r, "preflight.patroni-etcd3")[0]
    assert f.status == "fail" and "No module named 'etcd'" in f.summary
    assert "sudo /opt/pgdoctor-lab/venv/bin/pip install 'patroni[etcd3]'" in fixes(r, "preflight.patroni-etcd3")[0]


def test_patroni_unit_missing_under_systemd_fails_and_wrong_user_warns():
    p = copy.deepcopy(BASE["preflight"]["patroni"])
    p["unit"] = {"paths": [], "searched": ["/etc/systemd/system/patroni.service"], "systemd_booted": True}
    r = judge(facts(**{"preflight.patroni": p}))
    assert items_of(r, "preflight.patroni-unit")[0].status == "fail"
    unit = fixes(r, "preflight.patroni-unit")[0]
    assert f"ExecStart=/opt/pgdoctor-lab/venv/bin/patroni {CONFIG}" in unit and "User=postgres" in unit
    p["unit"] = {"paths": ["/etc/systemd/system/patroni.service"], "systemd_booted": True, "user": "root",
                 "exec_start": f"/usr/bin/patroni {CONFIG}"}
    f = items_of(judge(facts(**{"preflight.patroni": p})), "preflight.patroni-unit")[0]
    assert f.status == "warn" and "User=root" in f.summary


def test_config_unreadable_names_the_blocking_dir():
    access = copy.deepcopy(BASE["preflight"]["config_access"])
    parent = access["chain"][-2]
    parent.update(mode="0700", owner="root", allowed=False)
    r = judge(facts(**{"preflight.config_access": access}))
    f = items_of(r, "preflight.config-readable")[0]
    assert f.status == "fail" and parent["path"] in f.summary and "0700" in f.summary
    assert f"sudo chmod o+x {parent['path']}" in fixes(r, "preflight.config-readable")[0]


def test_world_readable_config_warns():
    access = copy.deepcopy(BASE["preflight"]["config_access"])
    access["mode"] = "0644"
    f = items_of(judge(facts(**{"preflight.config_access": access})), "preflight.config-readable")[0]
    assert f.status == "warn" and "passwords" in f.summary


def test_loopback_connect_address_with_remote_peer_fails():
    peers = copy.deepcopy(BASE["preflight"]["peers"])
    peers.append({"host": "10.0.0.2", "sources": ["--peer"], "self": False, "probes": [],
                  "ports": {}, "names": []})
    data = facts(**{"preflight.peers": peers})
    f = items_of(judge(data), "preflight.connect-addresses")[0]
    assert f.status == "fail" and "127.0.6.21" in f.summary and f.playbook == "config-invalid"


def test_datadir_plan_follows_the_dcs():
    r = judge(facts(**{"dcs.initialize": "7712361979147381986", "dcs.leader": "node3"}))
    f = items_of(r, "preflight.datadir-plan")[0]
    assert f.status == "ok" and "will clone" in f.summary and "node3" in f.summary
    r = judge(facts(**{"system.datadir.has_pg_version": True, "system.datadir.pg_version": "15",
                       "system.datadir.entry_count": 3, "system.datadir.entries": ["PG_VERSION", "base", "global"]}))
    f = items_of(r, "preflight.datadir-plan")[0]
    assert f.status == "warn" and "adopt" in f.summary
    r = judge(facts(**{"dcs.keys_read": False}))
    assert items_of(r, "preflight.datadir-plan")[0].status == "skip"


def _peer(host: str, result: str, **kw) -> dict:
    p = {"host": host, "sources": ["--peer"], "self": False, "names": [], "etcd_expected": False,
         "running_member": False, "ports": {"postgresql": 5432, "restapi": 8008, "etcd": 2379},
         "probes": [{"role": r, "port": port, "result": result, "ms": 2000.0 if result == "timeout" else 0.2}
                    for r, port in (("postgresql", 5432), ("restapi", 8008), ("etcd", 2379))]}
    p.update(kw)
    return p


def test_peer_timeout_fails_with_firewall_fix():
    r = judge(facts(**{"preflight.peers": [_peer("127.0.0.2", "timeout")]}))
    f = items_of(r, "preflight.peers")[0]
    assert f.status == "fail" and "timed out" in f.summary and "127.0.0.2" in f.summary
    cmds = fixes(r, "preflight.peers")[0]
    assert "sudo ufw allow 8008/tcp" in cmds and "nc -vz -w 2 127.0.0.2 5432" in cmds


def test_refused_is_fine_before_bootstrap_but_not_for_an_etcd_member():
    r = judge(facts(**{"preflight.peers": [_peer("127.0.0.3", "refused")]}))
    assert items_of(r, "preflight.peers")[0].status == "ok"
    r = judge(facts(**{"preflight.peers": [_peer("127.0.0.3", "refused", etcd_expected=True)]}))
    f = items_of(r, "preflight.peers")[0]
    assert f.status == "fail" and "2379 (etcd) refused" in f.summary
    assert "ssh 127.0.0.3 sudo systemctl start etcd" in fixes(r, "preflight.peers")[0]


def test_firewall_ufw_active_without_rules_warns_with_allow_lines():
    fw = {"ufw": {"readable": True, "active": True, "default_incoming": "deny",
                  "rules": [{"to": "22/tcp", "action": "ALLOW", "from": "Anywhere"}]}}
    r = judge(facts(**{"preflight.firewall": fw}))
    f = items_of(r, "preflight.firewall")[0]
    assert f.status == "warn" and "5432/tcp" in f.summary and "8008/tcp" in f.summary
    cmds = fixes(r, "preflight.firewall", "warn")[0]
    assert "sudo ufw allow 5432/tcp" in cmds and "sudo ufw allow 8008/tcp" in cmds
    fw["ufw"]["rules"] += [{"to": "5432/tcp", "action": "ALLOW", "from": "10.0.0.0/24"},
                           {"to": "8000:8010/tcp", "action": "ALLOW", "from": "Anywhere"}]
    assert items_of(judge(facts(**{"preflight.firewall": fw})), "preflight.firewall")[0].status == "ok"


def test_unreadable_firewall_is_never_a_failure():
    fw = {"ufw": {"readable": False, "error": {"kind": "permission", "message": "You need to be root"}},
          "nft": {"readable": False, "error": {"kind": "permission", "message": "Operation not permitted"}}}
    statuses = {f.status for f in items_of(judge(facts(**{"preflight.firewall": fw})), "preflight.firewall")}
    assert statuses == {"skip"}


def test_nft_drop_policy_without_accept_warns():
    fw = {"nft": {"readable": True, "input_chains": [{"chain": "input", "policy": "drop",
                                                      "rules": ["tcp dport { 22, 5432 } accept"]}]}}
    f = items_of(judge(facts(**{"preflight.firewall": fw})), "preflight.firewall")[0]
    assert f.status == "warn" and "8008" in f.summary and "5432" not in f.summary.split("accepts none of")[1]


def test_time_sync_states():
    for state, expected in ((True, "ok"), (False, "warn"), (None, "warn")):
        f = items_of(judge(facts(**{"preflight.time": {"synchronized": state, "source": "timedatectl",
                                                       "daemons": []}})), "preflight.time-sync")[0]
        assert f.status == expected, (state, f.summary)


def test_etcd_member_outside_config_down_warns_and_mixed_versions_warn():
    extra = [{"url": "http://127.0.6.13:2379", "ok": False,
              "error": {"kind": "refused", "message": "[Errno 111] Connection refused"}}]
    f = items_of(judge(facts(**{"preflight.etcd_extra_members": extra})), "preflight.etcd-cluster")[0]
    assert f.status == "warn" and "127.0.6.13" in f.summary and f.playbook == "dcs-unreachable"
    eps = copy.deepcopy(BASE["dcs"]["endpoints"])
    eps[0]["version"] = "3.5.9"
    f = items_of(judge(facts(**{"dcs.endpoints": eps})), "preflight.etcd-version")[0]
    assert f.status == "warn" and "3.4.23" in f.summary and "3.5.9" in f.summary


def test_ignore_demotes_failures_and_keeps_them_visible():
    peers = {"preflight.peers": [_peer("127.0.0.2", "timeout")]}
    assert items_of(judge(facts(**peers)), "preflight.peers")[0].status == "fail"
    r = judge(facts(**peers), ignore=("Preflight-Peer-Unreachable",))
    f = items_of(r, "preflight.peers")[0]
    assert f.status == "warn" and f.ignored and f.as_dict()["ignored"] is True
    assert r.exit_code == 1 and r.extra["preflight"]["ignored"] == ["preflight-peer-unreachable"]
    item = next(i for i in r.extra["preflight"]["items"] if i["check"] == "preflight.peers")
    assert item["ignored"] and item["status"] == "warn" and item["fix"]
    missing = {"preflight.pg_binaries": {"bin_dir": None, "found": False, "searched": []}}
    assert any(f.status == "fail" for f in judge(facts(**missing)).findings)
    r2 = judge(facts(**missing), ignore=("all",))
    assert any(f.ignored for f in r2.findings) and not any(f.status == "fail" for f in r2.findings)


def test_ignore_from_the_config_is_used_and_unknown_ids_there_are_reported():
    data = facts(**{"preflight.peers": [_peer("127.0.0.2", "timeout")]})
    data["config"]["data"]["pgdoctor"] = {"preflight_ignore": "preflight-peer-unreachable, no-such-id"}
    r = judge(data)
    assert items_of(r, "preflight.peers")[0].status == "warn"
    pf = r.extra["preflight"]
    assert pf["ignore"] == ["preflight-peer-unreachable"] and pf["ignore_unknown_in_config"] == ["no-such-id"]
    assert pf["ignore_from_config"] == ["no-such-id", "preflight-peer-unreachable"]


def test_checklist_text_is_kubeadm_style():
    r = judge(facts(**{"preflight.peers": [_peer("127.0.0.2", "timeout")]}))
    node = NodeView(r.facts.get("config.data"), r.facts.get("config.path"))
    doc = r.as_dict()
    assert [i["check"] for i in doc["preflight"]["items"]] == [
        i["check"] for i in checklist(r.findings, load_playbooks(), node.template_values())]
    doc["preflight"]["peers_given"] = ["127.0.0.2"]
    buf = io.StringIO()
    render_checklist(Console(file=buf, no_color=True, width=200), doc)
    out = buf.getvalue()
    assert "✗ peer 127.0.0.2" in out and "[ERROR preflight-peer-unreachable]" in out
    assert "--ignore=preflight-peer-unreachable" in out and "sudo ufw allow 2379/tcp" in out
    assert "[preflight] Peers given: 127.0.0.2" in out


def test_unknown_ignore_id_is_a_usage_error(tmp_path):
    # ``-c main()`` rather than ``-m doctor.cli``: command modules register on the imported doctor.cli app.
    cp = subprocess.run([sys.executable, "-c", "from doctor.cli import main; main()", "preflight",
                         "-c", str(tmp_path / "none.yml"),
                         "--ignore", "no-such-check"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 3, cp.stderr
    assert cp.stderr.startswith("pgdoctor: --ignore: unknown id no-such-check")
    assert "preflight-time-sync" in cp.stderr and len(cp.stderr.splitlines()) == 1
    assert "Traceback" not in cp.stderr


def test_peers_from_a_config_the_etcd_member_list_and_the_dcs(tmp_path):
    from doctor.collect.preflight.network import peer_specs
    other = tmp_path / "node2.yml"
    other.write_text("name: node2\nrestapi: {listen: '0.0.0.0:8009', connect_address: '127.0.0.2:8009'}\n"
                     "postgresql: {listen: '0.0.0.0:5433', connect_address: '127.0.0.2:5433'}\n")
    me = NodeView({"name": "node1", "restapi": {"connect_address": "127.0.0.1:8008"},
                   "postgresql": {"connect_address": "127.0.0.1:5432"},
                   "etcd3": {"hosts": ["127.0.0.1:2379"]}}, "/etc/patroni/patroni.yml")
    dcs = {"members_etcd": [{"name": "etcd3", "client_urls": ["http://127.0.0.3:2379"],
                             "peer_urls": ["http://127.0.0.3:2380"]}],
           "members": [{"name": "node1", "api_url": "http://127.0.0.1:8008/patroni"},
                       {"name": "node3", "conn_url": "postgres://127.0.0.3:5432/postgres",
                        "api_url": "http://127.0.0.3:8008/patroni"}]}
    specs = {p["host"]: p for p in peer_specs(me, [str(other), "127.0.0.1"], dcs)}
    assert specs["127.0.0.2"]["ports"] == {"postgresql": 5433, "restapi": 8009, "etcd": 2379}
    assert specs["127.0.0.2"]["sources"] == [f"config {other}"] and specs["127.0.0.2"]["names"] == ["node2"]
    assert specs["127.0.0.1"]["self"] is True  # this node itself is never probed as a peer
    third = specs["127.0.0.3"]
    assert third["etcd_expected"] and third["running_member"] and third["names"] == ["node3"]
    assert third["sources"] == ["etcd member etcd3", "Patroni member node3 in the DCS"]


def test_dns_failure_is_said_once():
    p = _peer("db-2.invalid", "dns")
    for r in p["probes"]:
        r["message"] = "[Errno -2] Name or service not known"
    f = items_of(judge(facts(**{"preflight.peers": [p]})), "preflight.peers")[0]
    assert f.status == "fail" and f.summary.count("Name or service not known") == 1
