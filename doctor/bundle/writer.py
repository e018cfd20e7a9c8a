"""Write a support bundle: collect, analyze, split into readable files, redact, pack.

The bundle is one ``.tar.gz`` (mode 0600) under a single top directory. Its
``manifest.json`` lists every file with its size and sha256, the redactions made
(kind, count, file; never the secret), the logs kept and left out, and what could
not be collected and why. A dead service or an unreadable file is recorded, never
fatal: the bundle is most needed when things are broken.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import re
import socket
import stat
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doctor import __version__
from doctor.bundle import BundleError, pgpass
from doctor.bundle import host as host_facts
from doctor.bundle import logs as bundle_logs
from doctor.bundle.redaction import gate, prime
from doctor.bundle.safefile import Refused, read_regular
from doctor.collect import CollectOptions
from doctor.collect.config import discover_config_path, read_config_text
from doctor.collect.deadline import Deadline
from doctor.errors import error_data
from doctor.facts import FACTS_VERSION, Facts
from doctor.redact import Redactor

BUNDLE_FORMAT = "pgdoctor-bundle"
BUNDLE_VERSION = 1
DEFAULT_SINCE = "24h"
DEFAULT_MAX_LOG_MB = 40  # uncompressed; logs compress ~10x, so the bundle stays far under 50 MB
# Snapshot keys that are bookkeeping, not a domain worth its own files.
NOT_SPLIT = {"version", "collected_at", "host", "pgdoctor_version", "profile", "timings", "settings"}
# Config keys that name TLS files (their metadata, and the content of certificates, go in the bundle).
TLS_KEYS = ("certfile", "keyfile", "cafile", "cacert", "cert", "key", "ssl_cert_file", "ssl_key_file", "ssl_ca_file")
MAX_TLS_FILE = 64 * 1024


@dataclass
class BundleOptions:
    config_path: str | None = None
    output: str | None = None
    since: str = DEFAULT_SINCE
    since_seconds: float = 24 * 3600
    max_log_bytes: int = DEFAULT_MAX_LOG_MB * 1024 * 1024
    timeout: float = 5.0
    pg_user: str | None = None
    log_files: list[str] = field(default_factory=list)
    deadline: float | None = None  # monotonic end time (--deadline): log files not read by then are left out


@dataclass
class BundleResult:
    path: str
    size: int
    seconds: float
    files: int
    redactions: int
    not_collected: int
    diagnoses: list[str]
    verdict: str


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _safe_part(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", str(value)).strip("_") if value not in (None, "") else ""


def default_name(host: str, when: _dt.datetime, scope: Any = None, member: Any = None) -> str:
    """``pgdoctor-bundle-<scope>-<member>-<time>.tar.gz``: the member says which node it is; the host
    name stands in when the config names no member (a VM's host name rarely tells nodes apart)."""
    parts = [_safe_part(scope), _safe_part(member)] if _safe_part(member) else [_safe_part(host) or "host"]
    label = "-".join(p for p in parts if p)
    return f"pgdoctor-bundle-{label}-{when.strftime('%Y%m%dT%H%M%SZ')}.tar.gz"


def output_path(requested: str | None, host: str, when: _dt.datetime, scope: Any = None,
                member: Any = None) -> Path:
    """Where to write: the given file, a default name inside a given directory, or in the current directory."""
    name = default_name(host, when, scope, member)
    if not requested:
        return Path.cwd() / name
    p = Path(requested)
    if p.is_dir():
        return p / name
    if not p.parent.exists():
        raise BundleError(f"cannot write {p}: directory {p.parent} does not exist")
    return p


def errors_in(value: Any, where: str = "") -> list[dict[str, Any]]:
    """Every ``{"error": {...}}`` record in the facts, with the path where it sits."""
    out: list[dict[str, Any]] = []
    if isinstance(value, dict):
        err = value.get("error")
        if isinstance(err, dict) and "kind" in err:
            out.append({"what": where or "facts", "kind": err.get("kind"), "message": err.get("message")})
        for k, v in value.items():
            if k != "error":
                out.extend(errors_in(v, f"{where}.{k}" if where else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(errors_in(v, f"{where}[{i}]"))
    return out


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _safe_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.strip("/")) or "file"


def split_facts(facts: Facts) -> dict[str, Any]:
    """Readable files from the snapshot: ``dcs/<key>.json``, ``postgres/settings.json``, ..."""
    files: dict[str, Any] = {}
    for domain, value in facts.data.items():
        if domain in NOT_SPLIT or value is None:
            continue
        if isinstance(value, dict) and set(value) != {"error"}:
            overview = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
            if overview:
                files[f"{domain}/overview.json"] = overview
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    files[f"{domain}/{_safe_name(str(key))}.json"] = item
        else:
            files[f"{domain}.json"] = value
    return files


def _tls_paths(config: Any, trail: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(config, dict):
        for k, v in config.items():
            here = f"{trail}.{k}" if trail else str(k)
            if k in TLS_KEYS and isinstance(v, str) and v.startswith("/"):
                out.append((here, v))
            else:
                out.extend(_tls_paths(v, here))
    return out


# A PEM block: what a TLS file is made of. Only these blocks of a TLS file ship (a path that names
# another kind of file, /etc/shadow as a keyfile, sends nothing of it).
_PEM_BLOCK_RE = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----.*?-----END (?P=kind)-----\n?", re.DOTALL)


def tls_files(config: dict[str, Any] | None, redactor: Redactor) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Metadata of every TLS file the config names, and the (redacted) PEM blocks of the readable ones."""
    meta: dict[str, Any] = {}
    contents: dict[str, bytes] = {}
    for where, path in _tls_paths(config or {}):
        entry: dict[str, Any] = {"path": path}
        try:
            st = os.stat(path)
            entry.update(exists=True, size=st.st_size, mode=f"0{stat.S_IMODE(st.st_mode):o}", uid=st.st_uid)
        except OSError as exc:
            entry.update(exists=False, error=error_data(exc))
            meta[where] = entry
            continue
        try:
            text, _ = read_regular(path, MAX_TLS_FILE)
        except Refused as why:
            entry.update(readable=False, content=f"not collected: {why}")
            meta[where] = entry
            continue
        entry["readable"] = True
        entry["holds_private_key"] = "PRIVATE KEY-----" in text
        pem = "".join(m.group(0) for m in _PEM_BLOCK_RE.finditer(text))
        if not pem:
            entry["content"] = "not collected: no PEM block in it"
        else:
            name = f"config/tls/{_safe_name(path)}"
            contents[name] = redactor.text(pem, name).encode("utf-8")
            entry["bundle_file"] = name
        meta[where] = entry
    return meta, contents


def pgpass_files(config: dict[str, Any] | None, pg_user: str, redactor: Redactor) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The redacted pgpass files that may ship (see doctor.bundle.pgpass), and why the others do not."""
    files: dict[str, str] = {}
    refused: list[dict[str, Any]] = []
    for candidate in pgpass.candidates(config, os.environ, pg_user):
        try:
            text = pgpass.shippable(candidate.path, pg_user)
        except pgpass.Missing as why:
            if candidate.explicit:
                refused.append(pgpass.refusal(candidate, why))
            continue
        except pgpass.Refused as why:
            refused.append(pgpass.refusal(candidate, why))
            continue
        name = f"config/pgpass/{_safe_name(candidate.path)}"
        files[name] = redactor.pgpass(text, name)
    return files, refused


class _Files:
    """The bundle's files in order, each gated by the redactor as it is added."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.items: dict[str, bytes] = {}

    def add(self, name: str, blob: bytes | str | Any) -> None:
        if isinstance(blob, str):
            blob = blob.encode("utf-8")
        elif not isinstance(blob, bytes):
            blob = _json_bytes(self.redactor.data(blob, name))
        base, n = name, 2
        while name in self.items:
            stem, dot, ext = base.rpartition(".")
            name = f"{stem}-{n}.{ext}" if dot else f"{base}-{n}"
            n += 1
        self.items[name] = gate(self.redactor, name, blob)


def _pack(path: Path, top: str, files: dict[str, bytes], when: float) -> None:
    """Write the archive to a 0600 temporary file next to ``path``, then move it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BundleError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
            for name, blob in files.items():
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(blob)
                info.mode = 0o600
                info.mtime = int(when)
                tar.addfile(info, io.BytesIO(blob))
        os.replace(tmp, path)
        os.chmod(path, 0o600)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise BundleError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_bundle(opts: BundleOptions, argv: list[str] | None = None,
                 progress: Callable[[str], None] | None = None) -> BundleResult:
    """Collect this node's facts and logs and write the bundle; return where and how big."""
    from doctor.pipeline import FULL_PROFILES, analyze, collect
    from doctor.render.emit import render_document

    started = time.monotonic()
    deadline = Deadline.for_command(opts.timeout, "bundle")  # the collection, then the bundle's own gathering
    if opts.deadline is not None:  # --deadline, when shorter, ends the whole command sooner
        deadline.end = min(deadline.end, opts.deadline)
    say = progress or (lambda _msg: None)
    when = _now()
    hostname = socket.gethostname()
    redactor = Redactor()

    config_path, _found_by = discover_config_path(opts.config_path)
    config_text = read_config_text(config_path)  # a missing config is a usage error, as for `run`
    config = prime(redactor, config_text, os.environ, opts.pg_user or "postgres")
    named = config if isinstance(config, dict) else {}
    out_path = output_path(opts.output, hostname, when, named.get("scope"), named.get("name"))

    say("collecting facts")
    options = CollectOptions(config_path=config_path, timeout=opts.timeout, since=opts.since, pg_user=opts.pg_user,
                             log_files=list(opts.log_files))
    facts, _ctx = collect(options, profile="run", redactor=redactor, deadline=deadline)
    collected = time.monotonic()
    report = analyze(facts, command="run", profiles=FULL_PROFILES)
    report_dict = report.as_dict()

    say("gathering logs and system facts")
    files = _Files(redactor)
    harvest = bundle_logs.harvest(facts, redactor, opts.since_seconds, opts.max_log_bytes, opts.log_files,
                                  deadline=deadline)
    host_files, host_problems = host_facts.gather(facts.get("system"), redactor, deadline)
    tls_meta, tls_contents = tls_files(config, redactor)
    pg_user = str(facts.get("system.pg_user.name") or opts.pg_user or "postgres")
    pgpass_contents, pgpass_refused = pgpass_files(config, pg_user, redactor)

    # The snapshot and the report go through the redactor once more: by now it knows every secret.
    clean_facts = Facts(redactor.data(facts.data, "facts.json"))
    files.add("facts.json", clean_facts.to_json() + "\n")
    files.add("report.json", render_document(redactor.data(report_dict, "report.json"), clean_facts, "json"))
    files.add("report.html", render_document(redactor.data(report_dict, "report.html"), clean_facts, "html"))
    files.add("config/patroni.yml", redactor.yaml_text(config_text, "config/patroni.yml"))
    for name, text in pgpass_contents.items():
        files.add(name, text)
    if tls_meta:
        files.add("config/tls.json", tls_meta)
        for name, blob in tls_contents.items():
            files.add(name, blob)
    for name, value in split_facts(clean_facts).items():
        files.add(name, value)
    for name, value in host_files.items():
        files.add(name, value)
    for ex in harvest.excerpts:
        files.add(ex.name, ex.text)

    not_collected = errors_in(clean_facts.data) + [
        {"what": p["what"], "kind": p["error"].get("kind"), "message": p["error"].get("message")}
        for p in harvest.not_collected + host_problems] + pgpass_refused
    manifest = {
        "format": BUNDLE_FORMAT,
        "bundle_version": BUNDLE_VERSION,
        "pgdoctor_version": __version__,
        "facts_version": FACTS_VERSION,
        "host": hostname,
        "created_at": when.isoformat(timespec="seconds"),
        "collected_at": clean_facts.get("collected_at"),
        "command_line": redactor.text(" ".join(redactor.argv(list(argv or sys.argv), "manifest.json")),
                                      "manifest.json"),
        "options": {"config": config_path, "since": opts.since, "max_log_bytes": opts.max_log_bytes,
                    "timeout": opts.timeout},
        "node": report_dict.get("node"),
        "verdict": report_dict.get("verdict"),
        "diagnoses": [d["id"] for d in report_dict.get("diagnoses", [])],
        "files": [{"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items.items()],
        "logs": [ex.manifest_entry() for ex in harvest.excerpts],
        "logs_left_out": harvest.left_out,
        "not_collected": not_collected,
        "redactions": redactor.summary_list(),
        "timings": {"collect_seconds": round(collected - started, 3),
                    "total_seconds_before_packing": round(time.monotonic() - started, 3)},
    }
    files.add("manifest.json", manifest)
    say(f"writing {out_path}")
    top = out_path.name[:-7] if out_path.name.endswith(".tar.gz") else out_path.stem
    _pack(out_path, top, files.items, when.timestamp())
    return BundleResult(path=str(out_path), size=out_path.stat().st_size, seconds=time.monotonic() - started,
                        files=len(files.items), redactions=sum(r["count"] for r in manifest["redactions"]),
                        not_collected=len(not_collected), diagnoses=manifest["diagnoses"],
                        verdict=str(manifest["verdict"]))
