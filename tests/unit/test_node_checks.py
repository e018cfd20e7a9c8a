"""Config and system checks on their facts fixtures: the first diagnosis names the problem, with the real
values of the fixture. Which check reports a problem comes from the registry (its ``playbook``); that every
playbook has such a fixture, and that every check passes on a healthy baseline, is tests/unit/test_catalogue.py.
"""

from __future__ import annotations

import pytest

from doctor.engine import load_checks
from doctor.pipeline import analyze
from tests.unit.conftest import load_facts

# What the first diagnosis' summary must name for each fixture <problem-id>.json: real values, not placeholders.
EXPECTED_IN_SUMMARY = {
    "config-invalid-yaml": ["line 7, column 1", "tab"],
    "config-invalid": ["restapi.connect_address is not set", "fivefourthreetwo",
                       "synchronous_node_count must be an integer >= 1 (it is 0)"],
    "datadir-permissions": ["/var/lib/postgresql/15/data", "0755", "root", "postgres"],
    "datadir-not-empty": ["/var/lib/postgresql/15/data", "lost+found", "backup.tar"],
    "port-in-use": ["127.0.0.11:8008", "python3", "4242", "http.server"],
    "postgres-outside-patroni": ["777", "/var/lib/postgresql/15/data"],
    "postmaster-pid-stale": ["31337", "sshd"],
    "patroni-not-running": ["/etc/patroni/patroni.yml"],
    "disk-full": ["/var/lib/postgresql", "100.0 MB free"],
}


@pytest.mark.parametrize("problem", sorted(EXPECTED_IN_SUMMARY))
def test_fixture_names_its_problem_first(judge, problem):
    report = judge(f"{problem}.json")
    assert report.diagnoses, f"{problem}: no diagnosis at all"
    first = report.diagnoses[0]
    assert first.id == problem, [d.id for d in report.diagnoses]
    for needle in EXPECTED_IN_SUMMARY[problem]:
        assert needle in first.summary, (needle, first.summary)
    assert report.exit_code in (1, 2)
    finding = next(f for f in report.findings if f.playbook == problem and f.status in ("fail", "warn"))
    assert load_checks()[finding.check].playbook == problem


def test_fix_commands_carry_real_values(judge):
    d = judge("datadir-permissions.json").diagnoses[0]
    joined = "\n".join(d.fix)
    assert "chmod 700 -- /var/lib/postgresql/15/data" in joined
    assert "chown -R postgres:postgres -- /var/lib/postgresql/15/data" in joined
    assert "<" not in joined  # no unfilled placeholder


def test_port_in_use_fix_names_the_pid(judge):
    d = judge("port-in-use.json").diagnoses[0]
    assert any("kill 4242" in block for block in d.fix)
    assert any("sport = :8008" in block for block in d.fix)


def test_a_rest_port_held_by_this_nodes_own_exiting_patroni_is_not_port_in_use():
    """Seen on the lab: Patroni exits on a system ID mismatch; for a moment its REST port is still open while
    the process table no longer lists it. The holder runs this node's config: not a port conflict."""
    facts = load_facts("port-in-use.json")
    holder = next(l for l in facts.data["system"]["listeners"] if l["port"] == 8008)
    config = facts.data["config"]["path"]
    holder.update(name="patroni", user="postgres", cmdline=["/usr/bin/python3", "/usr/bin/patroni", config],
                  config=config)
    assert not facts.data["system"]["processes"]["patroni"]
    report = analyze(facts, profiles=("run",))
    finding = next(f for f in report.findings if f.check == "ports.in-use" and "8008" in (f.subject or ""))
    assert finding.status == "ok" and "served by this node's own process" in finding.summary
    assert "port-in-use" not in [d.id for d in report.diagnoses]
    # another Patroni's config on the same port is still a conflict
    holder.update(cmdline=["/usr/bin/python3", "/usr/bin/patroni", "/etc/patroni/other-cluster.yml"],
                  config="/etc/patroni/other-cluster.yml")
    assert "port-in-use" in [d.id for d in analyze(facts, profiles=("run",)).diagnoses]


def test_timing_rule_is_reported(judge):
    report = judge("config-invalid.json")
    f = next(f for f in report.findings if f.check == "config.patroni")
    assert "10 + 2*15 = 40 > 30" in " ".join([*f.evidence, f.summary])


def test_validate_config_output_is_evidence(judge):
    d = judge("config-invalid.json").diagnoses[0]
    assert any("restapi.connect_address  is not defined." in e for e in d.evidence)
