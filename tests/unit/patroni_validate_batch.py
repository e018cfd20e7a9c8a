"""Patroni's own verdict on many config files in one process: what ``patroni --validate-config
--ignore-listen-port FILE`` decides, without starting one Python per file.

``patroni --validate-config`` does exactly this: ``populate_validate_params(ignore_listen_port=True)``,
then ``Config(FILE, validator=schema)``; a ``ConfigParseError`` is printed and exits 1, any other
exception is a traceback and exits 1, nothing at all exits 0. This script repeats those two calls
for every path it is given and prints one JSON object per path.

Run it with the Python of a venv that has Patroni installed (it imports nothing of pgdoctor):

    /opt/pgdoctor-lab/venv/bin/python patroni_validate_batch.py < paths.json > verdicts.json

Input: a JSON list of paths. Output: a JSON list of {"path", "valid", "reason", "kind"}, where kind
is "ok", "invalid" (Patroni's validator objected) or "crash" (another exception, i.e. Patroni's
traceback), and reason is Patroni's message.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Any

PER_FILE_SECONDS = 10  # an alias bomb makes Patroni's validator walk forever; it is an error then


def _timeout(_sig: int, _frame: Any) -> None:
    raise TimeoutError(f"Patroni's validator did not finish within {PER_FILE_SECONDS} s")


def verdict(path: str) -> dict[str, Any]:
    from patroni.config import Config, ConfigParseError
    from patroni.validator import populate_validate_params, schema

    populate_validate_params(ignore_listen_port=True)
    signal.alarm(PER_FILE_SECONDS)
    try:
        Config(path, validator=schema)
    except ConfigParseError as exc:
        return {"path": path, "valid": False, "kind": "invalid", "reason": str(exc.value)}
    except BaseException as exc:
        return {"path": path, "valid": False, "kind": "crash", "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        signal.alarm(0)
    return {"path": path, "valid": True, "kind": "ok", "reason": ""}


def main() -> None:
    logging.disable(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _timeout)
    paths = json.load(sys.stdin)
    json.dump([verdict(p) for p in paths], sys.stdout)


if __name__ == "__main__":
    main()
