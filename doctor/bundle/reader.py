"""Open a bundle anywhere, without touching the system it came from.

Reads the archive in memory (nothing is extracted to disk, so a hostile archive
cannot write outside), checks ``facts.json`` against its sha256 in the manifest,
and loads the snapshot. Every way a file can fail to be a usable bundle becomes one
``BundleError`` line; a snapshot from another pgdoctor raises ``FactsVersionError``.

Bounded whatever the archive holds: a member is read only up to its cap (``facts.json``
``MAX_FACTS``, ``manifest.json`` ``MAX_MANIFEST``, any other ``MAX_MEMBER``), so a small
archive that expands to gigabytes is refused in one line instead of filling memory; at most
``MAX_LISTED`` member names are kept; and reading stops at the command's deadline. What
was not read past a cap or the deadline, when the bundle is still usable, is in
``Bundle.notes``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doctor.bundle import BundleError
from doctor.facts import Facts, FactsVersionError
from doctor.logscan.deadline import passed

# A facts snapshot is a few MB at most (its log part is bounded, see doctor.logscan.scan); its JSON
# takes several times its size in memory, so the cap keeps `analyze` within a few hundred MB.
MAX_FACTS = 32 * 1024 * 1024
MAX_MANIFEST = 8 * 1024 * 1024
MAX_MEMBER = 64 * 1024 * 1024  # any other member asked for
MAX_LISTED = 10_000  # member names kept
_CHUNK = 1024 * 1024


def member_cap(name: str) -> int:
    return {"facts.json": MAX_FACTS, "manifest.json": MAX_MANIFEST}.get(name, MAX_MEMBER)


@dataclass
class Bundle:
    path: str
    manifest: dict[str, Any]
    facts: Facts
    names: list[str]
    notes: list[str] = field(default_factory=list)  # what was not read (past a cap, the deadline)


def _strip_top(name: str) -> str:
    parts = name.split("/", 1)
    return parts[1] if len(parts) == 2 else parts[0]


def _check_regular(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise BundleError(f"{path} does not exist")
    if p.is_dir():
        raise BundleError(f"{path} is a directory; give the bundle's .tar.gz file")
    if not p.is_file():  # a device never ends, a FIFO may never start
        raise BundleError(f"{path} is not a regular file; give the bundle's .tar.gz file")
    return p


def _too_large(path: str, name: str, size: int) -> BundleError:
    return BundleError(f"{path}: {name} is {_mib(size)} MiB, more than the {_mib(member_cap(name))} MiB "
                       "a pgdoctor bundle file can be; not read")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f}" if n >= 1024 * 1024 else f"{n / (1024 * 1024):.2f}"


def _read_capped(tar: tarfile.TarFile, member: tarfile.TarInfo, cap: int, deadline: float | None) -> bytes | None:
    """A member's bytes, read in chunks; None when the deadline came first."""
    fh = tar.extractfile(member)
    if fh is None:
        return b""
    parts: list[bytes] = []
    got = 0
    while got <= cap:
        if passed(deadline):
            return None
        chunk = fh.read(min(_CHUNK, cap + 1 - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_members(path: str, wanted: tuple[str, ...] = ("manifest.json", "facts.json"),
                 deadline: float | None = None, notes: list[str] | None = None
                 ) -> tuple[dict[str, bytes], list[str]]:
    """The wanted members' bytes (by name below the top directory) and the list of every member.

    A wanted member over its cap raises ``BundleError``; so does the deadline before every wanted
    member was read. Past the deadline with all of them read, or past ``MAX_LISTED`` names, the
    rest of the archive is left and ``notes`` says so.
    """
    _check_regular(path)
    notes = notes if notes is not None else []
    found: dict[str, bytes] = {}
    names: list[str] = []
    unlisted = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            while True:
                if passed(deadline):
                    missing = [w for w in wanted if w not in found]
                    if missing:
                        raise BundleError(f"{path}: stopped at the time limit (--deadline) after {len(names)} "
                                          f"member(s); {' and '.join(missing)} not reached")
                    notes.append("the time limit (--deadline) came before the end of the archive: the members "
                                  "after the last one listed were not checked")
                    break
                member = tar.next()  # reads the whole archive: a truncated one fails here
                if member is None:
                    break
                short = _strip_top(member.name)
                if len(names) < MAX_LISTED:
                    names.append(short)
                else:
                    unlisted += 1
                if short in wanted and member.isfile():
                    if member.size > member_cap(short):
                        raise _too_large(path, short, member.size)
                    data = _read_capped(tar, member, member_cap(short), deadline)
                    if data is None:
                        continue  # the deadline: reported at the top of the loop
                    if len(data) > member_cap(short):
                        raise _too_large(path, short, len(data))
                    found[short] = data
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
    if unlisted:
        notes.append(f"the archive has {unlisted} more member(s) than the {MAX_LISTED} listed")
    return found, names


def _load_facts(text: str, path: str) -> Facts:
    try:
        return Facts.from_json(text)
    except RecursionError:
        raise BundleError(f"{path}: facts.json is nested too deeply to be a pgdoctor facts file") from None


def open_bundle(path: str, deadline: float | None = None) -> Bundle:
    """Load a bundle's manifest and facts; a bare facts.json is accepted too.

    ``deadline`` (monotonic seconds): reading the archive stops there (see ``read_members``).
    """
    p = _check_regular(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(1)
            size = p.stat().st_size
            if head == b"{":
                if size > MAX_FACTS:
                    raise _too_large(path, "facts.json", size)
                text = fh.read(MAX_FACTS)  # the first byte is already read
                text = head + text
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == b"{":
        try:
            facts = _load_facts(text.decode("utf-8", "replace"), path)
        except FactsVersionError as exc:
            raise FactsVersionError(f"{path}: {exc}") from None
        return Bundle(path=path, manifest={}, facts=facts, names=["facts.json"])
    notes: list[str] = []
    found, names = read_members(path, deadline=deadline, notes=notes)
    if "manifest.json" not in found or "facts.json" not in found:
        missing = [n for n in ("manifest.json", "facts.json") if n not in found]
        raise BundleError(f"{path} is not a pgdoctor bundle: it has no {' or '.join(missing)}")
    try:
        manifest = json.loads(found["manifest.json"])
    except (ValueError, RecursionError):
        raise BundleError(f"{path} is corrupt: manifest.json is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "pgdoctor-bundle":
        raise BundleError(f"{path} is not a pgdoctor bundle: manifest.json has no format 'pgdoctor-bundle'")
    expected = {f.get("name"): f.get("sha256") for f in manifest.get("files") or [] if isinstance(f, dict)}
    digest = hashlib.sha256(found["facts.json"]).hexdigest()
    if expected.get("facts.json") and expected["facts.json"] != digest:
        raise BundleError(f"{path} is corrupt: facts.json does not match its sha256 in manifest.json")
    try:
        facts = _load_facts(found["facts.json"].decode("utf-8", "replace"), path)
    except FactsVersionError as exc:
        made_by = manifest.get("pgdoctor_version")
        raise FactsVersionError(f"{path} (made by pgdoctor {made_by or '?'}): {exc}") from None
    return Bundle(path=path, manifest=manifest, facts=facts, names=names, notes=notes)


MAX_BUNDLES = 64  # bundles analyzed together: a cluster's members, with room for old copies
BUNDLE_SUFFIXES = (".tar.gz", ".tgz", ".json")


def bundles_in(directory: str) -> list[str]:
    """The bundles directly in ``directory``, by name: regular files only (a symbolic link, a FIFO or a
    subdirectory is passed over, never followed), at most ``MAX_BUNDLES``; each is then opened with
    ``open_bundle``'s own limits."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise BundleError(f"cannot list {directory}: {exc.strerror or exc}") from None
    found = [e.path for e in entries if e.name.endswith(BUNDLE_SUFFIXES) and e.is_file(follow_symlinks=False)]
    if not found:
        raise BundleError(f"{directory} holds no bundle (*.tar.gz, *.tgz or facts *.json regular files)")
    if len(found) > MAX_BUNDLES:
        raise BundleError(f"{directory} holds {len(found)} bundles, more than the {MAX_BUNDLES} analyzed together")
    return found
