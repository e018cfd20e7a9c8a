"""The HTML report without a browser: structure, escaping, self-containment, the script's CSP hash."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from doctor.facts import Facts
from doctor.pipeline import analyze
from doctor.render.html import render_html, versions

SNAPSHOT = Path(__file__).resolve().parents[1] / "browser" / "fixtures" / "lab-pg-hba-replication-missing.facts.json"
HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


@pytest.fixture(scope="module")
def rendered() -> tuple[str, dict]:
    facts = Facts(json.loads(SNAPSHOT.read_text()))
    facts.data.setdefault("logs", {})["matches"] = [{"playbook": "pg-hba-replication-missing", "source": "postgresql",
                                                    "count": 4, "first": "03:00:01", "last": "03:04:59",
                                                    "sample": HOSTILE}]
    facts.data["dcs"]["planted"] = HOSTILE
    report = analyze(facts, command="run", profiles=("run", "replication")).as_dict()
    report["cluster"] = {"members": [{"name": HOSTILE, "role": "replica", "lag": 5}], "leader": "node3"}
    report["events"] = {"error": {"kind": "error", "message": HOSTILE}}
    return render_html(report, facts), report


def test_hostile_text_is_escaped_everywhere(rendered):
    html, _ = rendered
    parsed = Collect()
    parsed.feed(html)
    assert [t for t, _ in parsed.tags].count("script") == 1
    assert not [a for t, a in parsed.tags if t == "img"]
    assert not any(k.startswith("on") for _, a in parsed.tags for k in a)
    assert html.count("&lt;script&gt;window.__pwned=1&lt;/script&gt;") >= 3  # evidence, log table, members


def test_script_allowed_by_its_hash_only_and_nothing_fetched(rendered):
    html, _ = rendered
    parsed = Collect()
    parsed.feed(html)
    csp = next(a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline'; img" not in csp.split("script-src")[1]
    for tag, attrs in parsed.tags:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not re.match(r"(https?:)?//", value), (tag, attrs)
    assert "<link" not in html


def test_sections_in_order_with_values(rendered):
    html, report = rendered
    order = [html.index(f'id="{s}"') for s in ("diagnoses", "cluster", "events", "checks", "facts")]
    assert order == sorted(order)
    assert 'data-diagnosis="pg-hba-replication-missing"' in html
    assert "node2" in html and "postgres" in html
    for f in report["findings"]:
        assert f'data-status="{f["status"]}" data-check="{f["check"]}"' in html
    n_fix = sum(len(d["fix"]) for d in report["diagnoses"])
    assert n_fix >= 1 and html.count('class="copy"') == n_fix
    assert html.count('data-filter="') == 6  # all + five statuses
    assert "<details><summary>All facts" in html
    assert "Patroni</dt><dd>4." in html and "etcd</dt><dd>3." in html
    # a view that is an error record shows as data, not as a table
    assert "Event timeline" in html


def test_versions_found_in_facts():
    facts = Facts(json.loads(SNAPSHOT.read_text()))
    v = versions(facts)
    assert v["Patroni"].startswith("4.") and v["etcd"].startswith("3.") and v["PostgreSQL"].startswith("15")


def test_minimal_report_renders_without_views():
    facts = Facts({"version": 1})
    report = {"command": "run", "verdict": "ok", "exit_code": 0, "diagnoses": [], "findings": [], "node": {}}
    html = render_html(report, facts)
    assert "No problem found." in html and 'id="cluster"' not in html and 'id="events"' not in html
