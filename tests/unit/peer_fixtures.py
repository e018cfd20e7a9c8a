"""Facts snapshots built from real Patroni REST answers of check_patroni's test suite.

The raw answers are in ``fixtures/peer/check_patroni/`` (PostgreSQL Licence, see its README). Each
``GET /cluster`` answer becomes what pgdoctor would have collected on one member of that cluster: the
DCS keys as Patroni writes them (``state`` = PostgreSQL's state, ``replication_state`` beside it, as
``Ha.touch_member`` does; ``xlog_location`` = the leader's optime minus the member's lag), this node's
REST ``/cluster`` (the answer itself) and, where the suite has one, a member's ``GET /patroni``.

    python tests/unit/peer_fixtures.py        # rewrite the fixtures (a test checks they are current)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
PEER = FIXTURES / "peer" / "check_patroni"
SCOPE = "patroni-demo"  # the scope of check_patroni's /patroni answers
PREFIX = f"/service/{SCOPE}/"
OPTIME = 1174407088  # the leader's xlog location in check_patroni's /patroni answers
REPLICATION_STATES = ("streaming", "in archive recovery")


def peer(name: str) -> dict[str, Any]:
    return json.loads((PEER / f"{name}.json").read_text())


def _member_key(m: dict[str, Any], version: str, leader: str | None) -> dict[str, Any]:
    """The ``/members/<name>`` value Patroni ``version`` would write for this /cluster member."""
    state = m.get("state")
    key: dict[str, Any] = {
        "name": m["name"], "conn_url": f"postgres://{m['host']}:{m.get('port', 5432)}/postgres",
        "api_url": m["api_url"], "state": "running" if state in REPLICATION_STATES else state,
        "role": {"leader": "primary", "standby_leader": "standby_leader"}.get(m.get("role"), "replica"),
        "version": version,
    }
    if state in REPLICATION_STATES:
        key["replication_state"] = state
    if m.get("timeline") is not None:
        key["timeline"] = m["timeline"]
    lag = m.get("lag")
    if m["name"] == leader:
        key["xlog_location"] = OPTIME
    elif isinstance(lag, int):
        key["xlog_location"] = OPTIME - lag
    for k in ("tags", "pending_restart", "pending_restart_reason", "scheduled_restart"):
        if k in m:
            key[k] = m[k]
    return key


def cluster_facts(cluster: dict[str, Any], here: str, version: str = "3.1.0", collected_at: str = "2023-10-08T11:00:00+00:00",
                  rest: dict[str, dict[str, Any]] | None = None, pg: dict[str, dict[str, Any]] | None = None,
                  settings: dict[str, Any] | None = None, history: list[list[Any]] | None = None,
                  retain_slots: list[str] | None = None) -> dict[str, Any]:
    """What pgdoctor collects on member ``here`` of the cluster this ``/cluster`` answer shows."""
    members = cluster["members"]
    leader = next((m["name"] for m in members if m.get("role") in ("leader", "standby_leader")), None)
    me = next(m for m in members if m["name"] == here)
    host = me["host"]
    config: dict[str, Any] = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 1048576,
                              "postgresql": {"use_pg_rewind": True, "use_slots": True}}
    if cluster.get("pause"):
        config["pause"] = True
    if any(m.get("role") == "standby_leader" for m in members):
        config["standby_cluster"] = {"host": "10.20.199.100", "port": 5432, "primary_slot_name": "standby"}
    sync = [m["name"] for m in members if m.get("role") in ("sync_standby", "quorum_standby")]
    if sync:
        config["synchronous_mode"] = "quorum" if any(m.get("role") == "quorum_standby" for m in members) else True
    dcs: dict[str, Any] = {
        "section": "etcd3", "prefix": PREFIX, "endpoint_urls": [f"http://{host}:2379"],
        "endpoints": [{"url": f"http://{host}:2379", "ok": True, "version": "3.5.9", "health": True}],
        "quorum": {"total": 3, "configured": 1, "reachable": 1, "healthy": 1, "needed": 2, "has_quorum": True},
        "members": [_member_key(m, version, leader) for m in members],
        "config": config, "initialize": "6965971025273547206",
        "status": {"optime": OPTIME, **({"retain_slots": retain_slots} if retain_slots else {})}, "keys_read": True, "keys_consistency": "linearizable",
        "keys_from": f"http://{host}:2379", "keys_api": "v3",
    }
    if leader:
        dcs["leader"] = leader
    if sync:
        dcs["sync"] = {"leader": leader, "sync_standby": ",".join(sync)}
    if cluster.get("scheduled_switchover"):
        s = cluster["scheduled_switchover"]
        dcs["failover"] = {k: v for k, v in (("leader", s.get("from")), ("member", s.get("to")),
                                              ("scheduled_at", s.get("at"))) if v}
    if history:
        dcs["history"] = history
    dcs["keys"] = sorted(["config", "initialize", "status"] + (["leader"] if leader else []) + (["sync"] if sync else [])
                         + (["failover"] if "failover" in dcs else []) + (["history"] if history else [])
                         + [f"members/{m['name']}" for m in members])
    api = me["api_url"].rsplit("/", 1)[0]
    rest = dict(rest or {})
    rest.setdefault(here, own_answer(cluster, here, version))
    answers = {}
    for name, body in rest.items():
        m = next(x for x in members if x["name"] == name)
        answers[name] = {"url": m["api_url"], "status": 200, "body": body, "api_url": m["api_url"].rsplit("/", 1)[0]}
        if name == here:
            answers[name]["self"] = True
    facts: dict[str, Any] = {
        "version": 1, "collected_at": collected_at, "host": here, "pgdoctor_version": "0.1.0", "profile": "run",
        "config": {"path": "/etc/patroni/patroni.yml", "found_by": "default", "exists": True, "data": {
            "scope": SCOPE, "namespace": "/service", "name": here,
            "restapi": {"listen": f"{host}:8008", "connect_address": f"{host}:8008"},
            "etcd3": {"hosts": [f"{host}:2379"]},
            "postgresql": {"listen": f"{host}:5432", "connect_address": f"{host}:5432",
                           "data_dir": "/var/lib/postgresql/16/main",
                           "authentication": {"superuser": {"username": "postgres"},
                                              "replication": {"username": "replicator"}}}}},
        "dcs": dcs,
        "patroni_api": {"url": api, "name": here, "cluster": {"url": f"{api}/cluster", "status": 200, "body": cluster},
                        "members": answers},
    }
    if here in answers:
        facts["patroni_api"]["patroni"] = answers[here]
    if pg is not None:
        facts["replication"] = {"members": pg}
    if settings:
        facts["settings"] = settings
    return facts


def own_answer(cluster: dict[str, Any], here: str, version: str) -> dict[str, Any]:
    """This node's ``GET /patroni`` as Patroni ``version`` answers it, derived from its ``/cluster`` entry (the
    suite has no /patroni answer of the same cluster): state, role, timeline, positions; a leader lists the
    members /cluster shows streaming in ``replication[]``."""
    m = next(x for x in cluster["members"] if x["name"] == here)
    state = m.get("state")
    leader = m.get("role") in ("leader", "standby_leader")
    body: dict[str, Any] = {"state": "running" if state in REPLICATION_STATES else state,
                            "role": "primary" if m.get("role") == "leader" else (m.get("role") if leader else "replica"),
                            "patroni": {"version": version, "scope": SCOPE, "name": here}}
    if m.get("timeline") is not None:
        body["timeline"] = m["timeline"]
    if state in REPLICATION_STATES:
        body["replication_state"] = state
    if body["state"] == "running":
        if m.get("role") == "leader":
            body["xlog"] = {"location": OPTIME}
            rows = [{"usename": "replicator", "application_name": x["name"], "client_addr": x["host"],
                     "state": "streaming", "sync_state": "sync" if x.get("role") == "sync_standby" else (
                         "quorum" if x.get("role") == "quorum_standby" else "async"), "sync_priority": 0}
                    for x in cluster["members"] if x.get("state") == "streaming"]
            if rows:
                body["replication"] = rows
        else:
            pos = OPTIME - m["lag"] if isinstance(m.get("lag"), int) else OPTIME
            body["xlog"] = {"received_location": pos, "replayed_location": pos, "paused": False}
    return body


def _streaming_as_running(cluster: dict[str, Any]) -> dict[str, Any]:
    """The same cluster as Patroni < 3.0.4 shows it: a streaming replica's state is plain ``running``."""
    out = copy.deepcopy(cluster)
    for m in out["members"]:
        if m.get("state") in REPLICATION_STATES:
            m["state"] = "running"
    return out


def _leader_answer_listing(base: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    """A leader's /patroni answer whose ``replication[]`` lists every replica of ``cluster`` as its row
    for srv1 in ``base`` looks (check_patroni's answer lists one walsender)."""
    out = copy.deepcopy(base)
    lead = next(m for m in cluster["members"] if m.get("role") in ("leader", "standby_leader"))
    out["timeline"] = lead.get("timeline", out.get("timeline"))  # the suite's answer is of another cluster's timeline
    row = out["replication"][0]
    out["replication"] = [dict(row, application_name=m["name"], client_addr=m["host"])
                          for m in cluster["members"] if m.get("role") not in ("leader", "standby_leader")]
    return out


REFUSED_AUTH = {"reachable": False, "error": {
    "kind": "auth", "message": 'connection failed: FATAL:  password authentication failed for user "postgres"',
    "server_message": 'password authentication failed for user "postgres"'}}


def build() -> dict[str, dict[str, Any]]:
    """fixture name -> facts, with the peer answer each is built from in its ``_source``."""
    ok = peer("cluster_node_count_ok")
    old = _streaming_as_running(ok)
    out = {
        # a stopped replica next to a streaming one
        "member-down.peer-stopped": ("cluster_has_replica_ko", cluster_facts(peer("cluster_has_replica_ko"), here="srv1")),
        # two replicas in 'start failed': no failover candidate left
        "member-down.peer-start-failed": ("cluster_node_count_healthy_critical",
                                     cluster_facts(peer("cluster_node_count_healthy_critical"), here="srv1")),
        # a standby leader holding the key with its PostgreSQL stopped
        "leader-postgres-down.peer-standby-leader-stopped": (
            "cluster_has_leader_ko_standby_leader", cluster_facts(peer("cluster_has_leader_ko_standby_leader"), here="srv2")),
        # a standby leader replaying from the archive only
        "standby-leader-not-streaming.peer-archive-recovery": ("cluster_has_leader_ko_standby_leader_archiving",
                                         cluster_facts(peer("cluster_has_leader_ko_standby_leader_archiving"), here="srv2")),
        "healthy.peer-standby-cluster": ("cluster_has_leader_ok_standby_leader",
                                            cluster_facts(peer("cluster_has_leader_ok_standby_leader"), here="srv2")),
        # srv1's /patroni says pending_restart (Patroni 2.0.2: no pending_restart_reason)
        "pending-restart.peer-patroni-2": ("cluster_node_count_ok + node_is_pending_restart_ko", cluster_facts(
            {"members": [dict(m, pending_restart=True) if m["name"] == "srv1" else m for m in ok["members"]]},
            here="srv1", version="2.0.2",
            rest={"srv1": _leader_answer_listing(peer("node_is_pending_restart_ko"), ok)})),
        "healthy.peer-scheduled-switchover": ("cluster_has_scheduled_action_ko_switchover",
                                        cluster_facts(peer("cluster_has_scheduled_action_ko_switchover"), here="p2")),
        "healthy.peer-scheduled-restart": ("cluster_has_scheduled_action_ko_restart",
                                     cluster_facts(peer("cluster_has_scheduled_action_ko_restart"), here="p2")),
        # collected an hour after the switchover's time: it did not happen
        "scheduled-action.peer-overdue": ("cluster_has_scheduled_action_ko_switchover",
                                     cluster_facts(peer("cluster_has_scheduled_action_ko_switchover"), here="p2",
                                                   collected_at="2023-10-08T12:30:00+00:00")),
        "member-count.peer-single": ("cluster_node_count_critical", cluster_facts(peer("cluster_node_count_critical"), here="srv1")),
        # srv2 gone and the user expects 3
        "member-count.peer-expected-3": ("cluster_node_count_healthy_warning",
                         cluster_facts(peer("cluster_node_count_healthy_warning"), here="srv1",
                                       settings={"expect_members": 3})),
        # srv2 gone; the leader still keeps its slot (/status retain_slots, Patroni >= 4.0)
        "member-count.peer-retained-slot": ("cluster_node_count_healthy_warning",
                                       cluster_facts(peer("cluster_node_count_healthy_warning"), here="srv1",
                                                     retain_slots=["srv1", "srv2", "srv3"])),
        # Patroni 3.0.0 (replicas 'running'), the leader's PostgreSQL not readable by pgdoctor, its REST
        # replication[] listing both replicas streaming: healthy
        "healthy.peer-patroni-3.0.0": ("cluster_node_count_ok as Patroni 3.0.0 + cluster_has_replica_patroni_verion_3.0.0",
                                          cluster_facts(old, here="srv1", version="3.0.0", rest={
                                              "srv1": _leader_answer_listing(peer("cluster_has_replica_patroni_verion_3.0.0"), old)},
                                              pg={"srv1": dict(REFUSED_AUTH, member="srv1", host="10.20.199.3", port=5432,
                                                               user="postgres")})),
        "replica-not-streaming.peer-archive-recovery": ("cluster_has_replica_ok",
                                                     cluster_facts(peer("cluster_has_replica_ok"), here="srv1")),
    }
    facts = {}
    for name, (source, data) in out.items():
        data["_source"] = f"check_patroni tests/json: {source} (see fixtures/peer/check_patroni/README.md)"
        facts[name] = data
    return facts


def write() -> None:
    for name, data in build().items():
        (FIXTURES / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
