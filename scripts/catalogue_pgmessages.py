"""Find what PostgreSQL and its tools print: the msgids of Debian's .mo catalogues, or the format strings
in a build's binaries, kept to the domains a Patroni cluster's troubles live in.

Used by build-message-catalogue.py. The domain filter is stated here once (DOMAIN, EXCLUDE) and
documented in docs/message-catalogue.md.
"""

from __future__ import annotations

import gettext
import glob
import re
from pathlib import Path

# Start-up and shutdown, lock files and sockets, recovery and WAL, replication and slots, archiving,
# authentication and pg_hba.
DOMAIN = re.compile(r"""(?ix)
  lock\ file | postmaster | \.s\.PGSQL | Unix-domain\ socket | listen | could\ not\ bind
  | could\ not\ create\ (?:any\ )?(?:TCP/IP|Unix|listen|socket|semaphore|shared\ memory) | data\ directory
  | database\ system | startup | shut\ ?down | control\ file | pg_control | checkpoint | single-user
  | recovery | redo | \bWAL\b | timeline | restore | consistent | standby | promot | backup_label
  | tablespace_map | backup | record\ (?:length|with) | invalid\ record | resource\ manager | prev-link
  | magic\ number | contrecord | page\ address | XLOG | log\ file | segment | history\ file
  | replication | walsender | WAL\ sender | WAL\ receiver | walreceiver | primary\ (?:server|_conninfo|_slot_name)
  | the\ primary | from\ primary | master\ server | \bslot | synchronous | streaming | upstream
  | archiv
  | authenticat | password | pg_hba | pg_ident | \bSSL\b | certificate | SCRAM | \bmd5\b | peer | ident
  | connection\ (?:authorized|received) | too\ many\ connections | connection\ slots | role\ "
""")
# Within those words: GUC descriptions and category labels (never logged), usage text, and families
# outside a Patroni cluster's troubles (LDAP/RADIUS/GSSAPI/SSPI/BSD/PAM auth, logical replication workers,
# SQL-level errors about replica identity, roles' DDL, extensions).
EXCLUDE = re.compile(r"""(?ix)
  LDAP | RADIUS | GSSAPI | SSPI | Kerberos | \bBSD\b | \bPAM\b | pam_
  | logical\ (?:decoding|replication|streaming) | subscription | publication | apply\ worker | tablesync
  | ^(?-i:Sets|Writes|Waits|Encrypt|Enables|Shows|Specifies|Forces|Logs|Allows|Controls|Selects|Number\ of
      |Time\ to|Time\ between|Time\ spent|Maximum|Minimum|Set|Use|Whether|Location|Name\ of|Determines|Starts
      |Remove\ those|Detection\ of|Causes|Compresses|Collects|Emits|Emit|Continues|Generates|Terminate\ session
      |Reports|Lists|Sends|Specify|Prohibits|Size\ of|Amount\ of|Prefetch|Buffer|Add|Identifies|Defines|Limit
      |Launches|Includes|Recycles|Look\ ahead|Chooses|Command\ to|Mode\ of|Start\ a\ subprocess|Full-page
      |When\ a\ password|Write\ a\ message|The\ server\ will\ use|A\ page\ write|Automatic|Can\ be\ specified
      |An\ empty\ string|This\ is\ used\ only|Unix-domain\ sockets\ use)\b
  | ^(?-i:[A-Z][\w -]+\ /\ ) | ^\s | ^\\n | ^(?-i:Replication|SSL\ on|SSL\ off|SSL\ encryption|reserved|unreserved)
  | ^(?-i:[A-Z][a-z]+\ and\ [A-Z][a-z]+)$ | ^Connections\ and | ^Write-Ahead | EXPLAIN | extension | identity | reserved\ (?:roles|prefix)
  | rotation | GSS\ \( | SSL\ enabled\ \( | WSAStartup | Compile\ with | Custom\ resource\ manager
  | pg_stop_backup\( | pg_backup_start\(\) | replication\ origin | publisher | relation | constraint | sequence
  | record\ types | identifier | primary\ key | two-phase | background\ worker | REPLICA\ IDENTITY | replica\ identity
  | cannot\ be\ executed\ during\ recovery | wraparound | MultiXact | BRIN | GIN\ pending | adminpack
  | operator\ for\ type | function\ for\ type | record\ data\ type | streaming\ transaction | output\ plugin
  | snapbuild | role\ "%s"\ (?:already|cannot|could\ not|is\ (?:a|already|not\ a))| must\ have\ admin | must\ be\ member
  | INSERT | column | parameter\ \$ | OIDs\ less | tablespace\ location | prefix\ "pg_" | names\ starting\ with
  | fastpath | PREPARE | serializable | temporary\ tables | CREATE\ USER | UNENCRYPTED | ALTER\ USER
  | rename | statistics\ collector | signal\ listener | worker\ process | dynamic\ shared\ memory
""")


# For the tools every message counts but their --help text and bug-report lines.
TOOL_EXCLUDE = re.compile(r"^(?:\s|\\n|Usage|Options|Report bugs|%s home page|General options|Connection options|"
                          r"Options controlling|Read the description|\n)|--help|--version")


def mo_msgids(domain: str, locale_root: str = "/usr/share/locale") -> set[str]:
    """Every msgid of ``domain`` in any language's .mo file (a .mo holds only translated entries, so the
    union over languages is the most complete English set). Plural entries give their singular msgid."""
    ids: set[str] = set()
    for path in sorted(glob.glob(f"{locale_root}/*/LC_MESSAGES/{domain}.mo")):
        with open(path, "rb") as fh:
            catalog = gettext.GNUTranslations(fh)._catalog  # the parsed entries; gettext has no public view
        for key in catalog:
            msgid = key[0] if isinstance(key, tuple) else key
            if msgid:
                ids.add(msgid.split("\x04")[-1])
    return ids


def in_domain(msgid: str) -> bool:
    return bool(DOMAIN.search(msgid)) and not EXCLUDE.search(msgid)


# Strings in a binary that are not messages: wait-event descriptions, SQL and replication commands the
# server sends or parses, statistics labels, internal redo-routine errors (elog, never translated).
BINARY_NOISE = re.compile(r"""(?x)
  ^Waiting\ | ^(?:SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|BEGIN|COPY|SHOW|SET|WITH|START_REPLICATION
  |CREATE_REPLICATION_SLOT|IDENTIFY_SYSTEM|TIMELINE_HISTORY|BASE_BACKUP|READ_REPLICATION_SLOT|UPLOAD_MANIFEST)\b
  | \ Data$ | ^\w+_redo:\  | ^\w+\(\):?\ | \ \.\.\.\ \( | annobin | ^plugin\ name: | \(PostgreSQL\)\ \d
  | ^[A-Z][A-Z ]+:\  | ^[\\(]
""")
# A binary also holds PostgreSQL's internal "cannot happen" errors (elog, never translated) and the names
# of its memory contexts and shared structures, which the domain words above catch by accident
# ("tuple table slot", "inconsistent", "DSM segment"). Dropped from the binaries' strings only.
INTERNAL = re.compile(r"""(?ix)
  tuple | \bDSM\b | dsa_ | \bdsm\ | worker\ slot | PlanState | SPGiST | \bgin | hash_xlog | spi_ | anycompatible
  | aggregate | locale | pm\ child\ slot | postmaster\ child\ slot | ProcSignal | sinval | ^out\ of\ .*\ slots$
  | yy | ^io\  | IO\ should | context$ | Ctl$ | \bindex | statistics | checkTargetlist | exprKind | MyProc
  | mark/restore | ^Reason\ code | ^Actual\ | ^Startup\ Cost | ^(?-i:[A-Z][a-z]+(?:\ [A-Z][a-z]+)+)$ | \bbtree | Btree
  | page\ vacuum | deadlock\ check | point\ values | PGC_POSTMASTER | death\ (?:monitoring|event) | RM_\w+_ID
  | XLogReadBuffer | WILL_INIT | generic\ xlog | block\ references | xl_heap | segment\ boundary | segment\ handle
  | already\ pinned | not\ pinned | attach\ the\ same\ segment | per-session | heap\ | relcache | syscache | relsync
  | binary\ heap | btvacinfo | before_shmem | pivot | subtransactions | OIDs\ during | TransactionIds | ^%s\{
  | WAL-Ranges | max\ resident | role\ "%s"\ has\ (?:already|not)\ been | privileges\ (?:as|granted) | may\ (?:drop|reassign|grant|revoke|alter|add|create\ a\ backup)
  | grantor | current\ user\ must | SET\ ROLE | pg_statistic | walsummar | WAL\ summar | incremental
""")
_PRINTF = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?[diouxXfgeEcspm]")
_LOWER = re.compile(r"[a-z]{3}")


def binary_strings(path: Path, min_len: int = 12) -> set[str]:
    """Printable strings of a binary that look like messages: words, a space, and for short ones a printf
    placeholder (what ``strings`` shows, filtered)."""
    data = path.read_bytes()
    out: set[str] = set()
    for raw in re.findall(rb"[\x20-\x7e\t\n]{%d,}" % min_len, data):
        text = raw.decode("ascii")
        if " " not in text or not _LOWER.search(text) or text.startswith(("/", "%s/", "GCC", "_")) \
                or BINARY_NOISE.search(text):
            continue
        out.add(text)
    return out
