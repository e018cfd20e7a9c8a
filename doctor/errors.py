"""Turn exceptions into data: ``{"kind": ..., "message": ...}``.

Collectors never let an exception climb the stack; they record what went wrong in
the facts so that checks can reason about it (a refused etcd is a finding, not a crash).
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Any


class UsageError(Exception):
    """pgdoctor cannot do its job with what it was given (exit code 3)."""


def error_kind(exc: BaseException) -> str:
    """Classify an exception into one of the kinds the design names."""
    name = type(exc).__name__.lower()
    text = str(exc).lower()
    if isinstance(exc, (TimeoutError, socket.timeout)) or "timeout" in name or "timed out" in text:
        return "timeout"
    if isinstance(exc, ssl.SSLError) or "ssl" in name or "certificate" in text:
        return "tls"
    if isinstance(exc, socket.gaierror) or "name or service not known" in text or "nodename nor servname" in text \
            or "failed to resolve" in text or "temporary failure in name resolution" in text:
        return "dns"
    if isinstance(exc, ConnectionRefusedError) or "connection refused" in text or "refused" in text:
        return "refused"
    if isinstance(exc, PermissionError) or "permission denied" in text:
        return "permission"
    if isinstance(exc, FileNotFoundError):
        return "not-found"
    if "password authentication failed" in text or "authentication" in text or "no password supplied" in text \
            or "401" in text:
        return "auth"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "unreachable"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNRESET:
        return "reset"
    return "error"


def error_data(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """The standard error record stored in facts."""
    message = str(exc).strip() or type(exc).__name__
    data: dict[str, Any] = {"kind": error_kind(exc), "message": message.splitlines()[0][:500]}
    if len(message.splitlines()) > 1:
        data["detail"] = "\n".join(message.splitlines()[1:])[:2000]
    data.update(extra)
    return data
