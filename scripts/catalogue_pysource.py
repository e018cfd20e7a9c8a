"""Find what a Python package prints: its log calls and the messages of the exceptions it raises.

Used by build-message-catalogue.py. Works on source text with ``ast`` (nothing is imported or run),
so any release can be read whatever its own dependencies.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "warn": "WARNING", "error": "ERROR",
          "exception": "ERROR", "critical": "CRITICAL", "fatal": "CRITICAL"}
_NUMERIC = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "WARN": "WARNING", "ERROR": "ERROR",
            "CRITICAL": "CRITICAL", "FATAL": "CRITICAL"}


@dataclass(frozen=True)
class PyMessage:
    """One message a module can print. ``style``: ``%`` (printf with arguments), ``{}`` (str.format or an
    f-string; every replacement field is written ``{}``) or ``-`` (printed as written)."""

    module: str
    kind: str  # log | exception | raise
    level: str  # DEBUG..CRITICAL for log calls; '-' for raised exceptions
    message: str
    style: str
    origin: str  # the module, and for raised exceptions ':' and the exception class


def _is_logger(node: ast.expr) -> bool:
    """``logger``, ``logging``, ``log``, ``_log``, ``_LOGGER``, ``self.logger`` ... : a name about logging."""
    if isinstance(node, ast.Name):
        return "log" in node.id.lower()
    if isinstance(node, ast.Attribute):
        return "log" in node.attr.lower()
    return False


def _brace_escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _text(node: ast.expr) -> tuple[str, str] | None:
    """The format text of a message expression and its style, or None when it is not written in the source."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, "-"
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(_brace_escape(str(v.value)))
            else:
                parts.append("{}")
        return "".join(parts), "{}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        left = _text(node.left)
        if left and left[1] == "-":
            return left[0], "%"
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is None and right is None:
            return None
        pieces = []
        for side in (left, right):
            if side is None:
                pieces.append("{}")
            elif side[1] == "-":
                pieces.append(_brace_escape(side[0]))
            elif side[1] == "{}":
                pieces.append(side[0])
            else:
                return None  # a printf text glued to something else: not worth guessing
        return "".join(pieces), "{}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        base = node.func.value
        if isinstance(base, ast.Constant) and isinstance(base.value, str):
            return base.value, "{}"
    return None


def _log_call(node: ast.Call) -> tuple[str, str, ast.expr | None, bool] | None:
    """(kind, level, message expression, has printf args) of a logging call, else None."""
    func = node.func
    if not isinstance(func, ast.Attribute) or not _is_logger(func.value):
        return None
    args = list(node.args)
    if func.attr == "log" and args:
        lvl = args.pop(0)
        name = lvl.attr if isinstance(lvl, ast.Attribute) else getattr(lvl, "id", "")
        level = _NUMERIC.get(str(name).upper())
        if level is None:
            return None
        return "log", level, args[0] if args else None, len(args) > 1
    if func.attr not in LEVELS:
        return None
    kind = "exception" if func.attr == "exception" else "log"
    return kind, LEVELS[func.attr], args[0] if args else None, len(args) > 1


def _exc_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_exc_name(node.value)}.{node.attr}"
    return "?"


_EXC_NAME = re.compile(r"(?:Error|Exception)$")


def _exception_text(exc: ast.Call, module: str) -> Iterator[PyMessage]:
    """The text an exception is created with: its first argument written in the source (urllib3 passes
    ``(pool, url, "text")``, most code ``("text", ...)``)."""
    for arg in exc.args:
        found = _text(arg)
        if found and found[0].strip():
            text, style = found
            yield PyMessage(module, "raise", "-", text, style, f"{module}:{_exc_name(exc.func)}")
            return


def messages(path: Path, module: str, raises: bool = True, assigned: tuple[str, ...] = ()) -> Iterator[PyMessage]:
    """Every log call in one file; with ``raises`` also ``raise Cls('text', ...)``; ``assigned`` names variables
    whose string values are exception texts (urllib3 builds ``message = f"..."`` before ``super().__init__``)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            call = _log_call(node)
            if call is None:
                continue
            kind, level, expr, has_args = call
            found = _text(expr) if expr is not None else ("", "-")
            if found is None:
                continue  # the message is a variable: nothing to catalogue
            text, style = found
            if style == "-" and has_args:
                style = "%"
            yield PyMessage(module, kind, level, text, style, module)
        elif raises and isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            yield from _exception_text(node.exc, module)
        elif raises and isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                _EXC_NAME.search(_exc_name(node.value.func)):
            yield from _exception_text(node.value, module)  # e = ProtocolError("Connection aborted.", e)
        elif assigned and isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in assigned for t in node.targets):
            found = _text(node.value)
            if found and found[0].strip():
                yield PyMessage(module, "raise", "-", found[0], found[1], f"{module}:message")


def package_messages(root: Path, package: str, include: tuple[str, ...] = (), raises: bool = True,
                     assigned: tuple[str, ...] = ()) -> Iterator[PyMessage]:
    """Messages of every module of ``package`` found under ``root`` (``include`` limits to these modules)."""
    base = root / package.replace(".", "/")
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        module = ".".join(rel.parts)
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        if include and module not in include:
            continue
        if ".tests." in f".{module}.":
            continue
        yield from messages(path, module, raises=raises, assigned=assigned)


_STATE_NAMES = ("msg", "ret", "message", "reason")


def _string_leaves(node: ast.expr) -> Iterator[tuple[str, str]]:
    """Texts an expression can evaluate to: both sides of ``a or 'x'`` and ``'x' if c else 'y'``, tuple items."""
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            yield from _string_leaves(v)
    elif isinstance(node, ast.IfExp):
        yield from _string_leaves(node.body)
        yield from _string_leaves(node.orelse)
    elif isinstance(node, ast.Tuple):
        for v in node.elts:
            yield from _string_leaves(v)
    else:
        found = _text(node)
        if found and " " in found[0].strip():
            yield found


def state_messages(path: Path, module: str) -> Iterator[PyMessage]:
    """The state lines of Patroni's main loop. ``Ha.run_cycle`` returns a sentence that the daemon logs at INFO
    ("no action. I am (pg1), the leader with the lock"); such sentences are returned, assigned to ``msg``/``ret``,
    or handed to ``self.follow(...)``-like helpers, never passed to a logger in the source."""
    tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    for node in ast.walk(tree):
        exprs: list[ast.expr] = []
        if (isinstance(node, ast.Return) and node.value is not None) or (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in _STATE_NAMES
                                                  for t in node.targets)):
            exprs.append(node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == "self":
            exprs.extend(node.args)
        for expr in exprs:
            for text, style in _string_leaves(expr):
                yield PyMessage(module, "state", "INFO", text, style, module)
