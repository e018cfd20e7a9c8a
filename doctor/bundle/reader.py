"""Open a bundle anywhere, without touching the system it came from.

Reads the archive in memory (nothing is extracted to disk, so a hostile archive
cannot write outside), checks ``facts.json`` against its sha256 in the manifest,
and loads the snapshot. Every way a file can fail to be a usable bundle becomes one
``BundleError`` line; a snapshot from another pgdoctor raises ``FactsVersionError``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doctor.bundle import BundleError
from doctor.facts import Facts, FactsVersionError

# Larger members are not read: a facts snapshot is a few MB at most.
MAX_MEMBER = 512 * 1024 * 1024


@dataclass
class Bundle:
    path: str
    manifest: dict[str, Any]
    facts: Facts
    names: list[str]


def _strip_top(name: str) -> str:
    parts = name.split("/", 1)
    return parts[1] if len(parts) == 2 else parts[0]


def read_members(path: str, wanted: tuple[str, ...] = ("manifest.json", "facts.json")) -> tuple[dict[str, bytes], list[str]]:
    """The wanted members' bytes (by name below the top directory) and the list of every member."""
    p = Path(path)
    if not p.exists():
        raise BundleError(f"{path} does not exist")
    if p.is_dir():
        raise BundleError(f"{path} is a directory; give the bundle's .tar.gz file")
    found: dict[str, bytes] = {}
    names: list[str] = []
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:  # reads the whole archive: a truncated one fails here
                short = _strip_top(member.name)
                names.append(short)
                if short in wanted and member.isfile():
                    if member.size > MAX_MEMBER:
                        raise BundleError(f"{path}: {short} is {member.size} bytes, too large to be a pgdoctor file")
                    fh = tar.extractfile(member)
                    found[short] = fh.read() if fh else b""
    except BundleError:
        raise
    except tarfile.ReadError as exc:
        text = str(exc)
        if "not a gzip file" in text or "invalid header" in text or "empty file" in text or "bad checksum" in text:
            raise BundleError(f"{path} is not a pgdoctor bundle (not a .tar.gz archive)") from None
        raise BundleError(f"{path} is truncated or corrupt ({text}); copy it again") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError) as exc:
        raise BundleError(f"{path} is truncated or corrupt ({exc or type(exc).__name__}); copy it again") from None
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from None
    return found, names


def open_bundle(path: str) -> Bundle:
    """Load a bundle's manifest and facts; a bare facts.json is accepted too."""
    p = Path(path)
    try:
        head = p.open("rb").read(1) if p.is_file() else b""
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == b"{":
        try:
            facts = Facts.from_json(p.read_text(encoding="utf-8", errors="replace"))
        except FactsVersionError as exc:
            raise FactsVersionError(f"{path}: {exc}") from None
        return Bundle(path=path, manifest={}, facts=facts, names=["facts.json"])
    found, names = read_members(path)
    if "manifest.json" not in found or "facts.json" not in found:
        missing = [n for n in ("manifest.json", "facts.json") if n not in found]
        raise BundleError(f"{path} is not a pgdoctor bundle: it has no {' or '.join(missing)}")
    try:
        manifest = json.loads(found["manifest.json"])
    except ValueError:
        raise BundleError(f"{path} is corrupt: manifest.json is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "pgdoctor-bundle":
        raise BundleError(f"{path} is not a pgdoctor bundle: manifest.json has no format 'pgdoctor-bundle'")
    expected = {f.get("name"): f.get("sha256") for f in manifest.get("files") or [] if isinstance(f, dict)}
    digest = hashlib.sha256(found["facts.json"]).hexdigest()
    if expected.get("facts.json") and expected["facts.json"] != digest:
        raise BundleError(f"{path} is corrupt: facts.json does not match its sha256 in manifest.json")
    try:
        facts = Facts.from_json(found["facts.json"].decode("utf-8", "replace"))
    except FactsVersionError as exc:
        made_by = manifest.get("pgdoctor_version")
        raise FactsVersionError(f"{path} (made by pgdoctor {made_by or '?'}): {exc}") from None
    return Bundle(path=path, manifest=manifest, facts=facts, names=names)
