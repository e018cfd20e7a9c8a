"""The one way tests run the pgdoctor command line: a subprocess calling doctor.cli.main under the program name
``pgdoctor``, as the installed command runs it.

A subprocess rather than typer's in-process CliRunner: main() maps failures to exit codes and one-line messages,
handles a closed pipe and reads stdin, and the tests must see exactly that, with no state left behind between
runs (registries, logging, rich's console). PYTHONPATH points at this checkout, the working directory is ``/``
unless a test needs another, and PATRONICTL_CONFIG_FILE of the machine running the tests is dropped."""

from __future__ import annotations

import json as _json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
_MAIN = "import sys; sys.argv[0] = 'pgdoctor'; from doctor.cli import main; main()"


@dataclass
class Result:
    """What a run gave: the exit code, its output (str, or bytes when the input was bytes), and stderr."""

    returncode: int
    stdout: Any
    stderr: Any

    @property
    def json(self) -> Any:
        """stdout parsed as JSON."""
        return _json.loads(self.stdout)


def run_cli(*args: str, input: str | bytes | None = None, stdin: IO | None = None, env: dict | None = None,
            cwd: str | Path = "/", timeout: float = 180, check: int | None = None, wrap: tuple[str, ...] = ()) -> Result:
    """Run ``pgdoctor ARGS``; with ``check``, assert that exit code (and show stderr when it differs).
    ``wrap``: a command that runs it, e.g. ``setpriv`` with fewer capabilities."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO))
    full_env.pop("PATRONICTL_CONFIG_FILE", None)
    full_env.update(env or {})
    cp = subprocess.run([*wrap, sys.executable, "-c", _MAIN, *args], input=input, stdin=stdin,
                        capture_output=True, text=not isinstance(input, bytes) and stdin is None,
                        env=full_env, cwd=str(cwd), timeout=timeout)
    if check is not None:
        assert cp.returncode == check, f"exit {cp.returncode}, expected {check}: {cp.stderr[-2000:]!r}"
    return Result(cp.returncode, cp.stdout, cp.stderr)
