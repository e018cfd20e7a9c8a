"""Autostart: Patroni's unit enabled at boot, the distribution's ``postgresql`` unit not (it would
start a PostgreSQL on the same data dir or port before Patroni does)."""

from __future__ import annotations

from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip


def _state(unit: dict[str, Any]) -> str:
    return f"{unit.get('name')}: {unit.get('enabled_text') or ('enabled' if unit.get('enabled') else 'not enabled')}" \
        f" ({unit.get('enabled_source') or 'unit files: ' + (', '.join(unit.get('unit_files') or []) or 'none')})"


@check("autostart.patroni", "Patroni enabled for auto-start", "autostart-disabled", profiles=("verify",),
       needs=("autostart",))
def autostart(ctx: CheckContext) -> Verdict:
    facts = ctx.facts.dict_at("autostart") or {}
    patroni = facts.get("patroni") or {}
    distro = facts.get("postgresql") or {}
    if not facts.get("systemd") or not patroni.get("systemctl"):
        return skip("this host runs no systemd (/run/systemd/system is absent), so no unit starts Patroni at boot "
                    "here; check your own supervisor")
    evidence = [_state(patroni), _state(distro)]
    values = {"unit": patroni.get("name"), "distro_unit": distro.get("name")}
    problems = []
    if not patroni.get("installed"):
        problems.append(f"there is no {patroni.get('name')}.service unit")
    elif patroni.get("enabled") is False:
        problems.append(f"{patroni.get('name')}.service is {patroni.get('enabled_text') or 'not enabled'}")
    if distro.get("enabled"):
        problems.append(f"the distribution's {distro.get('name')}.service is enabled too and races Patroni at boot")
        values["distro_enabled"] = True
    if problems:
        return fail("; ".join(problems), evidence=evidence, values=values)
    return ok(f"{patroni.get('name')}.service is enabled; {distro.get('name')}.service is not", evidence=evidence)
