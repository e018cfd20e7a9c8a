"""A thin, read-only etcd client over the v3 HTTP (gRPC) gateway, on ``requests``.

Patroni's ``etcd3`` DCS speaks exactly this gateway, so probing it the same way shows
what Patroni sees: the path prefix (``/v3``, ``/v3beta``, ``/v3alpha``) chosen by the
server version, base64 keys, TLS files and username/password tokens. Used by the
``dcs`` collector and reusable by ``preflight``. Every call has a timeout; failures
come back as data (``{"kind", "message"}``), never as exceptions.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from doctor.errors import error_data

# etcd's gRPC gateway moved from /v3alpha (<3.3) to /v3beta (3.3) to /v3 (>=3.4).
DEFAULT_API_PREFIX = "/v3"


class EtcdError(Exception):
    """One failed etcd request; ``kind`` is one of the error kinds the facts use."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    def data(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "message": str(self)}
        if self.status is not None:
            d["status"] = self.status
        return d


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def unb64(text: str | None) -> str:
    if not text:
        return ""
    return base64.b64decode(text).decode("utf-8", errors="replace")


def prefix_range_end(prefix: str) -> str:
    """The etcd ``range_end`` that selects every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return b64(bytes(raw[: i + 1]))
    return b64(b"\0")


def api_prefix_for(version: str | None) -> str:
    """The gateway path prefix an etcd server of ``version`` serves."""
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except (TypeError, ValueError):
        return DEFAULT_API_PREFIX
    if (major, minor) >= (3, 4):
        return "/v3"
    if (major, minor) == (3, 3):
        return "/v3beta"
    return "/v3alpha"


def classify(exc: BaseException) -> str:
    """Error kind of a ``requests`` failure (more precise than text matching alone)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls"
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout)):
        return "timeout"
    text = str(exc)
    if "Connection refused" in text:
        return "refused"
    if "Name or service not known" in text or "NameResolutionError" in text or "nodename nor servname" in text \
            or "Temporary failure in name resolution" in text:
        return "dns"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "Connection reset" in text:
        return "reset"
    return error_data(exc)["kind"]


def short_message(exc: BaseException) -> str:
    """The useful tail of a ``requests`` error ("[Errno 111] Connection refused")."""
    text = str(exc)
    for marker in ("Failed to establish a new connection: ", "Caused by ", "(Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.rstrip("')\"").strip()[:300] or type(exc).__name__


@dataclass
class EtcdClient:
    """One etcd endpoint. ``timeout`` bounds each request (connect and read)."""

    url: str
    timeout: float = 3.0
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    username: str | None = None
    password: str | None = None
    api_prefix: str | None = None
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def _kw(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"timeout": self.timeout}
        if self.url.startswith("https"):
            kw["verify"] = self.cacert or True
            if self.cert:
                kw["cert"] = (self.cert, self.key) if self.key else self.cert
        return kw

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        """(status, parsed JSON or None, text). Raises EtcdError on transport errors."""
        headers = {"Authorization": self.token} if self.token else {}
        try:
            if method == "GET":
                r = self.session.get(self.url + path, headers=headers, **self._kw())
            else:
                r = self.session.post(self.url + path, data=json.dumps(body or {}), headers=headers, **self._kw())
        except requests.RequestException as exc:
            raise EtcdError(classify(exc), short_message(exc)) from None
        try:
            doc = r.json()
        except ValueError:
            doc = None
        return r.status_code, doc, r.text.strip()[:300]

    def _v3(self, path: str, body: Any) -> dict[str, Any]:
        prefix = self.api_prefix or DEFAULT_API_PREFIX
        status, doc, text = self.request("POST", prefix + path, body)
        if status == 401 or (isinstance(doc, dict) and "authentication" in str(doc.get("error", "")).lower()):
            raise EtcdError("auth", (doc or {}).get("error") or text or "HTTP 401", status)
        if status == 404:
            raise EtcdError("not-found", f"{prefix}{path}: HTTP 404 {text}", status)
        if status >= 400 or not isinstance(doc, dict):
            msg = (doc or {}).get("error") or (doc or {}).get("message") if isinstance(doc, dict) else None
            kind = "timeout" if msg and "timed out" in msg else "error"
            raise EtcdError(kind, f"{prefix}{path}: HTTP {status} {msg or text}", status)
        return doc

    def version(self) -> dict[str, Any]:
        status, doc, text = self.request("GET", "/version")
        if status != 200 or not isinstance(doc, dict):
            raise EtcdError("not-etcd", f"/version: HTTP {status} {text}", status)
        self.api_prefix = self.api_prefix or api_prefix_for(doc.get("etcdserver"))
        return doc

    def health(self) -> dict[str, Any]:
        status, doc, text = self.request("GET", "/health")
        if not isinstance(doc, dict):
            raise EtcdError("error", f"/health: HTTP {status} {text}", status)
        return {"status": status, "health": str(doc.get("health")).lower() == "true",
                "reason": doc.get("reason") or None}

    def authenticate(self) -> None:
        if not self.username:
            return
        doc = self._v3("/auth/authenticate", {"name": self.username, "password": self.password or ""})
        self.token = doc.get("token")
        if not self.token:
            raise EtcdError("auth", f"etcd gave no token for user {self.username}")

    def status(self) -> dict[str, Any]:
        return self._v3("/maintenance/status", {})

    def members(self) -> list[dict[str, Any]]:
        return self._v3("/cluster/member/list", {}).get("members") or []

    def range_prefix(self, prefix: str, serializable: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every key under ``prefix``: ([{key, value, lease, mod_revision}], header)."""
        body: dict[str, Any] = {"key": b64(prefix), "range_end": prefix_range_end(prefix)}
        if serializable:
            body["serializable"] = True
        doc = self._v3("/kv/range", body)
        kvs = [{"key": unb64(kv.get("key")), "value": unb64(kv.get("value")),
                "lease": kv.get("lease"), "mod_revision": kv.get("mod_revision")} for kv in doc.get("kvs") or []]
        return kvs, doc.get("header") or {}

    def v2_machines(self) -> dict[str, Any]:
        """What an ``etcd:`` (v2 API) Patroni asks first; etcd >= 3.4 answers 404 unless --enable-v2."""
        status, _doc, text = self.request("GET", "/v2/machines")
        return {"status": status, "served": status == 200, "body": text[:200]}


def client_for(url: str, section: dict[str, Any] | None, timeout: float) -> EtcdClient:
    """A client for ``url`` with the TLS files and credentials of a Patroni etcd/etcd3 section."""
    s = section if isinstance(section, dict) else {}
    return EtcdClient(url=url, timeout=timeout, cacert=s.get("cacert") or s.get("ca_cert"),
                      cert=s.get("cert"), key=s.get("key"), username=s.get("username") or s.get("user"),
                      password=None if s.get("password") is None else str(s.get("password")))


def probe(client: EtcdClient, v2: bool = False) -> dict[str, Any]:
    """Version, health, status (leader, raft term) of one endpoint, with latency and error kind."""
    out: dict[str, Any] = {"url": client.url, "ok": False}
    t0 = time.monotonic()
    try:
        ver = client.version()
        out["latency_ms"] = round((time.monotonic() - t0) * 1000, 1)
        out.update(version=ver.get("etcdserver"), cluster_version=ver.get("etcdcluster"),
                   api_prefix=client.api_prefix)
        if v2:
            try:
                out["v2"] = client.v2_machines()
            except EtcdError as exc:
                out["v2"] = {"error": exc.data()}
        h = client.health()
        out["health"] = h["health"]
        if h.get("reason"):
            out["health_reason"] = h["reason"]
        client.authenticate()
        st = client.status()
        header = st.get("header") or {}
        out.update(member_id=header.get("member_id"), cluster_id=header.get("cluster_id"),
                   leader_id=st.get("leader") if st.get("leader") not in (None, "0") else None,
                   raft_term=_int(st.get("raftTerm") or header.get("raft_term")),
                   raft_index=_int(st.get("raftIndex")), db_size=_int(st.get("dbSize")))
        out["is_leader"] = bool(out["leader_id"]) and out["leader_id"] == out["member_id"]
        out["ok"] = bool(out["health"]) and bool(out["leader_id"])
        if not out["ok"] and "error" not in out:
            out["error"] = {"kind": "no-leader",
                            "message": "etcd member answers but reports no raft leader (no quorum)"}
    except EtcdError as exc:
        out["error"] = exc.data()
        out.setdefault("latency_ms", round((time.monotonic() - t0) * 1000, 1))
    return out


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
