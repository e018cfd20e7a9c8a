"""Remove secrets before anything leaves the collector.

Every secret is replaced with a stable token (the same secret gives the same token
within one ``Redactor``), so a reader can still see that two places share a
password without learning it. The redaction summary says what kind of secret was
removed, how many times and where, never the secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections import Counter
from typing import Any

# Keys whose values are secrets wherever they appear in a config or a JSON document.
SECRET_KEY_RE = re.compile(
    r"(?:^|_)(?:password|passwd|pass|pwd|secret|token|api_?key|private_?key|credentials?|keyfile_password)$",
    re.IGNORECASE,
)
# Inline forms inside free text: connection strings, URLs, key=value and key: value pairs.
_URL_CRED_RE = re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<secret>[^@\s/]+)(?P<post>@)", re.IGNORECASE)
_KV_RE = re.compile(
    r"(?P<pre>\b(?:password|passwd|pwd|pgpassword|secret|token|api[_-]?key)\s*(?:=|:)\s*)"
    r"(?P<q>['\"]?)(?P<secret>[^\s'\",;}]+)(?P=q)",
    re.IGNORECASE,
)
_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN (?P<kind>[A-Z ]*PRIVATE KEY)-----.*?-----END (?P=kind)-----", re.DOTALL
)
# .pgpass lines: host:port:db:user:password
_PGPASS_RE = re.compile(r"^(?P<pre>[^:\s#]+:[^:\s]+:[^:\s]+:[^:\s]+:)(?P<secret>\S+)$", re.MULTILINE)

TOKEN_PREFIX = "[REDACTED:"


class Redactor:
    """Replaces secrets with stable tokens and keeps a summary of what it removed."""

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = salt if salt is not None else os.urandom(16)
        self._known: dict[str, str] = {}
        self.summary: Counter[tuple[str, str]] = Counter()

    def token(self, secret: str, kind: str = "password") -> str:
        if secret.startswith(TOKEN_PREFIX):
            return secret
        if secret not in self._known:
            digest = hmac.new(self._salt, secret.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:8]
            self._known[secret] = f"{TOKEN_PREFIX}{kind}:{digest}]"
        return self._known[secret]

    def remember(self, secret: Any, kind: str = "password") -> None:
        """Register a secret known from elsewhere so that free text gets it replaced too."""
        if isinstance(secret, str) and len(secret) >= 3:
            self.token(secret, kind)

    def _count(self, kind: str, where: str) -> None:
        self.summary[(kind, where)] += 1

    def data(self, value: Any, where: str = "facts") -> Any:
        """Redact a JSON-like structure: secret keys by name, free text by pattern."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if isinstance(key, str) and SECRET_KEY_RE.search(key) and isinstance(item, (str, int, float)) \
                        and item not in ("", None):
                    self._count("password" if "pass" in key.lower() else "secret", where)
                    out[key] = self.token(str(item), "password" if "pass" in key.lower() else "secret")
                else:
                    out[key] = self.data(item, where)
            return out
        if isinstance(value, list):
            return [self.data(item, where) for item in value]
        if isinstance(value, str):
            return self.text(value, where)
        return value

    def text(self, text: str, where: str = "text") -> str:
        """Redact secrets inside free text (logs, command lines, config files)."""
        if not text:
            return text

        def _private_key(m: re.Match[str]) -> str:
            self._count("private-key", where)
            return self.token(m.group(0), "private-key")

        def _url(m: re.Match[str]) -> str:
            if m.group("secret").startswith(TOKEN_PREFIX):
                return m.group(0)
            self._count("url-password", where)
            return m.group("pre") + self.token(m.group("secret")) + m.group("post")

        def _kv(m: re.Match[str]) -> str:
            secret = m.group("secret")
            if secret.startswith(TOKEN_PREFIX) or secret.lower() in ("null", "none", "true", "false"):
                return m.group(0)
            self._count("password", where)
            return m.group("pre") + m.group("q") + self.token(secret) + m.group("q")

        text = _PRIVATE_KEY_RE.sub(_private_key, text)
        text = _URL_CRED_RE.sub(_url, text)
        text = _KV_RE.sub(_kv, text)
        for secret, token in sorted(self._known.items(), key=lambda kv: -len(kv[0])):
            if secret in text:
                self._count("known-secret", where)
                text = text.replace(secret, token)
        return text

    def pgpass(self, text: str, where: str = ".pgpass") -> str:
        def _line(m: re.Match[str]) -> str:
            self._count("pgpass", where)
            return m.group("pre") + self.token(m.group("secret"))
        return _PGPASS_RE.sub(_line, text)

    def summary_list(self) -> list[dict[str, Any]]:
        return [{"kind": kind, "file": where, "count": n} for (kind, where), n in sorted(self.summary.items())]


def collect_secrets(config: Any) -> list[str]:
    """Every secret value in a (Patroni) config structure, for free-text redaction."""
    found: list[str] = []
    if isinstance(config, dict):
        for key, item in config.items():
            if isinstance(key, str) and SECRET_KEY_RE.search(key) and isinstance(item, (str, int)) and str(item):
                found.append(str(item))
            else:
                found.extend(collect_secrets(item))
    elif isinstance(config, list):
        for item in config:
            found.extend(collect_secrets(item))
    return found
