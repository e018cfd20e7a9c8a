"""Pre-bootstrap facts: what must be true on a node before its first ``systemctl start patroni``.

Only ``pgdoctor preflight`` runs this collector. It records what it finds and leaves every
judgement to ``checks/preflight.py``; each area is its own module:

* ``install``: the PostgreSQL and Patroni installations, the distribution's ``postgresql``
  service, the ``patroni.service`` unit;
* ``access``: who may read the config;
* ``network``: whether the peers answer on their ports, the etcd members the config does not
  list (as ``etcdctl endpoint health --cluster`` finds them), the firewall;
* ``clock``: time synchronisation.

Every local command goes through ``doctor.collect.command.run_command`` and every wait is a
share of the command's ``Deadline``. The etcd facts come from the ``dcs`` collector
(``after=("dcs",)``).
"""

from __future__ import annotations

from typing import Any

from doctor.collect import CollectContext, collector
from doctor.collect._parallel import parallel
from doctor.collect.preflight.access import config_access
from doctor.collect.preflight.clock import time_sync
from doctor.collect.preflight.install import debian_clusters, patroni_install, pg_binaries, service_state
from doctor.collect.preflight.network import etcd_runs_here, extra_etcd_members, firewall, peer_specs, probe_peers
from doctor.collect.system import expected_pg_user
from doctor.errors import error_data
from doctor.model.node import NodeView


def _merge_dcs_peers(peers: list[dict[str, Any]], node: NodeView, given: list[str], dcs: dict[str, Any]) -> None:
    """Add what the DCS says (sources, names, expected etcd) to the peers already probed."""
    by_host = {p["host"]: p for p in peer_specs(node, given, dcs) if p.get("host")}
    for p in peers:
        extra = by_host.get(p.get("host"))
        if extra:
            p["sources"] = extra["sources"]
            p["etcd_expected"] = extra["etcd_expected"]
            p["running_member"] = extra.get("running_member", False)
            p["names"] = extra["names"]


@collector("preflight", profiles=("preflight",), after=("dcs",))
def collect_preflight(ctx: CollectContext) -> dict[str, Any]:
    node = NodeView(ctx.config or {}, ctx.config_path)
    deadline = ctx.deadline
    pg_user = expected_pg_user(node, ctx.options.pg_user)["name"]
    facts: dict[str, Any] = {"pg_user": pg_user}
    # Peers named on the command line do not wait for the DCS read.
    cli_specs = peer_specs(node, list(ctx.options.peers), {})
    early = parallel({
        "peers": lambda: probe_peers(cli_specs, deadline),
        "pg_binaries": lambda: pg_binaries(node, deadline),
        "pg_service": lambda: {**service_state("postgresql", deadline), "clusters": debian_clusters()},
        "patroni": lambda: patroni_install(deadline, pg_user),
        "firewall": lambda: firewall(deadline),
        "time": lambda: time_sync(deadline),
    }, deadline.wait_budget(), lambda k: {"error": deadline.timeout_error(k)})
    for k, v in early.items():
        facts[k] = v if not isinstance(v, Exception) else {"error": error_data(v)}
    if ctx.config_path:
        facts["config_access"] = config_access(ctx.config_path, pg_user)
    dcs = ctx.upstream.result("dcs")
    facts["etcd_here"] = etcd_runs_here(node, dcs)
    facts["etcd_extra_members"] = extra_etcd_members(node, dcs, deadline) if dcs.get("members_etcd") else []
    if isinstance(facts["peers"], list):
        known = {p["host"] for p in facts["peers"] if p.get("host")}
        more = [p for p in peer_specs(node, [], dcs) if p.get("host") not in known]
        _merge_dcs_peers(facts["peers"], node, list(ctx.options.peers), dcs)
        facts["peers"] = facts["peers"] + probe_peers(more, deadline)
    facts["peers_given"] = list(ctx.options.peers)
    return facts
