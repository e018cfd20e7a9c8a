"""Starting and stopping the lab's daemons by pid file.

Rules: daemons are started detached (own session, stdin from /dev/null, output appended to a log
file) and their pid is written to a pid file.  Liveness is judged by ``/proc/PID/cmdline`` (a stopped
daemon may linger as a zombie, which ``kill -0`` still reports alive) and must contain a string that
identifies *our* process (its config path or data dir), so a reused pid is never taken for ours.
Nothing is ever stopped by name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

from .layout import OS_USER, LabError


def cmdline(pid: int) -> str:
    """The process's command line joined by spaces; "" when gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def alive(pid: int | None, match: str | None = None) -> bool:
    if not pid or pid <= 0:
        return False
    _reap(pid)
    line = cmdline(pid)
    if not line:
        return False
    return match is None or match in line


def read_pidfile(path: Path) -> int | None:
    try:
        first = path.read_text().split()[0]
        return int(first)
    except (FileNotFoundError, IndexError, ValueError, PermissionError):
        return None


def pid_from_file(path: Path, match: str) -> int | None:
    """The pid in ``path`` if that process is alive and matches, else None."""
    pid = read_pidfile(path)
    return pid if alive(pid, match) else None


def postmaster_pid(data_dir: Path) -> int | None:
    """Pid of a live postmaster on ``data_dir`` according to its postmaster.pid."""
    pidfile = data_dir / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, IndexError, ValueError, PermissionError, NotADirectoryError):
        return None
    line = cmdline(pid)
    if line and "postgres" in line and str(data_dir) in line:
        return pid
    # started by pg_ctl with -D: cmdline holds the data dir too; anything else is not ours
    return None


def postgres_env() -> dict:
    pw = pwd.getpwnam(OS_USER)
    return {
        "HOME": pw.pw_dir,
        "USER": OS_USER,
        "LOGNAME": OS_USER,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }


def spawn(argv: list[str], log_path: Path, pid_path: Path | None, *, as_postgres: bool,
          cwd: Path | None = None, env: dict | None = None) -> int:
    """Start ``argv`` detached; return its pid (also written to ``pid_path``)."""
    kwargs: dict = {}
    if as_postgres and os.geteuid() == 0:
        pw = pwd.getpwnam(OS_USER)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env = {**postgres_env(), **(env or {})}
    elif env is None:
        env = dict(os.environ)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out, open(os.devnull, "rb") as devnull:
        try:
            proc = subprocess.Popen(argv, stdin=devnull, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=str(cwd) if cwd else None, env=env,
                                    start_new_session=True, close_fds=True, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            raise LabError(f"could not start {argv[0]}: {exc}") from None
    # The Popen object is dropped on purpose: the child is a daemon.  Python reaps it later
    # (or init does once we exit); liveness never relies on that.
    if pid_path is not None:
        pid_path.write_text(f"{proc.pid}\n")
    return proc.pid


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_pid(pid: int | None, match: str, *, sig: int = signal.SIGTERM, grace: float = 20.0) -> bool:
    """Stop one of our processes: ``sig``, wait up to ``grace`` s, then SIGKILL.

    Returns True if a live process was stopped."""
    if not alive(pid, match):
        return False
    assert pid is not None
    signal_pid(pid, sig)
    if wait_gone(pid, match, grace):
        return True
    signal_pid(pid, signal.SIGKILL)
    wait_gone(pid, match, 5.0)
    return True


def wait_gone(pid: int, match: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, match):
            return True
        time.sleep(0.1)
    return not alive(pid, match)


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (children first)."""
    import psutil
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def port_free(address: str, port: int) -> bool:
    """True if nobody listens on address:port (a bind test, TIME_WAIT does not count)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        s.close()


def port_accepts(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_holder(address: str, port: int) -> str:
    """A short description of who listens on address:port ("pid 123 (etcd)"), or "unknown"."""
    try:
        import psutil
        for c in psutil.net_connections(kind="tcp"):
            if c.status != psutil.CONN_LISTEN or not c.laddr:
                continue
            if c.laddr.port == port and c.laddr.ip in (address, "0.0.0.0", "::"):
                if c.pid:
                    try:
                        name = psutil.Process(c.pid).name()
                    except psutil.Error:
                        name = "?"
                    return f"pid {c.pid} ({name}) on {c.laddr.ip}:{port}"
                return f"a process on {c.laddr.ip}:{port}"
    except Exception:
        pass
    return "an unknown process"


def run(argv: list[str], *, as_postgres: bool = False, timeout: float = 60, check: bool = True,
        input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a short command and capture its output."""
    kwargs: dict = {}
    if as_postgres and os.geteuid() == 0:
        pw = pwd.getpwnam(OS_USER)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env = {**postgres_env(), **(env or {})}
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                            env=env, cwd="/", **kwargs)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} not found; run scripts/install-lab.sh") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv[:3])} ... did not finish within {timeout:.0f}s") from None
    if check and cp.returncode != 0:
        msg = (cp.stderr or cp.stdout).strip().splitlines()
        raise LabError(f"{' '.join(argv[:4])} failed (exit {cp.returncode}): "
                       f"{msg[-1] if msg else 'no output'}")
    return cp
