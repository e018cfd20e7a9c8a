"""A FIFO, a device or a socket given where pgdoctor expects a file: one line, exit 3, at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "patroni.yml"


def _pgdoctor(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PATRONICTL_CONFIG_FILE", None)
    # A timeout, not a hang: reading a FIFO that nobody writes to would block forever.
    return subprocess.run([sys.executable, "-m", "doctor.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd="/")


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("args, needle", [
    (["run", "-c", "{fifo}"], "config {fifo} is a named pipe (FIFO), not a regular file"),
    (["run", "-c", "/dev/zero"], "config /dev/zero is a character device, not a regular file"),
    (["analyze", "{fifo}"], "bundle {fifo} is a named pipe (FIFO)"),
    (["analyze", "/dev/null"], "bundle /dev/null is a character device"),
    (["bundle", "-c", str(EXAMPLE), "--log-file", "{fifo}", "-o", "{tmp}"], "--log-file {fifo} is a named pipe (FIFO)"),
])
def test_special_files_are_refused_in_one_line(fifo: str, tmp_path: Path, args: list[str], needle: str) -> None:
    out = _pgdoctor(*[a.format(fifo=fifo, tmp=tmp_path) for a in args])
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 3, out.stderr
    assert len(lines) == 1 and needle.format(fifo=fifo) in lines[0], out.stderr
    assert not list(tmp_path.glob("pgdoctor-bundle-*")), "a bundle was written"
