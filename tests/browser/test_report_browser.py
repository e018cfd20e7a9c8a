"""The HTML report in a real browser: headless Chromium (Debian's package, installed by
scripts/install-test-deps.sh), driven over the DevTools protocol.

The report is rendered from a facts snapshot saved from a real broken lab run
(pg-hba-replication-missing, node2 re-cloning while the leader's pg_hba has no
replication line), with hostile text planted in a log line, a DCS value and a member
name. The test reads the rendered page: the diagnosis title is visible, a real mouse
click on the "fail" filter hides the ok rows, and nothing hostile ran.

The DevTools websocket is spoken with a 60-line stdlib client below rather than a
dependency: the protocol needs only text frames, and the test then runs wherever
Chromium does.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from doctor.facts import Facts
from doctor.pipeline import analyze
from doctor.render.html import render_html

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "pg-hba-replication-missing.json"
ARTIFACTS = REPO / "artifacts"
CHROMIUM = "/usr/bin/chromium"
HOSTILE_LOG = "<script>window.__pwned=1</script> replication refused"
HOSTILE_DCS = "<img src=x onerror=\"window.__pwned=2\">"
HOSTILE_MEMBER = "<img src=x onerror=window.__pwned=3>node9"

pytestmark = pytest.mark.browser


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: masked text frames out, frames in."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:200]!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        parts = []
        while True:
            b1, b2 = self._read(2)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b1 & 0x0F
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            parts.append(payload)
            if b1 & 0x80:
                return b"".join(parts).decode()

    def close(self) -> None:
        self.sock.close()


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, name: str, timeout: float = 20.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for e in self.events:
                if e.get("method") == name:
                    self.events.remove(e)
                    return e
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(name)

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the middle of the element."""
        self.js(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")
        box = self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                      f" return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path, full: bool = True) -> None:
        params = {"format": "png"}
        if full:
            w, h = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(clip={"x": 0, "y": 0, "width": w, "height": min(h, 6000), "scale": 1},
                          captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-test-deps.sh", pytrace=False)
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         "--window-size=1280,1600", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > end:
                pytest.fail("chromium did not start its DevTools endpoint", pytrace=False)
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        page_target = next(t for t in targets if t.get("type") == "page")
        ws = WebSocket(page_target["webSocketDebuggerUrl"])
        yield Page(ws)
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    facts = Facts(json.loads(FIXTURE.read_text()))
    facts.data.setdefault("logs", {})["matches"] = [{
        "playbook": "pg-hba-replication-missing", "source": "postgresql", "count": 7,
        "first": "2025-01-01 03:00:01", "last": "2025-01-01 03:04:59", "sample": HOSTILE_LOG}]
    facts.data.setdefault("dcs", {})["hostile_value"] = HOSTILE_DCS
    report = analyze(facts, command="analyze", profiles=("run", "replication")).as_dict()
    report["cluster"] = {"members": [{"name": "node1", "role": "leader", "state": "running", "timeline": 1, "lag": 0},
                                     {"name": HOSTILE_MEMBER, "role": "replica", "state": "stopped",
                                      "timeline": None, "lag": None}]}
    report["events"] = [{"time": "2025-01-01 03:00:01", "member": "node2", "message": HOSTILE_LOG}]
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(report, facts), encoding="utf-8")
    return path


def test_report_in_chromium(chromium: Page, report_file: Path):
    page = chromium
    page.call("Page.enable")
    page.call("Runtime.enable")
    page.call("Page.navigate", url=report_file.as_uri())
    page.wait_event("Page.loadEventFired")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(ARTIFACTS / "report-browser.png")

    # The diagnosis is first and its title is visible.
    title = page.js("""(() => { const el = document.querySelector('#diagnoses article .title');
        const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
        return {text: el.innerText, visible: r.width > 0 && r.height > 0 && s.visibility === 'visible'
                && s.display !== 'none', id: el.closest('article').dataset.diagnosis}; })()""")
    assert title["visible"] and title["id"] == "pg-hba-replication-missing", title
    assert "pg_hba" in title["text"] or "replication" in title["text"].lower(), title
    assert "Verdict" in page.js("document.getElementById('verdict').innerText")

    # Nothing hostile ran, and it shows as text.
    assert page.js("typeof window.__pwned") == "undefined"
    assert page.js("document.querySelectorAll('img').length") == 0
    assert page.js("document.scripts.length") == 1  # the report's own script only
    body = page.js("document.body.innerText")
    assert "<script>window.__pwned=1</script>" in body  # in the diagnosis evidence, shown escaped
    assert HOSTILE_MEMBER in body  # member table
    facts_text = page.js("document.getElementById('facts').textContent")
    assert HOSTILE_DCS in facts_text or json.dumps(HOSTILE_DCS)[1:-1] in facts_text

    # The status filter: a real click on "fail" hides every ok row and keeps the failures.
    count_rows = "(s) => [...document.querySelectorAll('#checks tbody tr[data-status=' + s + ']')]" \
                 ".filter(r => r.getClientRects().length > 0).length"
    ok_before = page.js(f"({count_rows})('ok')")
    fail_before = page.js(f"({count_rows})('fail')")
    assert ok_before > 0 and fail_before > 0
    page.click("button[data-filter=fail]")
    assert page.js(f"({count_rows})('ok')") == 0
    assert page.js(f"({count_rows})('fail')") == fail_before
    assert page.js("document.querySelector('button[data-filter=fail]').getAttribute('aria-pressed')") == "true"
    page.screenshot(ARTIFACTS / "report-browser-filter-fail.png")
    page.click("button[data-filter=all]")
    assert page.js(f"({count_rows})('ok')") == ok_before

    # The copy button sits beside a fix command filled with this node's values.
    fix = page.js("[...document.querySelectorAll('#diagnoses .fix code')].map(c => c.innerText).join('\\n')")
    assert "/var/tmp/lab-dev5" in fix or "127.0.5." in fix, fix
    # The fix's prose is shown around its commands, as paragraphs, not as a raw Markdown dump.
    assert page.js("document.querySelectorAll('#diagnoses .fixtext p').length") >= 1
    assert page.js("document.querySelectorAll('#diagnoses button.copy').length") >= 1
