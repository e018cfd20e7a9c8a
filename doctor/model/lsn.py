"""WAL positions: PostgreSQL's ``hi/lo`` text form and the byte offsets pgdoctor compares."""

from __future__ import annotations

from typing import Any


def lsn_to_int(value: Any) -> int | None:
    """'0/404B328' or 67416872 -> 67416872; None for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    if "/" in text:
        hi, _, lo = text.partition("/")
        try:
            return (int(hi, 16) << 32) + int(lo, 16)
        except ValueError:
            return None
    return int(text) if text.isdigit() else None


def lsn_str(value: int | None) -> str | None:
    """67416872 -> '0/404B328'."""
    return None if value is None else f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
