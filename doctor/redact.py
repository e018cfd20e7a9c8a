"""Remove secrets before anything leaves the collector.

Every secret is replaced with a stable token (the same secret gives the same token
within one ``Redactor``), so a reader can still see that two places share a
password without learning it. The redaction summary says what kind of secret was
removed, how many times and where, never the secret itself.

Two layers work together:

* structure: keys whose name says "secret" (``password``, ``api_key``,
  ``PGPASSWORD``, ``--password`` on a command line, a ``{"key": ".../x_password",
  "value": ...}`` pair) have their values replaced, and those values are
  remembered;
* text: patterns (URLs with credentials, ``password=...`` in connection strings,
  ``"password": "..."`` in JSON, PEM private keys, bearer/basic tokens, JWTs,
  ``.pgpass`` lines, ``CREATE/ALTER ROLE ... PASSWORD '...'`` in a PostgreSQL log,
  ``ETCDCTL_USER=name:secret`` and ``--user name:secret``) plus every remembered
  secret, wherever it shows up again (a log line, a command line, a DCS value).

Some values are half secret: ``ETCDCTL_USER=name:password`` keeps the name. Some are
commands that hold a secret: ``ssl_passphrase_command = 'echo secret'`` is replaced
whole, and what ``echo``/``printf`` prints is remembered too.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import shlex
from collections import Counter
from collections.abc import Mapping
from typing import Any

import yaml

# Keys whose values are secrets wherever they appear in a config or a JSON document.
SECRET_KEY_RE = re.compile(
    r"(?:^|[_.\-/])(?:password|passwd|pass|pwd|passphrase|passphrase_command|secret|token|api_?key|private_?key"
    r"|credentials?"
    r"|keyfile_password|auth_?token|access_?key|secret_?key)$",
    re.IGNORECASE,
)
# Env names that hold secrets even though the key pattern above misses them.
SECRET_ENV_NAMES = {"PGPASSWORD", "PGPASSFILE_CONTENT", "ETCDCTL_PASSWORD", "PATRONI_ETCD3_PASSWORD",
                    "PATRONI_ETCD_PASSWORD", "PATRONI_RESTAPI_PASSWORD", "PATRONI_CTL_PASSWORD"}
# Command-line flags whose next argument (or ``=value``) is a secret.
_SECRET_FLAG_RE = re.compile(r"^--?(?:[\w-]*[-_])?(?:password|passwd|pass|pwd|secret|token|api-?key|passphrase)$",
                             re.IGNORECASE)
# ``--user name:password`` (etcdctl) carries a password after the colon.
_USER_FLAG_RE = re.compile(r"^--user$", re.IGNORECASE)
# Names whose value is ``name:password`` (etcdctl's environment form of --user): only the password is secret.
USER_PASSWORD_NAMES = {"etcdctl_user"}
# Settings whose value is a command that may print a secret (PostgreSQL's ssl_passphrase_command).
_COMMAND_KEY_RE = re.compile(r"passphrase_command$", re.IGNORECASE)
# Commands that print their arguments: what they print is the secret.
_PRINTING_COMMANDS = {"echo", "printf"}

# Inline forms inside free text ---------------------------------------------------------------
# scheme://user:secret@host  (user may be empty: redis://:secret@host)
_URL_CRED_RE = re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]*:)(?P<secret>[^@\s/'\"]+)(?P<post>@)",
                          re.IGNORECASE)
# password=x, PGPASSWORD=x, --password=x, "password": "x", password: 'a b', sslpassword = x
_KEY_WORDS = (r"(?:password|passwd|pwd|passphrase[_-]command|passphrase|secret|token|api[_-]?key|access[_-]?key"
              r"|secret[_-]?key)")
_KV_RE = re.compile(
    r"(?P<pre>(?<!REDACTED:)(?<![A-Za-z0-9])[\w.-]*" + _KEY_WORDS + r"['\"]?\s*(?:=|:)\s*)"
    r"(?:(?P<q>['\"])(?P<qsecret>(?:\\.|(?!(?P=q)).)*?)(?P=q)|(?P<secret>[^\s'\",;}&)\]]+))",
    re.IGNORECASE,
)
# HTTP auth headers and bare bearer tokens.
_AUTH_RE = re.compile(r"(?P<pre>(?<!REDACTED:)\b(?:Bearer|Basic|Token)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
# Word characters: a remembered short or wordy secret is replaced only where none touches it.
_WORD_CHARS = "A-Za-z0-9_"
# A secret made of letters and separators reads like words ("not-the-password", "correct horse").
_WORDY_RE = re.compile(r"[A-Za-z][A-Za-z _.'-]*")
# Below this length a secret may well occur inside other words; it is matched as a whole word.
LONG_SECRET = 16
# Values that stand for a secret in prose or templates, never a secret themselves: <password>, {{ pw }}, $PW.
_STANDIN_RE = re.compile(r"^(?:<[^<>]*>|\{\{.*|\$\{?\w+\}?|\.\.\.|x{3,}|\*{3,})$", re.IGNORECASE)
# JSON Web Tokens, cloud and forge access keys.
_TOKEN_RES = (
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")),
    ("aws-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("forge-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20,})\b")),
)
_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----.*?-----END (?P=kind)-----", re.DOTALL
)
# A key cut short (a truncated log or file): everything from BEGIN to the end of the text.
_PRIVATE_KEY_TAIL_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*\Z", re.DOTALL)
# .pgpass lines: host:port:db:user:password, fields may contain ``\:`` and ``\\``.
_PGPASS_FIELD = r"(?:\\.|[^:\\\n])*"
_PGPASS_RE = re.compile(
    r"^(?P<pre>(?![ \t]*#)" + _PGPASS_FIELD + ":" + _PGPASS_FIELD + ":" + _PGPASS_FIELD + ":" + _PGPASS_FIELD
    + r":)(?P<secret>[^\n]+)$",
    re.MULTILINE,
)
# A .pgpass entry quoted inside other text (a log line): five fields, a numeric or ``*`` port, standing
# alone between spaces or quotes. A colon cannot end it (an IPv6 address is not an entry). The match
# starts at the colon before the port, which the regex engine finds fast; the host is read backwards.
_PGPASS_TEXT_FIELD = r"(?:\\.|[^:\s\\'\"])+"
_PGPASS_TAIL_RE = re.compile(
    r":(?:\d{1,5}|\*):" + _PGPASS_TEXT_FIELD + ":" + _PGPASS_TEXT_FIELD + r":(?P<secret>" + _PGPASS_TEXT_FIELD
    + r")(?![^\s'\")\],;])"
)
# What may stand before an entry's host (or the text's start), and what ends a host read backwards.
_ENTRY_OPENERS = frozenset(" \t\r\n'\"([=,")
_HOST_STOPS = _ENTRY_OPENERS | {":"}


def quoted_pgpass_entries(text: str) -> list[re.Match[str]]:
    """``host:port:db:user:password`` entries standing alone in free text (the match covers port to password)."""
    found: list[re.Match[str]] = []
    pos = 0
    while m := _PGPASS_TAIL_RE.search(text, pos):
        i = m.start()
        while i > 0 and text[i - 1] not in _HOST_STOPS:
            i -= 1
        if i < m.start() and (i == 0 or text[i - 1] in _ENTRY_OPENERS):
            found.append(m)
            pos = m.end()
        else:
            pos = m.start() + 1
    return found


# A role's password in SQL (a PostgreSQL log with log_statement, or an error's STATEMENT line):
# CREATE|ALTER ROLE|USER|GROUP ... [ENCRYPTED] PASSWORD 'x' | E'x' | $$x$$.
_SQL_PASSWORD_RE = re.compile(
    r"(?P<pre>\b(?:CREATE|ALTER)\s+(?:ROLE|USER|GROUP)\b[^;]{0,500}?\bPASSWORD\s+)"
    r"(?:E'(?P<esecret>(?:''|\\.|[^'\\])*)'|'(?P<secret>(?:''|[^'])*)'|(?P<dollar>\$\w*\$)(?P<dsecret>.*?)(?P=dollar))",
    re.IGNORECASE | re.DOTALL,
)
# ssl_passphrase_command = 'echo x' (postgresql.conf, JSON, YAML): the whole command, to the end of the line.
_COMMAND_SETTING_RE = re.compile(
    r"(?P<pre>(?<![A-Za-z0-9])[\w.-]*passphrase[_-]command['\"]?\s*[=:]\s*)"
    r"(?:(?P<q>['\"])(?P<qsecret>(?:\\.|(?!(?P=q)).)*?)(?P=q)|(?P<secret>[^\s'\"#,}][^\n#,}]*?)(?=\s*(?:$|[#,}])))",
    re.IGNORECASE | re.MULTILINE,
)
# ETCDCTL_USER=name:secret and --user name:secret (etcdctl, curl) inside text.
_USER_PASSWORD_RE = re.compile(
    r"(?P<pre>(?:\bETCDCTL_USER['\"]?\s*[=:]\s*|(?<![\w-])--user(?:=|\s+))['\"]?[^:\s'\"]+:)(?P<secret>[^\s'\"]+)",
    re.IGNORECASE,
)
# ``key: value`` lines of YAML where the key names a secret, also when commented out (``# password: old``).
_YAML_SECRET_LINE_RE = re.compile(
    r"^(?P<pre>\s*(?P<hash>#[# \t]*)?-?\s*['\"]?(?P<key>[\w.-]+)['\"]?\s*:\s+)(?P<value>\S.*?)\s*$", re.MULTILINE)

TOKEN_PREFIX = "[REDACTED:"
_PLACEHOLDERS = {"null", "none", "true", "false", "~", "''", '""', "***", "<redacted>"}


# Names that look like secrets but are identifiers worth keeping (etcd's cluster token tells members apart).
NOT_SECRET_NAMES = {"initial-cluster-token", "initial_cluster_token", "--initial-cluster-token",
                    "etcd_initial_cluster_token", "password_encryption",
                    # the shell's working directories: "pwd" here is a path, not a password
                    "pwd", "oldpwd"}


def is_secret_key(key: Any) -> bool:
    """Whether a mapping key, env name or DCS key path names a secret."""
    if not isinstance(key, str) or key.lower() in NOT_SECRET_NAMES:
        return False
    return bool(SECRET_KEY_RE.search(key)) or key.upper() in SECRET_ENV_NAMES


def _kind_of(key: str) -> str:
    low = key.lower()
    if "pass" in low or "pwd" in low:
        return "password"
    if "token" in low:
        return "token"
    if "key" in low:
        return "key"
    return "secret"


@functools.lru_cache(maxsize=1024)
def secret_pattern(secret: str) -> re.Pattern[str]:
    """How a remembered secret is found again in text.

    A long secret with digits or symbols is found anywhere (it cannot be part of a word by chance);
    a short or wordy one ("postgres", "not-the-password") only where no letter, digit or ``_``
    touches it, so that "postgresql" or "authentication" are never cut into.
    """
    return re.compile(_bounded(re.escape(secret), secret))


@functools.lru_cache(maxsize=1024)
def secret_bytes_pattern(secret: str) -> re.Pattern[bytes]:
    """``secret_pattern`` for raw bytes (the last gate over a finished file)."""
    return re.compile(_bounded(re.escape(secret), secret).encode("utf-8", "replace"))


def _bounded(body: str, secret: str) -> str:
    if len(secret) >= LONG_SECRET and not _WORDY_RE.fullmatch(secret):
        return body
    if re.match(r"\w", secret[:1], re.ASCII):
        body = f"(?<![{_WORD_CHARS}])" + body
    if re.match(r"\w", secret[-1:], re.ASCII):
        body += f"(?![{_WORD_CHARS}])"
    return body


def _unquote_yaml(value: str) -> str:
    """A quoted YAML scalar as the program reading it sees it (``'it''s'`` is ``it's``)."""
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        loaded = None
    return loaded if isinstance(loaded, str) else value[1:-1]


def looks_like_credential(word: str) -> bool:
    """Whether the word after Bearer/Basic/Token is a credential (digits, base64 signs, mixed case), not prose."""
    return (any(c.isdigit() for c in word) or any(c in "+/=" for c in word)
            or (any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)))


def _assignment_context(m: re.Match[str]) -> bool:
    """Whether an unquoted ``key: value`` / ``key=value`` match is a setting rather than prose.

    ``=`` always assigns (connection strings, env, flags). ``key: value`` with nothing quoted is a
    setting only where a YAML or flow mapping puts it: at the start of a line (after indentation or
    ``-``), after ``{`` or ``,``, or when the key itself is quoted (JSON, a Python dict).
    """
    pre = m.group("pre")
    if "=" in pre:
        return True
    start = m.start()
    text = m.string
    if start > 0 and text[start - 1] in "'\"":
        return True
    line_start = text.rfind("\n", 0, start) + 1
    before = text[line_start:start]
    return not before.strip(" \t-") or before.rstrip().endswith(("{", ","))


def _sql_statements(text: str, upper: str) -> list[re.Match[str]]:
    """Role passwords in SQL, tried only where CREATE or ALTER stands (a scan by regex costs a second per 10 MB)."""
    if len(upper) != len(text):  # upper-casing changed the length (ß -> SS): positions would not line up
        return list(_SQL_PASSWORD_RE.finditer(text))
    found: list[re.Match[str]] = []
    end = 0
    for word in ("CREATE", "ALTER"):
        pos = upper.find(word)
        while pos >= 0:
            m = _SQL_PASSWORD_RE.match(text, pos)
            if m:
                found.append(m)
            pos = upper.find(word, pos + len(word))
    found.sort(key=lambda m: m.start())
    kept: list[re.Match[str]] = []
    for m in found:  # an ALTER inside a matched CREATE statement's span is the same secret
        if m.start() >= end:
            kept.append(m)
            end = m.end()
    return kept


def _replace_matches(text: str, matches: list[re.Match[str]], fn: Any, group: int | str = 0) -> str:
    """``text`` with each match's ``group`` replaced by ``fn(match)`` (matches in order, not overlapping)."""
    if not matches:
        return text
    parts: list[str] = []
    last = 0
    for m in matches:
        parts += [text[last:m.start(group)], fn(m)]
        last = m.end(group)
    return "".join(parts) + text[last:]


class Redactor:
    """Replaces secrets with stable tokens and keeps a summary of what it removed."""

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = salt if salt is not None else os.urandom(16)
        self._known: dict[str, str] = {}
        self.summary: Counter[tuple[str, str]] = Counter()
        # Texts ``text`` gave back unchanged, learning and counting nothing, while _known had this many
        # entries (it only grows): facts repeat the same strings (a process's argv under each socket it
        # listens on), and each pass over one costs a dozen regexes.
        self._clean: set[str] = set()
        self._clean_for = 0
        self._by_length: list[tuple[str, str]] = []  # _known, longest secret first (for _clean_for entries)
        self._counted = 0  # redactions counted in summary, all kinds

    # -- tokens -------------------------------------------------------------------------
    def token(self, secret: str, kind: str = "password") -> str:
        if secret.startswith(TOKEN_PREFIX):
            return secret
        if secret not in self._known:
            digest = hmac.new(self._salt, secret.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:8]
            self._known[secret] = f"{TOKEN_PREFIX}{kind}:{digest}]"
        return self._known[secret]

    def remember(self, secret: Any, kind: str = "password") -> None:
        """Register a secret known from elsewhere so that free text gets it replaced too."""
        if isinstance(secret, (int, float)) and not isinstance(secret, bool):
            secret = str(secret)
        if isinstance(secret, str) and len(secret) >= 3 and secret.lower() not in _PLACEHOLDERS \
                and not secret.startswith(TOKEN_PREFIX) and not _STANDIN_RE.match(secret):
            self.token(secret, kind)
            # The same secret as it looks inside JSON or a URL, so a copy in either form is caught.
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                self._known.setdefault(escaped, self._known[secret])

    def known_secrets(self) -> list[str]:
        """The secrets seen so far (for a last check over finished files; never written out)."""
        return list(self._known)

    def _count(self, kind: str, where: str) -> None:
        self.summary[(kind, where)] += 1
        self._counted += 1

    def _secret_value(self, value: Any, kind: str, where: str) -> Any:
        if value in ("", None) or isinstance(value, bool):
            return value
        if isinstance(value, str) and (value.startswith(TOKEN_PREFIX) or value.lower() in _PLACEHOLDERS):
            return value
        self._count(kind, where)
        self.remember(str(value), kind)
        return self.token(str(value), kind)

    def _user_password(self, value: str, where: str) -> str:
        """``name:password`` (ETCDCTL_USER) with only the password replaced; a bare name stays."""
        name, sep, pw = value.partition(":")
        if not sep or not pw:
            return value
        return f"{name}:{self._secret_value(pw, 'password', where)}"

    def remember_printed(self, command: str) -> None:
        """Remember what a secret command prints: ``echo s3cret`` as a passphrase command holds ``s3cret``.

        Follows ``sh -c '...'`` one level down; options (``-n``) and printf formats (``%s\\n``) are not secrets.
        """
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        printing = False
        printed: list[str] = []
        for i, word in enumerate(words):
            if word in (";", "|", "||", "&&"):
                printing = False
            elif os.path.basename(word) in _PRINTING_COMMANDS:
                printing = True
            elif word == "-c" and i + 1 < len(words) and i > 0:
                self.remember_printed(words[i + 1])
            elif printing and not word.startswith("-") and "%" not in word:
                printed.append(word.rstrip(";"))
        for word in printed:
            self.remember(word)
        if len(printed) > 1:
            self.remember(" ".join(printed))

    def _setting(self, key: str, value: Any, where: str) -> Any:
        """The value of a secret-named setting or variable, redacted as its name says."""
        if key.lower() in USER_PASSWORD_NAMES:
            return self._user_password(value, where) if isinstance(value, str) else value
        if isinstance(value, str) and _COMMAND_KEY_RE.search(key):
            self.remember_printed(value)
        return self._secret_value(value, _kind_of(key), where)

    @staticmethod
    def _names_secret(key: Any) -> bool:
        """A key whose value is secret, wholly or (``ETCDCTL_USER``) in part."""
        return isinstance(key, str) and (is_secret_key(key) or key.lower() in USER_PASSWORD_NAMES
                                         or key.upper().endswith(("_PASSWORD", "_TOKEN", "_SECRET")))

    def _secret_tree(self, value: Any, kind: str, where: str) -> Any:
        """A list or mapping under a secret's key: every value in it is that secret (keys are kept)."""
        if isinstance(value, dict):
            return {k: self._secret_tree(v, kind, where) for k, v in value.items()}
        if isinstance(value, list):
            return [self._secret_tree(v, kind, where) for v in value]
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return self._secret_value(value, kind, where)
        return value

    # -- structures ---------------------------------------------------------------------
    def data(self, value: Any, where: str = "facts") -> Any:
        """Redact a JSON-like structure: secret keys by name, argv lists by flag, free text by pattern."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            pair_key = value.get("key") if isinstance(value.get("key"), str) else value.get("name")
            secret_pair = is_secret_key(pair_key) and "value" in value
            for key, item in value.items():
                if self._names_secret(key) and isinstance(item, (str, int, float)) and not isinstance(item, bool):
                    out[key] = self._setting(key, item, where)
                elif self._names_secret(key) and isinstance(item, (list, dict)):
                    out[key] = self._secret_tree(item, _kind_of(key), where)  # a password written as a list
                elif secret_pair and key == "value" and isinstance(item, (str, int, float)):
                    out[key] = self._secret_value(item, _kind_of(str(pair_key)), where)
                else:
                    out[key] = self.data(item, where)
            return out
        if isinstance(value, (list, tuple)):
            items = list(value)
            if items and all(isinstance(i, str) for i in items):
                items = self.argv(items, where)
            return [self.data(item, where) for item in items]
        if isinstance(value, str):
            return self.text(value, where)
        return value

    def argv(self, args: list[str], where: str = "cmdline") -> list[str]:
        """Redact a command line: ``--password X``, ``--password=X``, ``--user name:X``, ``PGPASSWORD=X``."""
        out = list(args)
        for i, arg in enumerate(out):
            flag = out[i - 1] if i > 0 else ""
            if i > 0 and _SECRET_FLAG_RE.match(flag) and flag.lower() not in NOT_SECRET_NAMES \
                    and not arg.startswith("-"):
                out[i] = self._secret_value(arg, _kind_of(flag), where)
            elif i > 0 and _USER_FLAG_RE.match(out[i - 1]) and ":" in arg:
                name, _, pw = arg.partition(":")
                out[i] = f"{name}:{self._secret_value(pw, 'password', where)}"
            elif arg.startswith("--user=") and ":" in arg[7:]:
                name, _, pw = arg[7:].partition(":")
                out[i] = f"--user={name}:{self._secret_value(pw, 'password', where)}"
        return [self.text(a, where) for a in out]

    def environ(self, env: Mapping[str, str], where: str = "environment") -> dict[str, str]:
        """Redact an environment: values of secret-named variables become tokens (and are remembered)."""
        out: dict[str, str] = {}
        for name, value in env.items():
            if self._names_secret(name):
                out[name] = self._setting(name, value, where)
        for name, value in env.items():
            if name not in out:
                out[name] = self.text(value, where)
        return out

    def remember_environ(self, env: Mapping[str, str]) -> None:
        """Learn the secrets of an environment (e.g. PGPASSWORD) without keeping the rest."""
        for name, value in env.items():
            if not self._names_secret(name):
                continue
            if name.lower() in USER_PASSWORD_NAMES:
                self.remember(value.partition(":")[2])
            else:
                if _COMMAND_KEY_RE.search(name):
                    self.remember_printed(value)
                self.remember(value, _kind_of(name))

    # -- text ---------------------------------------------------------------------------
    def text(self, text: str, where: str = "text") -> str:
        """Redact secrets inside free text (logs, command lines, config files)."""
        if not text:
            return text
        known = len(self._known)
        if known != self._clean_for:
            self._clean.clear()
            self._clean_for = known
            self._by_length = sorted(self._known.items(), key=lambda kv: -len(kv[0]))
        if text in self._clean:
            return text
        counted = self._counted
        out = self._redact_text(text, where)
        if out == text and self._counted == counted and len(self._known) == known and len(text) <= 4096:
            if len(self._clean) >= 65536:  # bounded, whatever a bundle or a log brings
                self._clean.clear()
            self._clean.add(text)
        return out

    def _redact_text(self, text: str, where: str) -> str:

        def _private_key(m: re.Match[str]) -> str:
            self._count("private-key", where)
            return self.token(m.group(0), "private-key")

        def _url(m: re.Match[str]) -> str:
            if m.group("secret").startswith(TOKEN_PREFIX):
                return m.group(0)
            self._count("url-password", where)
            self.remember(m.group("secret"))
            return m.group("pre") + self.token(m.group("secret")) + m.group("post")

        def _kv(m: re.Match[str]) -> str:
            quoted = m.group("q") is not None
            secret = m.group("qsecret") if quoted else m.group("secret")
            if not secret or secret.startswith(TOKEN_PREFIX) or secret.lower() in _PLACEHOLDERS \
                    or (not quoted and secret.startswith("[REDACTED")) or _STANDIN_RE.match(secret):
                return m.group(0)
            if not quoted and not _assignment_context(m):
                return m.group(0)  # prose ("wrong password: the password for ..."), not a setting
            self._count("password", where)
            self.remember(secret)
            q = m.group("q") or ""
            return m.group("pre") + q + self.token(secret) + q

        def _sql(m: re.Match[str]) -> str:
            if m.group("dollar"):
                secret, quote = m.group("dsecret"), (m.group("dollar"), m.group("dollar"))
            elif m.group("esecret") is not None:
                secret = re.sub(r"\\(.)", r"\1", m.group("esecret").replace("''", "'"))
                quote = ("E'", "'")
            else:
                secret, quote = m.group("secret").replace("''", "'"), ("'", "'")
            if not secret or secret.startswith(TOKEN_PREFIX):
                return m.group(0)
            self._count("sql-password", where)
            self.remember(secret)
            return m.group("pre") + quote[0] + self.token(secret) + quote[1]

        def _command(m: re.Match[str]) -> str:
            quoted = m.group("q") is not None
            command = m.group("qsecret") if quoted else m.group("secret")
            if not command or command.startswith(TOKEN_PREFIX) or command.lower() in _PLACEHOLDERS:
                return m.group(0)
            self._count("passphrase-command", where)
            self.remember_printed(command)
            self.remember(command)
            q = m.group("q") or ""
            return m.group("pre") + q + self.token(command) + q

        def _user_pw(m: re.Match[str]) -> str:
            secret = m.group("secret")
            if secret.startswith(("[REDACTED", "$")) or _STANDIN_RE.match(secret):
                return m.group(0)
            self._count("password", where)
            self.remember(secret)
            return m.group("pre") + self.token(secret)

        def _pgpass_entry(m: re.Match[str]) -> str:
            field = m.group("secret")
            secret = field.replace("\\:", ":").replace("\\\\", "\\")
            if secret.lower() in _PLACEHOLDERS or secret.lower() == "password" or _STANDIN_RE.match(secret) \
                    or secret.startswith("[REDACTED"):
                return field
            self._count("pgpass", where)
            self.remember(secret)
            return self.token(secret)

        def _auth(m: re.Match[str]) -> str:
            if not looks_like_credential(m.group("secret")):
                return m.group(0)  # "Basic authentication", "Token expired": words, not credentials
            self._count("token", where)
            self.remember(m.group("secret"), "token")
            return m.group("pre") + self.token(m.group("secret"), "token")

        if "PRIVATE KEY" in text:
            text = _PRIVATE_KEY_RE.sub(_private_key, text)
            text = _PRIVATE_KEY_TAIL_RE.sub(_private_key, text)
        if "://" in text:
            text = _URL_CRED_RE.sub(_url, text)
        # The rarer forms run only where their key words are (each regex costs a pass over a whole log).
        upper = text.upper()
        if "PASSWORD" in upper:
            text = _replace_matches(text, _sql_statements(text, upper), _sql)
        if "PASSPHRASE" in upper:
            text = _COMMAND_SETTING_RE.sub(_command, text)
        if "--USER" in upper or "ETCDCTL_USER" in upper:
            text = _USER_PASSWORD_RE.sub(_user_pw, text)
        text = _KV_RE.sub(_kv, text)
        text = _AUTH_RE.sub(_auth, text)
        text = _replace_matches(text, quoted_pgpass_entries(text), _pgpass_entry, "secret")
        for kind, rx in _TOKEN_RES:
            def _tok(m: re.Match[str], kind: str = kind) -> str:
                self._count(kind, where)
                return self.token(m.group(0), kind)
            text = rx.sub(_tok, text)
        by_length = self._by_length if len(self._known) == self._clean_for \
            else sorted(self._known.items(), key=lambda kv: -len(kv[0]))
        for secret, token in by_length:
            if secret in text:
                text, n = secret_pattern(secret).subn(lambda _m, t=token: t, text)
                if n:
                    self._count("known-secret", where)
        return text

    def yaml_text(self, text: str, where: str = "patroni.yml") -> str:
        """Redact a YAML file as text (keeps its comments and layout): secret keys' values, then free text."""
        def _line(m: re.Match[str]) -> str:
            key = m.group("key")
            if not self._names_secret(key):
                return m.group(0)
            value = m.group("value")
            if value in ("|", ">", "|-", ">-") or value.startswith(("&", "*", "#")):
                return m.group(0)
            bare = value
            quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
            if quoted:
                bare = _unquote_yaml(value)
            elif " #" in value:  # an unquoted value ends where a comment starts
                bare = value.split(" #", 1)[0].rstrip()
            if not bare or bare.lower() in _PLACEHOLDERS or bare.startswith(TOKEN_PREFIX):
                return m.group(0)
            # A commented-out setting (an old password) is a secret too; a comment that talks is not.
            if m.group("hash") and (_STANDIN_RE.match(bare) or (not quoted and len(bare.split()) > 1
                                                               and not _COMMAND_KEY_RE.search(key))):
                return m.group(0)
            redacted = self._setting(key, bare, where)
            if redacted == bare:
                return m.group(0)
            if key.lower() not in USER_PASSWORD_NAMES:
                self.remember(bare)
            return m.group("pre") + f"'{redacted}'"
        text = self.text(_YAML_SECRET_LINE_RE.sub(_line, text), where)
        # A token left bare in a flow mapping ({password: [REDACTED:...]}) would read as a list: quote it.
        return re.sub(r"(?<=[:,{\s])(?<!['\"])(\[REDACTED:[\w-]+:[0-9a-f]+\])(?!['\"])", r"'\1'", text)

    def pgpass(self, text: str, where: str = ".pgpass") -> str:
        """Redact a .pgpass file: the fifth field of every entry."""
        def _line(m: re.Match[str]) -> str:
            secret = m.group("secret").replace("\\:", ":").replace("\\\\", "\\")
            self._count("pgpass", where)
            self.remember(secret)
            return m.group("pre") + self.token(secret)
        return self.text(_PGPASS_RE.sub(_line, text), where)

    def learn_pgpass(self, text: str) -> None:
        """Remember the passwords of a .pgpass file so that they are caught wherever they show up."""
        for m in _PGPASS_RE.finditer(text):
            self.remember(m.group("secret").replace("\\:", ":").replace("\\\\", "\\"))

    def leaks(self, blob: bytes) -> int:
        """How many known secrets still occur in ``blob`` (a last check over a finished file)."""
        return sum(1 for s in self._known if len(s) >= 3 and s.encode("utf-8", "replace") in blob
                   and secret_bytes_pattern(s).search(blob))

    def cut_out(self, blob: bytes, where: str) -> bytes:
        """Replace every known secret left in raw bytes (what text redaction could not place)."""
        for secret in sorted(self._known, key=len, reverse=True):
            blob, n = secret_bytes_pattern(secret).subn(
                lambda _m, t=self.token(secret).encode("utf-8"): t, blob)
            if n:
                self._count("known-secret", where)
        return blob

    def summary_list(self) -> list[dict[str, Any]]:
        return [{"kind": kind, "file": where, "count": n} for (kind, where), n in sorted(self.summary.items())]


def collect_secrets(config: Any) -> list[str]:
    """Every secret value in a (Patroni) config structure, for free-text redaction."""
    found: list[str] = []
    if isinstance(config, dict):
        for key, item in config.items():
            if is_secret_key(key) and isinstance(item, (str, int)) and not isinstance(item, bool) and str(item):
                found.append(str(item))
            elif is_secret_key(key) and isinstance(item, (list, dict)):
                found.extend(_leaves(item))  # a password written as a list is still a password
            else:
                found.extend(collect_secrets(item))
    elif isinstance(config, list):
        for item in config:
            found.extend(collect_secrets(item))
    return found



def _leaves(value: Any) -> list[str]:
    """Every scalar in a list or mapping, as text (booleans and empty values are no secrets)."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
        return [str(value)]
    return []
