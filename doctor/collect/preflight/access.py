"""Preflight, access: may the PostgreSQL OS user read the config through every directory above it?

Computed from the mode bits and group membership of each path component, as the kernel
would (no setuid, no ACLs), so it works without switching user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from pathlib import Path
from typing import Any

from doctor.errors import error_data


def config_access(path: str, user: str) -> dict[str, Any]:
    """Whether ``user`` can read the config at ``path``, with the config's own mode."""
    out: dict[str, Any] = {"path": path, **path_access(path, user, os.R_OK)}
    with contextlib.suppress(OSError):
        out["mode"] = f"0{stat.S_IMODE(os.stat(path).st_mode):o}"
    return out


def path_access(path: str, user: str, want: int) -> dict[str, Any]:
    """The stat of ``path`` and every parent, and whether ``user`` gets ``want`` through them.

    Computed from mode bits and group membership (no setuid, no ACLs), as the kernel would.
    """
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return {"user": user, "error": {"kind": "no-user", "message": f"OS user {user} does not exist"}}
    gids = sorted(set(os.getgrouplist(user, pw.pw_gid)))
    chain: list[dict[str, Any]] = []
    p = Path(os.path.abspath(path))
    for part in [*reversed(p.parents), p]:
        entry: dict[str, Any] = {"path": str(part)}
        try:
            st = part.stat()
        except OSError as exc:
            entry["error"] = error_data(exc)
            chain.append(entry)
            break
        entry.update(uid=st.st_uid, gid=st.st_gid, mode=f"0{stat.S_IMODE(st.st_mode):o}",
                     owner=_name(pwd.getpwuid, st.st_uid), is_dir=stat.S_ISDIR(st.st_mode))
        need = os.X_OK if part != p else want
        entry["needs"] = "x" if need == os.X_OK else ("r" if need == os.R_OK else "rwx")
        entry["allowed"] = _allowed(st, pw.pw_uid, gids, need)
        chain.append(entry)
    blocked = next((c for c in chain if c.get("error") or not c.get("allowed")), None)
    return {"user": user, "uid": pw.pw_uid, "gids": gids, "chain": chain, "ok": blocked is None,
            "blocked_at": blocked["path"] if blocked else None}


def _allowed(st: os.stat_result, uid: int, gids: list[int], want: int) -> bool:
    if uid == 0:
        return True if want != os.X_OK or stat.S_ISDIR(st.st_mode) else bool(st.st_mode & 0o111)
    mode = st.st_mode
    shift = 6 if st.st_uid == uid else 3 if st.st_gid in gids else 0
    bits = (mode >> shift) & 0o7
    need = {os.R_OK: 4, os.X_OK: 1, os.W_OK: 2}.get(want, 4)
    return bits & need == need


def _name(fn, ident: int) -> str:
    try:
        return fn(ident).pw_name
    except KeyError:
        return str(ident)
