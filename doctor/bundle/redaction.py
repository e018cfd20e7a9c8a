"""Redaction glue for bundles: teach one Redactor every secret first, then gate every file.

Secrets are learned before anything is collected (the config's passwords, the
environment's ``PGPASSWORD``, ``ETCDCTL_USER`` and ``PATRONI_*_PASSWORD``, the entries of
every ``.pgpass`` file, even one the bundle will not carry), so
that a log line or a process's command line that repeats one is caught. The last
gate looks for every known secret in each finished file, byte for byte, in its plain
and JSON-escaped forms, and redacts again if one is still there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from doctor.bundle import pgpass
from doctor.collect.config import apply_env_overrides, parse_config
from doctor.redact import Redactor, collect_secrets


def prime(redactor: Redactor, config_text: str | None, env: Mapping[str, str],
          pg_user: str = "postgres") -> dict[str, Any] | None:
    """Teach the redactor every secret known before collecting; return the parsed config (with env overrides).

    Learning counts nothing: the summary is about what the files hold, which is counted as they are written.
    """
    before = redactor.summary.copy()
    redactor.remember_environ(env)
    config = None
    if config_text is not None:
        config, _ = parse_config(config_text)
        if config is not None:
            config = copy.deepcopy(config)
            apply_env_overrides(config, dict(env))
            for secret in collect_secrets(config):
                redactor.remember(secret)
        # A config that does not parse still has its secret lines: learn them from the text.
        redactor.yaml_text(config_text, "patroni.yml")
    for candidate in pgpass.candidates(config, env, pg_user):
        text = pgpass.learnable(candidate.path)
        if text:
            redactor.learn_pgpass(text)
    redactor.summary = before
    return config


def gate(redactor: Redactor, name: str, blob: bytes) -> bytes:
    """The last check of a finished file: redact again any known secret still in it."""
    if not redactor.leaks(blob):
        return blob
    text = blob.decode("utf-8", "replace")
    text = redactor.text(text, name)
    out = text.encode("utf-8")
    if redactor.leaks(out):  # a secret that redaction by text cannot place: cut it out of the bytes
        out = redactor.cut_out(out, name)
    return out

