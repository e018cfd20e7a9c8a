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
from doctor.render.html import render_html
from doctor.views.versions import versions

SNAPSHOT = Path(__file__).resolve().parents[1] / "browser" / "fixtures" / "pg-hba-replication-missing.json"
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


# -- members as patronictl list, a short event timeline, the whole Fix as safe HTML ------------------

from doctor.render.html import event_timeline, markdown_fix, member_table  # noqa: E402

_CLUSTER = {"scope": "main", "leader": "node1", "system_identifier": "7712", "paused": False, "dcs_note": None,
            "members": [
                {"name": "node1", "host": "127.0.5.11", "port": 5432, "role": "Leader", "state": "running",
                 "timeline": 5, "receive_lsn": None, "replay_lsn": None, "lsn": "0/A0001F0", "lag_bytes": None,
                 "replay_lag_bytes": None, "sync_state": "leader", "tags": {}, "pending_restart": False,
                 "disagree": [], "rest_error": None, "role_note": None},
                {"name": "node2", "host": "127.0.5.12", "port": 5432, "role": "Replica", "state": "streaming",
                 "timeline": 5, "receive_lsn": "0/A0001F0", "replay_lsn": "0/9000000", "lsn": "0/A0001F0",
                 "lag_bytes": 0, "replay_lag_bytes": 16_777_712, "sync_state": "async", "tags": {},
                 "pending_restart": False, "disagree": [], "rest_error": None, "role_note": None}]}


def test_members_read_like_patronictl_list():
    t = member_table(_CLUSTER)
    assert t["columns"] == ["Member", "Host", "Role", "State", "TL", "Receive LSN", "Replay LSN", "Lag", "Sync"]
    assert t["rows"][0] == ["node1", "127.0.5.11:5432", "Leader", "running", "5", "0/A0001F0", "", "", "leader"]
    assert t["rows"][1][7] == "0 B (replay 16.0 MB)"
    cells = " ".join(" ".join(r) for r in t["rows"]) + " ".join(f"{k} {v}" for k, v in t["notes"])
    for raw in ("{}", "[]", "None", "False", "lag_bytes"):
        assert raw not in cells, raw
    assert ("leader", "node1") in t["notes"] and not any(k == "paused" for k, _ in t["notes"])


def test_member_tags_and_pending_restart_only_when_set():
    cluster = json.loads(json.dumps(_CLUSTER))
    cluster["members"][1].update(tags={"nofailover": True}, pending_restart=True)
    t = member_table(cluster)
    assert t["columns"][-2:] == ["Tags", "Pending restart"]
    assert t["rows"][1][-2:] == ["nofailover: True", "yes"] and t["rows"][0][-2:] == ["", ""]


def test_event_timeline_keeps_time_event_node_message_and_folds_the_old():
    events = [{"time": f"2026-11-26T06:{i:02d}:00.000", "event": "start", "source": "/x/patroni.log",
               "message": f"msg {i}", "count": 1, "pattern": "ev-x", "playbook": "lifecycle-events", "node": "n3",
               "groups": {"pid": "1"}} for i in range(20)]
    t = event_timeline(events, recent=5)
    assert t["total"] == 20 and len(t["recent"]) == 5 and len(t["older"]) == 15
    assert t["recent"][-1]["message"] == "msg 19" and t["recent"][0]["time"] == "2026-11-26 06:15:00"
    assert set(t["recent"][0]) == {"time", "event", "node", "message", "sort"}


def test_report_sections_show_no_internals():
    facts = Facts(json.loads(SNAPSHOT.read_text()))
    report = analyze(facts, command="run", profiles=("run", "replication")).as_dict()
    report["cluster"] = _CLUSTER
    report["events"] = [{"time": "2026-11-26T06:00:00", "event": "clone-failed", "message": "pg_basebackup failed",
                         "pattern": "ev-clone-failed", "playbook": "lifecycle-events", "node": "n3",
                         "groups": {"a": "b"}}]
    html = render_html(report, facts)
    members = html[html.index('id="cluster"'):html.index('id="events"')]
    events = html[html.index('id="events"'):html.index('id="checks"')]
    assert "lag_bytes" not in members and "dcs_note" not in members and "127.0.5.12:5432" in members
    assert "ev-clone-failed" not in events and "lifecycle-events" not in events and "groups" not in events
    assert "pg_basebackup failed" in events


def test_fix_markdown_is_escaped_with_paragraphs_and_copyable_blocks():
    md = ("Either put the right password into `/etc/p.yml` <b>now</b>,\nor reset it:\n\n"
          "```\npsql -c '\\password \"replicator\"' <script>x</script>\n```\n\n- one\n- two `x`\n")
    out = str(markdown_fix(md, "fix-1"))
    assert "<b>" not in out and "<script>" not in out and "&lt;b&gt;" in out and "&lt;script&gt;" in out
    assert out.startswith("<p>Either put the right password into <code>/etc/p.yml</code>")
    assert '<pre><code id="fix-1-1">psql -c &#39;\\password &#34;replicator&#34;&#39;' in out
    assert 'data-target="fix-1-1"' in out and "<ul><li>one</li><li>two <code>x</code></li></ul>" in out


def test_analyze_header_names_the_bundle():
    facts = Facts(json.loads(SNAPSHOT.read_text()))
    report = analyze(facts, command="analyze", profiles=("run",)).as_dict()
    report["source"] = {"bundle": "pgdoctor-bundle-main-node3-20260101T000000Z.tar.gz", "host": "db3",
                        "collected_at": "2026-01-01T00:00:00+00:00"}
    html = render_html(report, facts)
    head = html[:html.index("<main>")]
    assert "pgdoctor-bundle-main-node3-20260101T000000Z.tar.gz" in head and "collected on host db3" in head
    assert 'id="view-source"' not in html


def test_versions_and_counts_come_from_the_report_not_the_facts():
    """The page shows what the report holds: its versions view and its counts, whatever the facts say."""
    facts = Facts(json.loads(SNAPSHOT.read_text()))
    report = {"command": "run", "verdict": "fail", "exit_code": 2, "diagnoses": [], "findings": [], "node": {},
              "counts": {"fail": 7, "ok": 3}, "versions": {"Patroni": "9.9.9"}}
    html = render_html(report, facts)
    assert "Patroni</dt><dd>9.9.9" in html and "etcd</dt>" not in html
    assert "7 fail" in html and "3 ok" in html and "fail (7)" in html
